import type { Message } from '../envelope.js';
import { ClientError } from '../errors.js';
import type { CompiledFilter } from '../filter.js';
import type { Carrier, Outbox, Sending } from '../outbox.js';
import { callHandler, deferred, type MessageHandler, type Subscription } from '../subscription.js';
import type { MqttConnection } from './connection.js';
import { MqttLink, type LinkOptions } from './link.js';
import type { IncomingPublish } from './packet-reader.js';
import { SUBACK_FAILURE, topicField } from './packets.js';

export interface WireEvents {
  online(): void;
  offline(error: Error | null): void;
  /** A connection attempt failed or was refused. */
  failed(error: Error): void;
  /** The connection was lost with messages in flight and none acknowledged: the oldest may be one the server refuses. */
  suspect(message: Sending): void;
  /** A subscription's filter was refused when subscribed again after a reconnect (a permission was taken away). */
  error(error: ClientError): void;
  /** An incoming message whose payload is not a JSON envelope. */
  malformed(topic: string): void;
}

interface Route {
  /** Parts of `devices/{id}/{kind}/{type}`: null means any. */
  ids: Set<string> | null;
  kind: string;
  types: Set<string> | null;
  filter: CompiledFilter;
  handler: MessageHandler;
}

/**
 * A session's MQTT side: the link, the carrier that publishes queued messages at QoS 1 to
 * `devices/{id}/messages` (`window` in flight at most), and the routes that hand incoming
 * messages to subscriptions.
 */
export class MqttWire implements Carrier {
  readonly link: MqttLink<Sending>;
  private readonly topic: Buffer;
  private connection: MqttConnection<Sending> | null = null;
  private acked = 0;
  private readonly routes = new Set<Route>();

  constructor(
    id: string,
    options: LinkOptions,
    private readonly window: number,
    private readonly outbox: Outbox,
    private readonly events: WireEvents,
  ) {
    this.topic = topicField(`devices/${id}/messages`);
    this.link = new MqttLink(options, {
      online: (connection) => this.online(connection),
      offline: (error) => this.offline(error),
      failed: (error) => events.failed(error),
      puback: this.puback,
      publish: (message) => this.deliver(message),
      refusedAgain: (filter) => events.error(new ClientError('NITROGEN_ERR_FORBIDDEN', `the server refused the subscription to ${filter} after a reconnect; it was dropped`, { topic: filter })),
    });
  }

  room(): number {
    return this.connection ? this.window - this.connection.inFlight : 0;
  }

  send(message: Sending): void {
    this.connection!.publish(this.topic, message.json, message.bytes, message);
  }

  flush(): void {}

  subscribe(filter: CompiledFilter, handler: MessageHandler): Subscription {
    const topics = filter.topics();
    const kind = filter.to.length > 0 ? 'commands' : 'messages';
    const ids = kind === 'commands' ? filter.to : filter.from;
    const route: Route = { ids: ids.length > 0 ? new Set(ids) : null, kind, types: filter.type.length > 0 ? new Set(filter.type) : null, filter, handler };
    const ready = deferred();
    let closed = false;
    this.routes.add(route);
    this.link.subscribe(topics).then(
      (codes) => {
        if (!codes.includes(SUBACK_FAILURE)) return ready.resolve();
        const refused = topics.filter((_, i) => codes[i] === SUBACK_FAILURE);
        close();
        ready.reject(new ClientError('NITROGEN_ERR_FORBIDDEN', `the server refused the subscription to ${refused.join(', ')}`, { topics: refused }));
      },
      (err: Error) => ready.reject(err),
    );
    const close = () => {
      if (closed) return;
      closed = true;
      this.routes.delete(route);
      this.link.release(topics);
    };
    return { ready: ready.promise, close: async () => close() };
  }

  private online(connection: MqttConnection<Sending>): void {
    this.connection = connection;
    this.acked = 0;
    this.events.online();
    this.outbox.attach(this);
  }

  private offline(error: Error | null): void {
    // The connection counts what it had in flight until it is closed: the outbox knows too.
    const suspect = this.acked === 0 ? this.outbox.oldestInFlight() : null;
    this.connection = null;
    this.outbox.attach(null);
    this.outbox.rewind();
    this.events.offline(error);
    if (suspect && error !== null) this.events.suspect(suspect);
  }

  private readonly puback = (message: Sending): void => {
    this.acked++;
    this.outbox.delivered(message); // nothing, if it was dropped from the queue meanwhile
  };

  private deliver(incoming: IncomingPublish): void {
    if (this.routes.size === 0) return;
    const parts = incoming.topic.split('/');
    if (parts.length !== 4 || parts[0] !== 'devices') return;
    const [, id, kind, type] = parts as [string, string, string, string];
    let message: Message | undefined;
    for (const route of this.routes) {
      if (route.kind !== kind || (route.ids && !route.ids.has(id)) || (route.types && !route.types.has(type))) continue;
      if (!message) {
        try {
          message = JSON.parse(incoming.payload.toString('utf8')) as Message;
        } catch {
          return this.events.malformed(incoming.topic);
        }
        if (typeof message !== 'object' || message === null || typeof message.id !== 'string') return this.events.malformed(incoming.topic);
      }
      if (route.filter.matches(message)) callHandler(route.handler, message);
    }
  }
}
