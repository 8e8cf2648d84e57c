import { z } from 'zod';
import { duration, parseDuration } from '../../core/duration.js';
import { definePlugin } from '../../core/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { TlsOptions } from '../../core/tls.js';
import { RestOptionsToken } from './context.js';
import { RestTransport } from './rest-transport.js';

/** A duration in ms, or NaN for a bad one (which `duration` itself reports). */
function milliseconds(value: string | number): number {
  try {
    return parseDuration(value);
  } catch {
    return Number.NaN;
  }
}

export const restPlugin = definePlugin({
  name: 'rest',
  kind: 'transport',
  description: 'REST API (koa): registration, auth, ingest, query, SSE stream, permissions, health, metrics',
  needs: [
    Tokens.Identity,
    Tokens.Authenticator,
    Tokens.Registry,
    Tokens.Store,
    Tokens.Ingestor,
    Tokens.Bus,
    Tokens.Endpoints,
    Tokens.WebApps,
    Tokens.Presence,
    Tokens.SinkRunners,
    Tokens.DeadLetters,
    Tokens.PrincipalEvents,
    Tokens.Health,
    Tokens.Principals,
    Tokens.PermissionRecords,
    Tokens.Devices,
  ],
  // Defaults and meanings: docs/configuration.md, `rest`; why each limit exists: docs/security.md, REST.
  options: z
    .strictObject({
      /** Plain HTTP; `false` turns it off (HTTPS only). */
      port: z.union([z.number().int().min(0).max(65535), z.literal(false)], { error: 'must be a port number 0-65535, or false for none' }).default(3000),
      /** HTTPS, with `tls`; absent: no HTTPS listener. */
      tlsPort: z.number().int().min(0).max(65535).optional(),
      tls: TlsOptions.optional(),
      /** Browser origins allowed to read answers (`*`: any); none when absent (docs/onboarding.md, "Browsers"). */
      corsOrigins: z.array(z.string().min(1)).max(1000).optional(),
      /** Seconds a browser may cache a preflight answer. */
      corsMaxAge: z.number().int().min(0).max(86_400).default(600),
      /** How long a stream ticket (for EventSource) may be used. */
      streamTicketTtl: duration.default('30s'),
      host: z.string().min(1).optional(),
      publicUrl: z.string().url().optional(),
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(16 * 1024 * 1024),
      maxAuthBodyBytes: z.number().int().min(256).default(4096),
      maxConnections: z.number().int().positive().default(4096),
      maxHeaderBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024)
        .default(16 * 1024),
      headersTimeout: duration.default('10s'),
      requestTimeout: duration.default('30s'),
      keepAliveTimeout: duration.default('65s'),
      maxStreams: z.number().int().positive().default(1000),
      maxStreamsPerPrincipal: z.number().int().positive().default(10),
      heartbeatSeconds: z.number().positive().default(15),
    })
    .refine((o) => (o.tlsPort === undefined) === (o.tls === undefined), { message: 'tlsPort and tls go together: HTTPS needs its certificate and key', path: ['tls'] })
    .refine((o) => o.port !== false || o.tlsPort !== undefined, { message: 'with the plain port off, set tlsPort and tls', path: ['port'] })
    .refine((o) => milliseconds(o.headersTimeout) > 0 && milliseconds(o.headersTimeout) <= milliseconds(o.requestTimeout), {
      message: 'must be more than 0 and at most requestTimeout',
      path: ['headersTimeout'],
    }),
  create: ({ container }, options) => container.register(RestOptionsToken, { useValue: options }).resolve(RestTransport),
});
