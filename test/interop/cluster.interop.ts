// Interop: three Nitrogen processes (`node dist/bin/nitrogen.js` with deploy/nitrogen.json) behind
// nginx (deploy/nginx.conf.template), on a throwaway PostgreSQL and Redis: the topology of
// `npm run cluster` and deploy/compose.yaml. The test starts every peer itself on free ports, so it
// needs only the Debian packages nginx, libnginx-mod-stream, redis-server and postgresql.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { postgresAvailable } from '../../bench/lib/postgres-server.js';
import { redisAvailable } from '../../bench/lib/redis-server.js';
import { DEPLOY_DIR, findNginx, startTopology, type Instance, type Topology } from '../../deploy/local/topology.js';
import type { Message } from '../../core/message.js';
import { eventually, openEventStream } from '../helpers/cluster.js';
import type { TestServer } from '../helpers/server.js';
import { RheaBroker } from '../sinks-amqp/rhea-broker.js';

/** The sink every instance is configured with: its partitions are leased across the three. */
const PARTITIONS = 6;
const LEASE_TTL_MS = 2000;
const SINK_BATCH = 100;

/** The REST API of one instance or of the front door, as the admin or a given principal. */
class Api {
  constructor(
    readonly origin: string,
    private readonly adminToken: string,
  ) {}

  get restUrl(): string {
    return `${this.origin}/api/v1`;
  }

  async call(method: string, path: string, body?: unknown, token = this.adminToken): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.restUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
  }

  async register(ids: Array<{ type: 'device' | 'app'; id: string }>): Promise<Array<{ id: string; secret: string }>> {
    const res = await this.call('POST', '/principals', ids);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.principals.map((p: { principal: { id: string }; secret: string }) => ({ id: p.principal.id, secret: p.secret }));
  }

  async token(id: string, secret: string): Promise<string> {
    const res = await fetch(`${this.restUrl}/principals/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, secret }) });
    assert.equal(res.status, 200);
    return ((await res.json()) as { accessToken: string }).accessToken;
  }

  /** Every stored message of `from`, oldest first. */
  async stored(from: string): Promise<Message[]> {
    const all: Message[] = [];
    let cursor: string | null = null;
    do {
      const res = await this.call('GET', `/messages?from=${from}&order=asc&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      all.push(...res.body.messages);
      cursor = res.body.next;
    } while (cursor);
    return all;
  }
}

function mqtt(url: string, device: { id: string; secret: string }, options: IClientOptions = {}): Promise<MqttClient> {
  return connectAsync(url, { username: device.id, password: device.secret, clientId: `${device.id}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 0, connectTimeout: 5000, ...options });
}

/**
 * Devices publishing QoS 1 telemetry `{ seq }` one after another through `url`, reconnecting when
 * their connection ends (mqtt.js resends what was in flight). A message counts once its PUBACK came.
 */
class Load {
  readonly acked = new Map<string, Set<number>>();
  readonly clients: MqttClient[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(url: string, devices: Array<{ id: string; secret: string }>) {
    for (const device of devices) {
      const acked = new Set<number>();
      this.acked.set(device.id, acked);
      this.loops.push(
        (async () => {
          const client = await mqtt(url, device, { clientId: `${device.id}-load`, reconnectPeriod: 100 });
          this.clients.push(client);
          for (let seq = 0; this.running; seq++) {
            await client.publishAsync(`devices/${device.id}/messages/telemetry`, JSON.stringify({ seq }), { qos: 1 });
            acked.add(seq);
          }
        })(),
      );
    }
  }

  get total(): number {
    let n = 0;
    for (const set of this.acked.values()) n += set.size;
    return n;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.endAsync(true)));
  }
}

const haveAll = postgresAvailable() && redisAvailable() && (findNginx() !== null || process.env.CI === 'true');

(haveAll ? describe : describe.skip)('cluster interop: three instances behind nginx, on PostgreSQL and Redis', function () {
  this.timeout(180_000);
  let topology: Topology;
  let front: Api;
  let a: Api;
  let b: Api;
  let c: Api;
  let broker: RheaBroker;
  const configFile = join(tmpdir(), `nitrogen-cluster-interop-${process.pid}.json`);
  const clients: MqttClient[] = [];

  before(async () => {
    // deploy/nitrogen.json as the containers run it, with a sink added (an AMQP 1.0 peer in this process).
    broker = await RheaBroker.start();
    const config = JSON.parse(readFileSync(join(DEPLOY_DIR, 'nitrogen.json'), 'utf8'));
    config.cluster.sinkLeaseTtl = `${LEASE_TTL_MS}ms`;
    config.sinks = [{ use: 'amqp', name: 'hub', options: { url: '${SINK_URL}', address: 'telemetry' }, delivery: { partitions: PARTITIONS, batchSize: SINK_BATCH, lingerMs: 5, pollMs: 200, retryMinMs: 50, retryMaxMs: 500 } }];
    writeFileSync(configFile, JSON.stringify(config));
    topology = await startTopology({ instances: 3, configFile, env: { SINK_URL: broker.url } });
    const admin = await new Api(topology.frontRest, '').token('admin', topology.adminSecret);
    front = new Api(topology.frontRest, admin);
    [a, b, c] = topology.instances.map((x) => new Api(x.rest, admin)) as [Api, Api, Api];
  });
  after(async () => {
    await topology?.stop();
    await broker?.stop();
    rmSync(configFile, { force: true });
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.endAsync(true).catch(() => undefined);
  });
  const instance = (i: number): Instance => topology.instances[i]!;

  async function connect(url: string, device: { id: string; secret: string }, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await mqtt(url, device, options);
    clients.push(client);
    return client;
  }

  it('carries a command sent through B to a device on A, telemetry through A to an SSE stream on C, and a revocation on B to A', async () => {
    const [device, app] = await front.register([
      { type: 'device', id: 'ix-car' },
      { type: 'app', id: 'ix-dash' },
    ]);
    assert.equal((await b.call('POST', '/permissions', { issuedTo: 'ix-dash', principalFor: 'ix-car', action: 'subscribe', authorized: true })).status, 201);
    const car = await connect(instance(0).mqtt, device!);
    await car.subscribeAsync('devices/ix-car/commands/#', { qos: 1 });
    const commands: string[] = [];
    car.on('message', (_topic, payload) => commands.push(JSON.parse(payload.toString()).id));

    const command = await b.call('POST', '/messages', { type: 'unlock', to: 'ix-car', body: { door: 1 } });
    assert.equal(command.status, 201, JSON.stringify(command.body));
    await eventually(async () => (commands.includes(command.body.messages[0].id) ? true : undefined), 'the command on A');

    const stream = await openEventStream({ restUrl: c.restUrl } as TestServer, 'from=ix-car', await c.token(app!.id, app!.secret));
    try {
      await car.publishAsync('devices/ix-car/messages/telemetry', JSON.stringify({ speed: 88 }), { qos: 1 });
      assert.deepEqual((await stream.next((e) => e.type === 'telemetry')).body, { speed: 88 });
    } finally {
      stream.close();
    }

    const closed = new Promise<void>((resolve) => car.once('close', () => resolve()));
    assert.equal((await b.call('PATCH', '/principals/ix-car', { enabled: false })).status, 200);
    await closed;
    await assert.rejects(mqtt(instance(0).mqtt, device!), /Not authorized|Bad username/);
  });

  it('delivers a QoS 1 command queued for an offline persistent session after the device reconnects through another instance', async () => {
    const [device] = await front.register([{ type: 'device', id: 'ix-away' }]);
    const first = await connect(instance(0).mqtt, device!, { clientId: 'ix-away-1', clean: false });
    await first.subscribeAsync('devices/ix-away/commands/#', { qos: 1 });
    await first.endAsync();
    // B matches the command against every persistent subscription it heard of on the bus.
    await eventually(async () => ((await fetch(`${instance(1).rest}/metrics`).then((r) => r.text())).match(/^nitrogen_mqtt_persistent_subscriptions ([1-9])/m) ? true : undefined), 'B to know the subscription');
    const command = await b.call('POST', '/messages', { type: 'flash', to: 'ix-away', body: { lights: 3 } });
    assert.equal(command.status, 201);

    const again = await connect(instance(2).mqtt, device!, { clientId: 'ix-away-1', clean: false });
    const got = await new Promise<{ topic: string; id: string }>((resolve) => again.once('message', (topic, payload) => resolve({ topic, id: JSON.parse(payload.toString()).id })));
    assert.deepEqual(got, { topic: 'devices/ix-away/commands/flash', id: command.body.messages[0].id });
  });

  it('keeps acknowledging through nginx while Redis restarts, and live delivery resumes', async () => {
    const devices = await front.register([
      { type: 'device', id: 'ix-r1' },
      { type: 'device', id: 'ix-r2' },
      { type: 'device', id: 'ix-r3' },
    ]);
    const [app] = await front.register([{ type: 'app', id: 'ix-ops' }]);
    assert.equal((await front.call('POST', '/permissions', { issuedTo: 'ix-ops', principalFor: null, action: 'subscribe', authorized: true })).status, 201);
    const load = new Load(topology.frontMqtt, devices);
    const stream = await openEventStream({ restUrl: c.restUrl } as TestServer, 'type=marker', await c.token(app!.id, app!.secret));
    try {
      await eventually(async () => (load.total >= 60 ? true : undefined), 'load through nginx', 30_000);
      await topology.redis.halt();
      const before = load.total;
      await eventually(async () => (load.total >= before + 60 ? true : undefined), 'acknowledgements while Redis is down', 30_000);
      await topology.redis.start();
      // Every instance is back on the bus: a marker committed on each reaches the stream on C live.
      await eventually(
        async () => {
          const sent = await Promise.all(
            devices.map(async (device, i) => {
              const res = await new Api(topology.instances[i]!.rest, '').call('POST', '/messages', { type: 'marker', body: { i } }, await a.token(device.id, device.secret));
              return res.body.messages[0].id as string;
            }),
          );
          try {
            for (const id of sent) await stream.next((e) => e.id === id, 1000);
            return true;
          } catch {
            return undefined;
          }
        },
        'live delivery from every instance after Redis came back',
        30_000,
      );
      const after = load.total;
      await eventually(async () => (load.total >= after + 60 ? true : undefined), 'acknowledgements after Redis came back', 30_000);
    } finally {
      stream.close();
      await load.stop();
    }
    for (const device of devices) {
      const stored = new Set((await front.stored(device.id)).filter((m) => m.type === 'telemetry').map((m) => (m.body as { seq: number }).seq));
      const missing = [...load.acked.get(device.id)!].filter((seq) => !stored.has(seq));
      assert.deepEqual(missing, [], `acknowledged messages of ${device.id} missing from the store`);
    }
  });

  it('drains an instance on SIGTERM: requests and new MQTT connections through nginx go on being served', async () => {
    const [device] = await front.register([{ type: 'device', id: 'ix-drain' }]);
    const victim = instance(1);
    let served = 0;
    const failures: string[] = [];
    let running = true;
    const traffic = (async () => {
      while (running) {
        const res = await front.call('GET', '/messages?limit=1').catch((err: Error) => ({ status: 0, body: err.message }));
        if (res.status === 200) served++;
        else failures.push(`GET ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        const client = await mqtt(topology.frontMqtt, device!).catch((err: Error) => void failures.push(`CONNECT ${err.message}`));
        if (client) await client.endAsync();
      }
    })();
    try {
      await eventually(async () => (served >= 20 ? true : undefined), 'traffic through nginx');
      const before = served;
      await victim.kill('SIGTERM');
      await eventually(async () => (served >= before + 40 ? true : undefined), 'traffic after the instance stopped', 30_000);
    } finally {
      running = false;
      await traffic;
    }
    assert.deepEqual(failures, [], 'nothing refused while the instance drained and after');
    await victim.start();
  });

  /** The sink partitions each instance feeds now (GET /sinks lists this instance's), null for one that does not answer. */
  const partitionsFed = () =>
    Promise.all(topology.instances.map(async (x) => (x.running ? ((await new Api(x.rest, '').call('GET', '/sinks', undefined, await front.token('admin', topology.adminSecret))).body.sinks.length as number) : null)));

  /** Deliveries at the AMQP peer of `from`'s telemetry, counted by seq. */
  function delivered(from: string): Map<number, number> {
    const counts = new Map<number, number>();
    for (const message of broker.received.get('telemetry') ?? []) {
      const envelope = JSON.parse(Buffer.from((message.body as { content: Buffer }).content).toString('utf8'));
      if (envelope.from === from && envelope.type === 'telemetry') counts.set(envelope.body.seq, (counts.get(envelope.body.seq) ?? 0) + 1);
    }
    return counts;
  }

  it('loses no acknowledged message when an instance is SIGKILLed under QoS 1 load through nginx; its sink partitions move within the lease time', async () => {
    const fed = await eventually(async () => {
      const now = await partitionsFed();
      return now.every((n) => n !== null && n > 0) && now.reduce((a, b) => a! + b!, 0) === PARTITIONS ? now : undefined;
    }, 'the sink partitions spread over the three instances');
    const devices = await front.register(Array.from({ length: 9 }, (_, i) => ({ type: 'device' as const, id: `ix-k${i}` })));
    const load = new Load(topology.frontMqtt, devices);
    const victim = instance(2);
    let movedInMs: number;
    try {
      await eventually(async () => (load.total >= 300 ? true : undefined), 'load through nginx', 30_000);
      const held = Number(/^nitrogen_mqtt_connections (\d+)/m.exec(await fetch(`${victim.rest}/metrics`).then((r) => r.text()))?.[1]);
      assert.ok(held >= 2, `nginx spread the devices: the instance to kill holds ${held} of them`);
      await victim.kill('SIGKILL');
      const killedAt = Date.now();
      const atKill = new Map([...load.acked].map(([id, set]) => [id, set.size]));
      // The two left take the victim's partitions once its lease and membership expire.
      await eventually(
        async () => {
          const now = await partitionsFed();
          return now[0]! + now[1]! === PARTITIONS ? true : undefined;
        },
        "the victim's sink partitions to get a new owner",
        30_000,
      );
      movedInMs = Date.now() - killedAt;
      // least_conn spread the nine over the three: each device goes on through the two left.
      await eventually(async () => ([...load.acked].every(([id, set]) => set.size >= atKill.get(id)! + 20) ? true : undefined), 'every device to reconnect through the other instances and go on', 60_000);
    } finally {
      await load.stop();
    }
    let duplicates = 0;
    for (const device of devices) {
      const stored = new Set((await front.stored(device.id)).map((m) => (m.body as { seq: number }).seq));
      const acked = [...load.acked.get(device.id)!];
      assert.deepEqual(
        acked.filter((seq) => !stored.has(seq)),
        [],
        `acknowledged messages of ${device.id} missing from the store`,
      );
      const counts = await eventually(
        async () => {
          const now = delivered(device.id);
          return acked.every((seq) => now.has(seq)) ? now : undefined;
        },
        `every acknowledged message of ${device.id} at the sink`,
        60_000,
      );
      for (const n of counts.values()) duplicates += n - 1;
    }
    // A partition re-sends at most what its dead owner sent past its last checkpoint: the batch in
    // flight and the one whose checkpoint write overlapped it.
    const bound = fed[2]! * 2 * SINK_BATCH;
    console.log(`      SIGKILL: ${load.total} acknowledged, partitions moved in ${movedInMs} ms (lease ${LEASE_TTL_MS} ms), ${duplicates} duplicates at the sink (bound ${bound})`);
    assert.ok(movedInMs <= LEASE_TTL_MS + LEASE_TTL_MS / 3 + 3000, `partitions moved in ${movedInMs} ms`);
    assert.ok(duplicates <= bound, `${duplicates} duplicates, more than the batches in flight allow (${bound})`);
    await victim.start();
  });
});
