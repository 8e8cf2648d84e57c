// Option pieces both sink plugins share: TLS files and the delivery timeout.
import { accessSync, constants, readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { z } from 'zod';

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

const pemFile = z.string().min(1).refine(readable, { message: 'no readable file at this path' });

/** TLS for amqps://: PEM files by path, so no key material sits in the configuration. */
export const tlsOptions = z
  .strictObject({
    /** CA certificates to trust instead of Node's defaults (e.g. a self-signed broker). */
    ca: pemFile.optional(),
    /** Client certificate and key, for brokers that authenticate clients by certificate. */
    cert: pemFile.optional(),
    key: pemFile.optional(),
    /** The name checked against the certificate when it differs from the URL's host. */
    servername: z.string().min(1).optional(),
    /** false accepts any certificate: for tests only. */
    rejectUnauthorized: z.boolean().default(true),
  })
  .default({ rejectUnauthorized: true });

export type TlsFiles = z.output<typeof tlsOptions>;

/** Most time one `send` waits for the peer's outcomes before it fails as retryable. */
export const sendTimeoutMs = z.number().int().min(100).max(600_000).default(30_000);

/** The `tls.connect` options for the files named. */
export function loadTls(tls: TlsFiles): TlsOptions {
  const out: TlsOptions = { rejectUnauthorized: tls.rejectUnauthorized };
  if (tls.ca) out.ca = readFileSync(tls.ca);
  if (tls.cert) out.cert = readFileSync(tls.cert);
  if (tls.key) out.key = readFileSync(tls.key);
  if (tls.servername) out.servername = tls.servername;
  return out;
}
