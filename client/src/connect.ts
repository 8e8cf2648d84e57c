import { ClientError, badOption } from './errors.js';
import type { StreamOpener } from './mqtt/connection.js';
import type { MqttWire } from './mqtt/mqtt-wire.js';
import { settings as checkSettings, type ConnectOptions, type Settings, type TlsOptions } from './options.js';
import { Outbox } from './outbox.js';
import { MemoryStore, type QueueStore } from './queue/queue-store.js';
import { Rest } from './rest.js';
import { RestCarrier } from './rest-carrier.js';
import { Session } from './session.js';
import { Tokens } from './tokens.js';

/** What differs between Node and the browser. */
export interface Platform {
  /** MQTT (Node: over TCP); absent in the browser, whose bundle then holds none of its code. */
  mqtt?: {
    opener(url: URL, tls: TlsOptions | undefined): StreamOpener;
    wire(...args: ConstructorParameters<typeof MqttWire>): MqttWire;
  };
  /** The queue file (Node). */
  fileStore?: (s: Settings, report: { error(e: ClientError): void; warning(message: string): void }) => QueueStore;
}

/** The MQTT endpoint the server advertises (`GET /headwaiter`), or null when it runs none. */
async function headwaiter(rest: Rest): Promise<string | null> {
  const answer = await rest.call<{ endpoints?: { mqtt?: unknown } }>('GET', '/headwaiter', undefined, { auth: false });
  const mqtt = answer.endpoints?.mqtt;
  if (mqtt === null || mqtt === undefined) return null;
  if (typeof mqtt !== 'string' || !/^mqtts?:\/\//.test(mqtt)) throw new ClientError('NITROGEN_CLIENT_PROTOCOL', 'GET /headwaiter: endpoints.mqtt is not an MQTT URL');
  return mqtt;
}

/**
 * Connects a principal. With `waitForServer` (the default) it resolves once connected and
 * rejects if the first attempt fails; without, it resolves as soon as the queue is open and
 * connects in the background, retrying with backoff, so a device can start and queue while the
 * server is away.
 */
export async function connectWith(platform: Platform, options: ConnectOptions): Promise<Session> {
  const s = checkSettings(options);
  if (s.queueFile !== undefined && !platform.fileStore) throw badOption('queue.file', 'a queue file needs Node.js; in the browser the queue is in memory');
  if (s.mqtt && !platform.mqtt) throw badOption('mqtt', 'MQTT needs Node.js here; in the browser the session uses REST and SSE');
  if (s.tls && !platform.mqtt) throw badOption('tls', 'TLS options are for mqtts:// in Node.js; a browser uses its own for https://');
  if (s.transport === 'mqtt' && (!platform.mqtt || s.mqtt === false)) throw badOption('transport', '"mqtt" needs Node.js and an MQTT endpoint');

  const auth = new Rest({ url: s.url, requestTimeoutMs: s.requestTimeoutMs }, null);
  const tokens = new Tokens(s.id, s.credential, (id, secret) => auth.call('POST', '/principals/auth', { id, secret }, { auth: false }));
  const rest = new Rest({ url: s.url, requestTimeoutMs: s.requestTimeoutMs }, tokens);
  // Events reach the session once it exists; until then there is nothing to report to.
  let session: Session | null = null;
  const report = { error: (e: ClientError) => session?.handle.error(e), warning: (m: string) => session?.handle.warning(m) };
  const store = s.queueFile !== undefined ? platform.fileStore!(s, report) : new MemoryStore();
  const outbox = new Outbox(store, s.limits, {
    rejected: (id, error) => session?.handle.rejected(id, error),
    dropped: (id, error) => session?.handle.dropped(id, error),
  });
  await outbox.restore();

  const useMqtt = platform.mqtt !== undefined && s.mqtt !== false && s.transport !== 'rest';
  let restCarrier: RestCarrier | null = null;
  let first: { resolve(): void; reject(e: Error): void } | null = null;
  const firstOutcome = new Promise<void>((resolve, reject) => (first = { resolve, reject }));
  firstOutcome.catch(() => {});
  const settle = (error: Error | null) => {
    const f = first;
    first = null;
    if (f) error ? f.reject(error) : f.resolve();
  };

  if (useMqtt) {
    let opener: StreamOpener | null = null;
    const mqttWire = platform.mqtt!.wire(
      s.id,
      {
        // The endpoint is found at the first attempt that reaches the server, so a device may start while it is away.
        opener: async () => {
          if (opener) return opener;
          const endpoint = s.mqtt || (await headwaiter(auth));
          if (!endpoint) throw badOption('mqtt', 'the server advertises no MQTT endpoint (GET /headwaiter); use transport: "rest"');
          return (opener = platform.mqtt!.opener(new URL(endpoint), s.tls));
        },
        clientId: s.clientId,
        username: s.id,
        password: () => tokens.mqttPassword(),
        passwordRenewAt: () => (tokens.usesToken ? tokens.renewAt : null),
        keepaliveSeconds: s.keepaliveSeconds,
        connectTimeoutMs: s.connectTimeoutMs,
        maxPacketBytes: s.maxPacketBytes,
        backoff: s.backoff,
        resetAfterMs: s.resetAfterMs,
      },
      s.inflight,
      outbox,
      {
        online: () => (settle(null), session?.handle.online()),
        offline: (error) => {
          session?.handle.offline(error);
          if (error instanceof ClientError && error.code === 'NITROGEN_CLIENT_PROTOCOL') session?.handle.error(error);
        },
        failed: (error) => {
          if (first && s.waitForServer) return settle(error);
          session?.handle.offline(error);
          // Refused credentials and the like will not pass by themselves: the application must hear of it.
          if (!(error instanceof ClientError) || !error.retryable) session?.handle.error(asClientError(error));
        },
        suspect: (message) => void session?.handle.suspect(message),
        error: (error) => session?.handle.error(error),
        malformed: (topic) => session?.handle.error(new ClientError('NITROGEN_CLIENT_PROTOCOL', `a message on ${topic} is not a JSON envelope; it was skipped`, { topic })),
      },
    );
    session = new Session({
      settings: s,
      rest,
      tokens,
      outbox,
      restCarrier: null,
      connect: (o) => connectWith(platform, o),
      mqtt: { subscribe: (filter, handler) => mqttWire.subscribe(filter, handler), close: () => mqttWire.link.close() },
    });
    mqttWire.link.start();
  } else {
    restCarrier = new RestCarrier(rest, outbox, s.restBatch, s.backoff, { online: () => session?.handle.online(), offline: (e) => session?.handle.offline(e) });
    session = new Session({ settings: s, rest, tokens, outbox, mqtt: null, restCarrier, connect: (o) => connectWith(platform, o) });
    // Authenticating first tells at once whether the server is there and takes the credentials.
    tokens.token().then(
      () => (settle(null), session!.handle.online(), outbox.attach(restCarrier)),
      (err: Error) => (s.waitForServer ? settle(err) : (outbox.attach(restCarrier), session!.handle.offline(err))),
    );
  }
  if (!s.waitForServer) return session;
  try {
    await firstOutcome;
  } catch (err) {
    await session.close();
    throw err;
  }
  return session;
}

function asClientError(error: Error): ClientError {
  return error instanceof ClientError ? error : new ClientError('NITROGEN_CLIENT_PROTOCOL', error.message, undefined, undefined, { cause: error });
}
