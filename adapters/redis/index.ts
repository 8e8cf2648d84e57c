import { definePlugin } from '../../core/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { RedisBusOptions } from './options.js';
import { RedisBus } from './redis-bus.js';

export { RedisBus } from './redis-bus.js';
export { RedisSessionState } from './redis-session-state.js';
export { RedisLeases } from './redis-leases.js';
export { RedisBusOptions } from './options.js';

/** `cluster.bus: { use: 'redis', options: { url } }`: several instances as one service (docs/cluster.md). */
export const redisBusPlugin = definePlugin({
  name: 'redis',
  kind: 'cluster',
  description: 'Redis: live fan-out of committed messages, principal events and persistent MQTT sessions across instances',
  options: RedisBusOptions,
  needs: [Tokens.Instance],
  create: ({ container, config, logger, metrics }, options) =>
    new RedisBus(
      options,
      container.resolve(Tokens.Instance),
      logger,
      metrics,
      config.cluster.roles.some((role) => role !== 'registry'),
    ),
});
