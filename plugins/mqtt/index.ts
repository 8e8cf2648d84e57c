import { definePlugin } from '../../core/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { MqttOptionsToken, MqttTransport } from './mqtt-transport.js';
import { MqttOptions } from './options.js';

export const mqttPlugin = definePlugin({
  name: 'mqtt',
  kind: 'transport',
  description: 'MQTT 3.1.1 on aedes: device ingest, live subscriptions, commands',
  roles: ['ingestion', 'consumption'],
  needs: [Tokens.Cluster, Tokens.Instance, Tokens.Identity, Tokens.Authenticator, Tokens.Ingestor, Tokens.Bus, Tokens.Endpoints, Tokens.Presence, Tokens.PrincipalEvents, Tokens.Devices],
  options: MqttOptions,
  create: ({ container }, options) => container.register(MqttOptionsToken, { useValue: options }).resolve(MqttTransport),
});
