import { definePlugin } from '../../core/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { MqttTransport } from './mqtt-transport.js';
import { MqttOptions } from './options.js';

export const mqttPlugin = definePlugin({
  name: 'mqtt',
  kind: 'transport',
  description: 'MQTT 3.1.1 on aedes: device ingest, live subscriptions, commands',
  needs: [Tokens.Identity, Tokens.Authenticator, Tokens.Ingestor, Tokens.Bus, Tokens.Endpoints, Tokens.Presence, Tokens.PrincipalEvents, Tokens.Devices],
  options: MqttOptions,
  create: ({ container, config, logger, metrics }, options) =>
    new MqttTransport(options, {
      identity: container.resolve(Tokens.Identity),
      authenticator: container.resolve(Tokens.Authenticator),
      ingestor: container.resolve(Tokens.Ingestor),
      bus: container.resolve(Tokens.Bus),
      endpoints: container.resolve(Tokens.Endpoints),
      presence: container.resolve(Tokens.Presence),
      principalEvents: container.resolve(Tokens.PrincipalEvents),
      devices: container.resolve(Tokens.Devices),
      logger,
      metrics,
      host: config.host,
    }),
});
