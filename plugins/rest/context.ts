import type { ParameterizedContext } from 'koa';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { MessageBus } from '../../core/bus.js';
import type { NitrogenConfig } from '../../core/config.js';
import type { Endpoints } from '../../core/endpoints.js';
import { NitrogenError } from '../../core/errors.js';
import type { Ingestor } from '../../core/ingest.js';
import type { Logger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Action, Principal } from '../../core/ports/principal.js';
import type { Registry } from '../../core/ports/registry.js';
import type { Store } from '../../core/ports/store.js';
import type { Presence } from '../../core/presence.js';
import type { SinkRunner } from '../../core/sink-runner.js';
import type { DeadLetters } from '../../core/dead-letters.js';
import type { PrincipalEvents } from '../../core/principal-events.js';
import type { Health } from '../../core/health.js';

/** What the REST routes need: ports and core services only, never adapters. */
export interface RestDeps {
  identity: Identity;
  registry: Registry;
  store: Store;
  ingestor: Ingestor;
  bus: MessageBus;
  endpoints: Endpoints;
  presence: Presence;
  sinkRunners: SinkRunner[];
  deadLetters: DeadLetters;
  principalEvents: PrincipalEvents;
  health: Health;
  config: NitrogenConfig;
  metrics: MetricsRegistry;
  logger: Logger;
}

export interface RestOptions {
  port: number;
  host?: string;
  publicUrl?: string;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Seconds between SSE heartbeat comments. */
  heartbeatSeconds: number;
}

export interface RestState {
  principal: Principal;
  /** When the caller's access token expires (ms since the epoch). */
  tokenExpires: number;
}

export type RestContext = ParameterizedContext<RestState> & { params: Record<string, string> };

export function principalOf(ctx: RestContext): Principal {
  return ctx.state.principal;
}

export function requireAllowed(identity: Identity, actor: Principal, action: Action, target: string | null): void {
  if (!identity.authorize(actor, action, target)) {
    const what = target === null ? action : `${action} on '${target}'`;
    throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', `'${actor.id}' may not ${what}`);
  }
}

/** A caller reads a message it sent, one addressed to it, or one from a principal it may `action`. */
export function mayRead(identity: Identity, actor: Principal, action: 'view' | 'subscribe', message: Message): boolean {
  return message.from === actor.id || message.to === actor.id || identity.authorize(actor, action, message.from);
}
