import { z } from 'zod';
import { definePlugin } from '../../core/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { RestTransport } from './rest-transport.js';

export const restPlugin = definePlugin({
  name: 'rest',
  kind: 'transport',
  description: 'REST API (koa): registration, auth, ingest, query, SSE stream, permissions, health, metrics',
  needs: [Tokens.Identity, Tokens.Registry, Tokens.Store, Tokens.Ingestor, Tokens.Bus, Tokens.Endpoints, Tokens.Presence, Tokens.SinkRunners, Tokens.DeadLetters, Tokens.PrincipalEvents, Tokens.Health],
  options: z.strictObject({
    port: z.number().int().min(0).max(65535).default(3000),
    host: z.string().min(1).optional(),
    publicUrl: z.string().url().optional(),
    maxBodyBytes: z.number().int().positive().default(16 * 1024 * 1024),
    heartbeatSeconds: z.number().positive().default(15),
  }),
  create: ({ container, config, logger, metrics }, options) =>
    new RestTransport(options, {
      identity: container.resolve(Tokens.Identity),
      registry: container.resolve(Tokens.Registry),
      store: container.resolve(Tokens.Store),
      ingestor: container.resolve(Tokens.Ingestor),
      bus: container.resolve(Tokens.Bus),
      endpoints: container.resolve(Tokens.Endpoints),
      presence: container.resolve(Tokens.Presence),
      sinkRunners: container.resolve(Tokens.SinkRunners),
      deadLetters: container.resolve(Tokens.DeadLetters),
      principalEvents: container.resolve(Tokens.PrincipalEvents),
      health: container.resolve(Tokens.Health),
      config,
      metrics,
      logger,
    }),
});
