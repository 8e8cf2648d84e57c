import type { ParameterizedContext } from 'koa';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Authenticator, Origin } from '../../core/authenticator.js';
import type { MessageBus } from '../../core/bus.js';
import type { NitrogenConfig } from '../../core/config.js';
import { inject, injectable, type InjectionToken } from '../../core/di.js';
import type { Endpoints } from '../../core/endpoints.js';
import type { WebApps } from '../../core/web-apps.js';
import type { Ingestor } from '../../core/ingest.js';
import type { Logger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Principal } from '../../core/ports/principal.js';
import type { Registry } from '../../core/ports/registry.js';
import type { Store } from '../../core/ports/store.js';
import type { Presence } from '../../core/presence.js';
import type { SinkRunner } from '../../core/sink-runner.js';
import type { DeadLetters } from '../../core/dead-letters.js';
import type { PrincipalEvents } from '../../core/principal-events.js';
import type { Health } from '../../core/health.js';
import type { PermissionRecords } from '../../core/permission-records.js';
import type { Principals } from '../../core/principals.js';
import type { Devices } from '../../core/devices.js';
import type { TlsOptions } from '../../core/tls.js';
import { Tokens } from '../../core/tokens.js';

/**
 * What the REST routes need: ports and core services only, never adapters. The container
 * builds it, by constructor injection, when it builds the transport; the routes receive it.
 */
@injectable()
export class RestDeps {
  constructor(
    @inject(Tokens.Identity) readonly identity: Identity,
    @inject(Tokens.Authenticator) readonly authenticator: Authenticator,
    @inject(Tokens.Registry) readonly registry: Registry,
    @inject(Tokens.Store) readonly store: Store,
    @inject(Tokens.Ingestor) readonly ingestor: Ingestor,
    @inject(Tokens.Bus) readonly bus: MessageBus,
    @inject(Tokens.Endpoints) readonly endpoints: Endpoints,
    @inject(Tokens.WebApps) readonly webApps: WebApps,
    @inject(Tokens.Presence) readonly presence: Presence,
    @inject(Tokens.SinkRunners) readonly sinkRunners: SinkRunner[],
    @inject(Tokens.DeadLetters) readonly deadLetters: DeadLetters,
    @inject(Tokens.PrincipalEvents) readonly principalEvents: PrincipalEvents,
    @inject(Tokens.Health) readonly health: Health,
    @inject(Tokens.Principals) readonly principals: Principals,
    @inject(Tokens.PermissionRecords) readonly permissionRecords: PermissionRecords,
    @inject(Tokens.Devices) readonly devices: Devices,
    @inject(Tokens.Config) readonly config: NitrogenConfig,
    @inject(Tokens.Metrics) readonly metrics: MetricsRegistry,
    /** The plugin instance's logger. */
    @inject(Tokens.Logger) readonly logger: Logger,
  ) {}
}

/** The rest plugin's options, as its container holds them for the transport. */
export const RestOptionsToken = Symbol('nitrogen.rest.Options') as InjectionToken<RestOptions>;

/** The rest plugin's options (plugins/rest/index.ts validates them; docs/configuration.md lists them). */
export interface RestOptions {
  /** Plain HTTP, or false for none. */
  port: number | false;
  /** HTTPS with `tls`, when set. */
  tlsPort?: number;
  tls?: TlsOptions;
  corsOrigins?: string[];
  corsMaxAge: number;
  /** How long a stream ticket may be used: a duration or milliseconds. */
  streamTicketTtl: string | number;
  host?: string;
  publicUrl?: string;
  /** Largest request body accepted from an authenticated caller, in bytes. */
  maxBodyBytes: number;
  /** Largest request body accepted before authentication (`POST /principals/auth`), in bytes. */
  maxAuthBodyBytes: number;
  /** Open connections beyond which a new one is answered 503 and closed. */
  maxConnections: number;
  /** Largest request head (request line and headers), in bytes. */
  maxHeaderBytes: number;
  /** Time to receive a request's headers: a duration (`"10s"`) or milliseconds. */
  headersTimeout: string | number;
  /** Time to receive a whole request, headers and body. */
  requestTimeout: string | number;
  /** Time an idle keep-alive connection is kept open between requests. */
  keepAliveTimeout: string | number;
  /** Open SSE streams in all, and per principal. */
  maxStreams: number;
  maxStreamsPerPrincipal: number;
  /** Seconds between SSE heartbeat comments. */
  heartbeatSeconds: number;
}

/** How much of a request body `readJson` accepts: chosen per request by whether it is authenticated. */
export interface BodyLimits {
  maxBytes: number;
  /** The option `maxBytes` comes from, named in a 413. */
  bytesOption: 'maxAuthBodyBytes' | 'maxBodyBytes';
  maxDepth: number;
}

export interface RestState {
  principal: Principal;
  /** When the caller's access token expires (ms since the epoch). */
  tokenExpires: number;
  /** The impersonator, when the caller's token was obtained by impersonation. */
  actor?: string;
  bodyLimits: BodyLimits;
}

export type RestContext = ParameterizedContext<RestState> & { params: Record<string, string> };

/** Where a request came from, for the per-address credential limit (behind a trusted proxy: X-Forwarded-For). */
export function originOf(ctx: ParameterizedContext<RestState>): Origin {
  return { remoteAddress: ctx.req.socket.remoteAddress, forwardedFor: ctx.get('x-forwarded-for') || undefined };
}

export function principalOf(ctx: RestContext): Principal {
  return ctx.state.principal;
}

/** A caller reads a message it sent, one addressed to it, or one from a principal it may `action`. */
export function mayRead(identity: Identity, actor: Principal, action: 'view' | 'subscribe', message: Message): boolean {
  return message.from === actor.id || message.to === actor.id || identity.authorize(actor, action, message.from);
}
