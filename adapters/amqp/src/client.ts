// Entry point: Client.connect(url, policy, overrides) opens a connection with
// a default session, ready for createSender/createReceiver.
import { Connection } from './connection.js';
import { parseUrl } from './endpoint.js';
import { Policy, type ClientPolicy, type PolicyOverrides } from './policy.js';

export const Client = {
  /**
   * Connects to `amqp://[user:pass@]host[:port]` or `amqps://...`. Credentials in
   * the URL mean SASL PLAIN, otherwise ANONYMOUS, unless the policy names a mechanism.
   */
  async connect(url: string, policy: ClientPolicy = Policy.Default, overrides?: PolicyOverrides): Promise<Connection> {
    const connection = new Connection(parseUrl(url), overrides ? Policy.derive(policy, overrides) : policy);
    return connection.open();
  },
};
