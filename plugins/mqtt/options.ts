import { z } from 'zod';
import { duration } from '../../core/duration.js';
import { TlsOptions } from '../../core/tls.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Options of the `mqtt` plugin. Every cap holds per client or per principal, so one abusive
 * client costs at most that much; docs/configuration.md ("mqtt") gives the reason for each default.
 */
export const MqttOptions = z
  .strictObject({
    /** MQTT over plain TCP; `false` turns it off. */
    port: z.union([z.number().int().min(0).max(65535), z.literal(false)], { error: 'must be a port number 0-65535, or false for none' }).default(1883),
    /** MQTT over TLS (8883 is its registered port), with `tls`; clients may authenticate with a certificate. */
    tlsPort: z.number().int().min(0).max(65535).optional(),
    /** MQTT over WebSockets, and over WebSockets over TLS (with `tls`), on `wsPath`. */
    wsPort: z.number().int().min(0).max(65535).optional(),
    wssPort: z.number().int().min(0).max(65535).optional(),
    wsPath: z
      .string()
      .regex(/^\/[^?#]*$/, 'must be a path such as /mqtt')
      .default('/mqtt'),
    /** The certificate and key of the TLS listeners (docs/configuration.md, "TLS"). */
    tls: TlsOptions.optional(),
    host: z.string().min(1).optional(),
    /** URL advertised by /headwaiter; defaults to mqtt://host:port. */
    publicUrl: z.string().url().optional(),
    /** Open TCP connections, authenticated or not; beyond it a connection is closed at once. */
    maxConnections: z.number().int().positive().default(100_000),
    /** Largest packet before the CONNACK: credentials and a will, from a peer not yet authenticated. */
    maxConnectBytes: z
      .number()
      .int()
      .min(1024)
      .max(268_435_455)
      .default(64 * KiB),
    /** Largest packet after it; the REST body limit, so a batch that fits one fits the other. */
    maxPacketBytes: z
      .number()
      .int()
      .min(1024)
      .max(268_435_455)
      .default(16 * MiB),
    /** Bytes waiting in the server for one client to read; over it, deliveries to that client are skipped. */
    maxBufferedBytes: z
      .number()
      .int()
      .positive()
      .default(1 * MiB),
    /** How long a client may stay over `maxBufferedBytes` before it is disconnected. */
    slowReaderGrace: duration.default('5s'),
    /** Subscriptions one connection may hold. */
    maxSubscriptions: z.number().int().positive().default(100),
    /** QoS 1 and 2 messages held for one persistent session (clean session 0) not yet acknowledged. */
    maxQueuedMessages: z.number().int().positive().default(1000),
    /** Payload bytes of those messages. */
    maxQueuedBytes: z
      .number()
      .int()
      .positive()
      .default(4 * MiB),
    /** Persistent sessions (client ids with clean session 0) one principal may hold. */
    maxSessions: z.number().int().positive().default(10),
    /** Retained messages one principal may have (one per type). */
    maxRetainedMessages: z.number().int().positive().default(100),
    /** Bytes of those retained envelopes. */
    maxRetainedBytes: z
      .number()
      .int()
      .positive()
      .default(1 * MiB),
  })
  .refine((o) => (o.tlsPort === undefined && o.wssPort === undefined) || o.tls !== undefined, { message: 'tlsPort and wssPort need tls: the certificate and key', path: ['tls'] })
  .refine((o) => o.port !== false || o.tlsPort !== undefined || o.wsPort !== undefined || o.wssPort !== undefined, { message: 'with the plain port off, set tlsPort, wsPort or wssPort', path: ['port'] });
export type MqttOptions = z.output<typeof MqttOptions>;

/** The limits above by name: what a log line and the `nitrogen_mqtt_limit_hits_total` metric report. */
export type MqttLimit = 'maxConnectBytes' | 'maxPacketBytes' | 'maxBufferedBytes' | 'maxSubscriptions' | 'maxQueuedMessages' | 'maxQueuedBytes' | 'maxSessions' | 'maxRetainedMessages' | 'maxRetainedBytes';
