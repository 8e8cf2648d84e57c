// A stand-in for Azure Event Hubs, built on rhea, for tests and bench:sink: the hub's AMQP face as the
// protocol guide describes it. It takes SASL ANONYMOUS, answers put-token requests on `$cbs`
// after checking the SAS token against a known key (signature, key name, resource, expiry),
// refuses links to the hub without a valid token, detaches them when their token expires,
// and records every transfer, decoding batch messages (format 0x80013700) into their events.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Server } from 'node:net';
import rhea, { type Connection, type EventContext, type Message, type Receiver, type Sender } from 'rhea';

export const BATCH_FORMAT = 0x80013700;

export interface HubPeerOptions {
  hub?: string;
  keyName?: string;
  key?: string;
  /** The max-message-size the hub announces on sender links (Event Hubs Standard: 1 MiB). */
  maxMessageSize?: number;
  /**
   * For benches: each hub transfer goes here undecoded and is accepted, instead of being decoded
   * and kept in `transfers` (whose memory grows with every event).
   */
  tally?: (format: number, message: Message | Buffer) => void;
  /** The port to listen on (default: a free one). */
  port?: number;
}

export interface CbsRequest {
  message: Message;
  status: number;
  description: string;
}

export interface HubTransfer {
  /** The link's target: the hub, or `<hub>/Partitions/<id>`. */
  address: string;
  format: number;
  /** The transfer's message as rhea decoded it (for a batch, the envelope). */
  message: Message;
  /** The events: the batch's data sections decoded, or the message itself. */
  events: Message[];
}

type Outcome = 'accept' | 'reject' | 'release';

export class EventHubsPeer {
  readonly hub: string;
  readonly keyName: string;
  readonly key: string;
  readonly cbsRequests: CbsRequest[] = [];
  readonly transfers: HubTransfer[] = [];
  /** Attaches to the hub refused for want of a valid token, and links detached when it expired. */
  refusedAttaches = 0;
  expiredDetaches = 0;
  /** The outcome of each hub transfer (default accept). */
  outcome: (transfer: HubTransfer) => Outcome = () => 'accept';
  port = 0;
  private readonly container = rhea.create_container({ id: 'fake-event-hubs' });
  private readonly grants = new Map<Connection, Map<string, number>>();
  private readonly connections = new Set<Connection>();
  private server!: Server;
  private sweeper!: NodeJS.Timeout;

  private constructor(private readonly options: HubPeerOptions) {
    this.hub = options.hub ?? 'telemetry';
    this.keyName = options.keyName ?? 'send-rule';
    this.key = options.key ?? 'c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==';
  }

  static async start(options: HubPeerOptions = {}): Promise<EventHubsPeer> {
    const peer = new EventHubsPeer(options);
    await peer.listen();
    return peer;
  }

  /** A connection string for this peer, as the SDKs take it for a local emulator (plain AMQP). */
  connectionString(overrides: { keyName?: string; key?: string } = {}): string {
    return `Endpoint=sb://127.0.0.1:${this.port}/;SharedAccessKeyName=${overrides.keyName ?? this.keyName};SharedAccessKey=${overrides.key ?? this.key};EntityPath=${this.hub};UseDevelopmentEmulator=true`;
  }

  get endpoint(): string {
    return `sb://127.0.0.1:${this.port}/`;
  }

  /** Every event received, in arrival order, with the partition key of its batch and its target. */
  get events(): Array<{ address: string; partitionKey: unknown; event: Message }> {
    return this.transfers.flatMap((t) => t.events.map((event) => ({ address: t.address, partitionKey: t.message.message_annotations?.['x-opt-partition-key'], event })));
  }

  private async listen(): Promise<void> {
    const c = this.container;
    c.sasl_server_mechanisms.enable_anonymous();
    c.on('connection_open', (ctx) => this.connections.add(ctx.connection));
    c.on('disconnected', (ctx) => this.forget(ctx.connection));
    c.on('connection_close', (ctx) => this.forget(ctx.connection));
    c.on('receiver_open', (ctx) => this.onSenderAttach(ctx));
    c.on('sender_open', (ctx) => {
      const address = ctx.sender!.remote.attach.source?.address as string;
      ctx.sender!.set_source({ address });
      if (address !== '$cbs') ctx.sender!.close({ condition: 'amqp:not-found', description: `this peer has no consumer side (${address})` });
    });
    c.on('message', (ctx) => {
      const address = ctx.receiver!.target.address as string;
      if (address === '$cbs') this.onCbs(ctx);
      else this.onTransfer(ctx, address);
    });
    const listenOptions = { port: this.options.port ?? 0, host: '127.0.0.1', autoaccept: false, credit_window: 1000, container_id: 'fake-event-hubs' };
    this.server = c.listen(listenOptions as unknown as Parameters<typeof c.listen>[0]);
    await new Promise<void>((resolve) => this.server.once('listening', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.sweeper = setInterval(() => this.detachExpired(), 100);
  }

  private forget(connection: Connection): void {
    this.connections.delete(connection);
    this.grants.delete(connection);
  }

  /** The expiry (ms) of the token this connection put for `audience` or a prefix of it, if still valid. */
  private grantFor(connection: Connection, audience: string): number | undefined {
    for (const [granted, expiry] of this.grants.get(connection) ?? []) {
      if (audience.toLowerCase().startsWith(granted.toLowerCase()) && expiry > Date.now()) return expiry;
    }
    return undefined;
  }

  private onSenderAttach(ctx: EventContext): void {
    const receiver = ctx.receiver!;
    const link = receiver as unknown as { remote: { attach: { target?: { address?: string } } }; local: { attach: { target?: unknown; max_message_size?: number } } };
    const address = link.remote.attach.target?.address as string;
    receiver.set_target({ address });
    // AMQP 1.0 §2.6.3: a refused link is answered with a null terminus, then detached with the reason.
    const refuse = (condition: string, description: string): void => {
      link.local.attach.target = undefined;
      receiver.close({ condition, description });
    };
    if (address === '$cbs') return;
    if (address !== this.hub && !address.startsWith(`${this.hub}/Partitions/`)) return refuse('amqp:not-found', `no event hub at ${address}`);
    if (this.grantFor(ctx.connection, `${this.endpoint}${address}`) === undefined) {
      this.refusedAttaches++;
      return refuse('amqp:unauthorized-access', `no valid token for ${this.endpoint}${address}; put one on $cbs first`);
    }
    link.local.attach.max_message_size = this.options.maxMessageSize ?? 1024 * 1024;
  }

  private detachExpired(): void {
    for (const connection of this.connections) {
      (connection as unknown as { each_receiver(f: (l: Receiver) => void): void }).each_receiver((link) => {
        const address = link.target?.address as string | undefined;
        if (!link.is_open() || !address || address === '$cbs') return;
        if (this.grantFor(connection, `${this.endpoint}${address}`) !== undefined) return;
        this.expiredDetaches++;
        link.close({ condition: 'amqp:unauthorized-access', description: 'the token for this link expired' });
      });
    }
  }

  /** Checks a put-token request (protocol guide, claims-based authorization) and answers on the reply link. */
  private onCbs(ctx: EventContext): void {
    const request = ctx.message!;
    ctx.delivery!.accept();
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    let status = 202;
    let description = 'Accepted';
    const verdict =
      props.operation !== 'put-token'
        ? 'operation must be put-token'
        : props.type !== 'servicebus.windows.net:sastoken'
          ? 'type must be servicebus.windows.net:sastoken'
          : typeof props.name !== 'string' || typeof request.body !== 'string'
            ? 'name and a string body are required'
            : undefined;
    if (verdict) {
      status = 400;
      description = verdict;
    } else {
      const check = this.verifyToken(request.body as string, props.name as string);
      if (typeof check === 'string') {
        status = 401;
        description = check;
      } else {
        const grants = this.grants.get(ctx.connection) ?? new Map<string, number>();
        grants.set(props.name as string, check);
        this.grants.set(ctx.connection, grants);
      }
    }
    this.cbsRequests.push({ message: request, status, description });
    const replyTo = request.reply_to;
    (ctx.connection as unknown as { each_sender(f: (l: Sender) => void): void }).each_sender((link) => {
      if (link.source?.address !== '$cbs' || (link.name !== replyTo && link.target?.address !== replyTo)) return;
      link.send({ correlation_id: request.message_id, application_properties: { 'status-code': status, 'status-description': description }, body: null });
    });
  }

  /** The token's expiry (ms) when it is a valid SAS token for `audience`, else why not. */
  private verifyToken(token: string, audience: string): number | string {
    const prefix = 'SharedAccessSignature ';
    if (!token.startsWith(prefix)) return 'not a SharedAccessSignature';
    const fields = new Map(
      token
        .slice(prefix.length)
        .split('&')
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const),
    );
    const [sr, sig, se, skn] = ['sr', 'sig', 'se', 'skn'].map((k) => fields.get(k));
    if (!sr || !sig || !se || !skn) return 'sr, sig, se and skn are required';
    if (decodeURIComponent(skn) !== this.keyName) return `unknown key name ${decodeURIComponent(skn)}`;
    if (!audience.toLowerCase().startsWith(decodeURIComponent(sr).toLowerCase())) return `the token is for ${decodeURIComponent(sr)}, not ${audience}`;
    const expected = createHmac('sha256', this.key).update(`${sr}\n${se}`).digest();
    const given = Buffer.from(decodeURIComponent(sig), 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'InvalidSignature: the token signature does not match the key';
    const expiry = Number(se) * 1000;
    if (!(expiry > Date.now())) return 'ExpiredToken: the token has expired';
    return expiry;
  }

  private onTransfer(ctx: EventContext, address: string): void {
    const format = (ctx.delivery as unknown as { format: number }).format;
    if (this.options.tally) {
      this.options.tally(format, ctx.message as Message | Buffer);
      ctx.delivery!.accept();
      return;
    }
    // rhea decodes only format 0; anything else arrives as the raw bytes.
    const message = format === 0 ? ctx.message! : (rhea.message.decode(ctx.message as unknown as Buffer) as unknown as Message);
    let events = [message];
    if (format === BATCH_FORMAT) {
      const body = message.body as { multiple?: boolean; content: Buffer | Buffer[] };
      const sections = body.multiple ? (body.content as Buffer[]) : [body.content as Buffer];
      events = sections.map((bytes) => rhea.message.decode(Buffer.from(bytes)) as unknown as Message);
    }
    const transfer: HubTransfer = { address, format, message, events };
    this.transfers.push(transfer);
    switch (this.outcome(transfer)) {
      case 'accept':
        ctx.delivery!.accept();
        break;
      case 'reject':
        ctx.delivery!.reject({ condition: 'amqp:invalid-field', description: 'refused by the test hub' });
        break;
      case 'release':
        ctx.delivery!.release();
        break;
    }
  }

  /** Destroys every client socket, as a failing network would. */
  dropConnections(): void {
    for (const connection of this.connections) (connection as unknown as { socket: { destroy(): void } }).socket.destroy();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
