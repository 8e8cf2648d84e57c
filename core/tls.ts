import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { z } from 'zod';
import { duration, durationAtLeast, parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * A TLS listener's certificate and key files (docs/configuration.md, "TLS"). The files are read
 * at start and read again when they change, so a renewed certificate is served without a restart;
 * connections already open keep the one they started with.
 */
export const TlsOptions = z.strictObject({
  /** PEM certificate chain (the server's certificate first), relative to the working directory. */
  cert: z.string().min(1),
  /** PEM private key of that certificate. */
  key: z.string().min(1),
  /** Oldest protocol version accepted; TLS 1.0 and 1.1 are never (RFC 8996). */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** OpenSSL cipher list for TLS 1.2; node's default (forward-secret AEAD suites first) when absent. */
  ciphers: z.string().min(1).optional(),
  /** How often the files are checked for a change. */
  reloadInterval: duration.refine((value) => durationAtLeast(value, 100), 'must be at least 100ms').default('10s'),
});
export type TlsOptions = z.output<typeof TlsOptions>;

/** Reads and watches a listener's certificate and key; tells `onChange` each time a valid new pair is found. */
export class TlsFiles {
  private readonly files: string[];
  private current: SecureContextOptions;
  private listeners: Array<(options: SecureContextOptions) => void> = [];
  /** One function for both files, so stopping removes this watcher only (another listener may watch the same files). */
  private readonly changed = () => this.reload();

  constructor(
    private readonly options: TlsOptions,
    private readonly logger: Logger,
    private readonly where: string,
    cwd = process.cwd(),
  ) {
    this.files = [resolve(cwd, options.cert), resolve(cwd, options.key)];
    this.current = this.read();
  }

  /** The options a `tls.createServer` (or `https.createServer`) takes, modern defaults included. */
  get secureContext(): SecureContextOptions {
    return this.current;
  }

  private read(): SecureContextOptions {
    const [certFile, keyFile] = this.files as [string, string];
    let context: SecureContextOptions;
    try {
      context = { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: this.options.minVersion, honorCipherOrder: true };
      if (this.options.ciphers !== undefined) context.ciphers = this.options.ciphers;
      // Throws when the key does not match the certificate or either is not PEM.
      createSecureContext(context);
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_CONFIG', `${this.where}.tls: cannot use ${certFile} and ${keyFile}: ${(err as Error).message}`, { cause: err });
    }
    return context;
  }

  /** Calls `listener` with the new options whenever the files change to a valid pair. */
  watch(listener: (options: SecureContextOptions) => void): void {
    if (this.listeners.length === 0) {
      const interval = parseDuration(this.options.reloadInterval);
      for (const file of this.files) watchFile(file, { interval, persistent: false }, this.changed);
    }
    this.listeners.push(listener);
  }

  private reload(): void {
    try {
      this.current = this.read();
    } catch (err) {
      // A half-written renewal: keep serving the old pair and try again at the next change.
      this.logger.warn({ err: (err as Error).message }, 'TLS files changed but cannot be used; keeping the previous certificate');
      return;
    }
    this.logger.info({ cert: this.files[0] }, 'TLS certificate reloaded');
    for (const listener of this.listeners) listener(this.current);
  }

  stop(): void {
    for (const file of this.files) unwatchFile(file, this.changed);
    this.listeners = [];
  }
}
