// `npm run bench` (here) or `npm run bench:amqp` (repository root): acked-send
// throughput of this client and rhea (and amqp10 on request) against the same
// rhea peer in a child process, for each peer setting asked for: the credit
// the peer grants, the window of unsettled sends, and whether the peer's
// sockets set TCP_NODELAY (rhea's default is not to). Then the latency of a
// fresh connection (connect, attach, one acked send) with the peer's
// TCP_NODELAY off and on, and the codec rates of a typical telemetry message,
// ours and rhea's.
//
//   --rows 5000/1000/on,1000/1000/off   peer credit / unsettled window / peer TCP_NODELAY (on|off)
//   --n 30000 --size 100 --runs 3        messages per run, body bytes, alternating runs (medians are reported)
//   --clients ours,rhea                  add amqp10 to compare with the seed's client
//   --connect on                         off skips the connect latency (connect, attach, one acked send)
//   --codec on                           off skips the codec rates
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import rhea from 'rhea';
import { Client, Policy } from '../src/index.js';
import { Writer } from '../src/codec/encoder.js';
import { decodeMessage, encodeMessage, type Message } from '../src/message.js';

const require = createRequire(import.meta.url);

/** The issue's table: credit / window / peer TCP_NODELAY. */
const DEFAULT_ROWS = '5000/1000/on,1000/2000/on,5000/1000/off,1000/1000/off,1000/2000/off';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

interface Row {
  credit: number;
  window: number;
  noDelay: boolean;
}
const rows: Row[] = flag('rows', DEFAULT_ROWS)
  .split(',')
  .map((r) => {
    const [credit, window, nd] = r.split('/');
    return { credit: Number(credit), window: Number(window), noDelay: nd === 'on' };
  });
const N = Number(flag('n', '30000'));
const SIZE = Number(flag('size', '100'));
const RUNS = Number(flag('runs', '3'));
const CLIENTS = flag('clients', 'ours,rhea').split(',');

interface Peer {
  url: string;
  received(): Promise<number>;
  stop(): void;
}

async function startPeer(credit: number, noDelay: boolean): Promise<Peer> {
  const child = fork(fileURLToPath(new URL('./peer.js', import.meta.url)), [String(credit), noDelay ? 'nodelay' : 'delay'], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return {
    url: `amqp://127.0.0.1:${port}`,
    received: () =>
      new Promise((resolve) => {
        child.once('message', (m: { received: number }) => resolve(m.received));
        child.send({ stats: true });
      }),
    stop: () => child.kill(),
  };
}

type Run = (url: string, body: Buffer, n: number, window: number) => Promise<number>;

/** Runs one client's send benchmark and checks the peer really got every message. */
async function measured(peer: Peer, n: number, run: () => Promise<number>, extra: number): Promise<number> {
  const before = await peer.received();
  const r = await run();
  const got = (await peer.received()) - before;
  if (got !== n + extra) throw new Error(`peer received ${got} messages, expected ${n + extra}`);
  return r;
}

const ours: Run = async (url, body, n, window) => {
  const conn = await Client.connect(url, Policy.Default, { sender: { maxQueued: window * 2 } });
  const sender = await conn.createSender('bench');
  await sender.send({ body }); // warm the link
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const onAck = (): void => {
      if (++acked === n) resolve();
      else if (sent < n) send();
    };
    const send = (): void => {
      sent++;
      sender.send({ body }).then(onAck, reject);
    };
    for (let i = 0; i < window && sent < n; i++) send();
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await conn.close();
  return n / secs;
};

const viaRhea: Run = async (url, body, n, window) => {
  const container = rhea.create_container();
  const { port } = new URL(url);
  const conn = container.connect({ host: '127.0.0.1', port: Number(port), reconnect: false });
  const sender = conn.open_sender('bench');
  await new Promise((r) => sender.once('sendable', r));
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let acked = 0;
    const pump = (): void => {
      while (sent < n && sent - acked < window && sender.sendable()) {
        sender.send({ body: rhea.message.data_section(body) });
        sent++;
      }
    };
    sender.on('sendable', pump);
    sender.on('accepted', () => {
      if (++acked === n) resolve();
      else pump();
    });
    pump();
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const closed = new Promise((r) => conn.once('connection_close', r));
  conn.close();
  await closed;
  return n / secs;
};

const viaAmqp10: Run = async (url, body, n, window) => {
  const amqp10 = require('amqp10');
  const client = new amqp10.Client(amqp10.Policy.merge({ senderLink: { attach: { maxMessageSize: 0 } } }, amqp10.Policy.DefaultPolicy));
  await client.connect(url);
  const sender = await client.createSender('bench');
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const onAck = (): void => {
      if (++acked === n) resolve();
      else if (sent < n) send();
    };
    const send = (): void => {
      sent++;
      sender.send(body).then(onAck, reject);
    };
    for (let i = 0; i < window && sent < n; i++) send();
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await client.disconnect();
  return n / secs;
};

/** Milliseconds to connect, attach a sender and have one message accepted, on a fresh connection. */
const connectOurs = async (url: string): Promise<number> => {
  const started = performance.now();
  const conn = await Client.connect(url);
  const sender = await conn.createSender('bench');
  await sender.send({ body: Buffer.alloc(SIZE, 0x61) });
  const ms = performance.now() - started;
  await conn.close();
  return ms;
};

const connectRhea = async (url: string): Promise<number> => {
  const started = performance.now();
  const container = rhea.create_container();
  const conn = container.connect({ host: '127.0.0.1', port: Number(new URL(url).port), reconnect: false });
  const sender = conn.open_sender('bench');
  await new Promise((r) => sender.once('sendable', r));
  sender.send({ body: rhea.message.data_section(Buffer.alloc(SIZE, 0x61)) });
  await new Promise((r) => sender.once('accepted', r));
  const ms = performance.now() - started;
  const closed = new Promise((r) => conn.once('connection_close', r));
  conn.close();
  await closed;
  return ms;
};

const RUNNERS: Record<string, { run: Run; extra: number }> = {
  ours: { run: ours, extra: 1 },
  rhea: { run: viaRhea, extra: 0 },
  amqp10: { run: viaAmqp10, extra: 0 },
};

function telemetry(i: number): Message {
  return {
    properties: { messageId: `msg-${i}`, contentType: 'application/json', creationTime: new Date(1700000000000 + i) },
    messageAnnotations: { 'x-opt-partition-key': 'device-42' },
    applicationProperties: { deviceId: 'device-42', type: 'temperature', seq: i },
    body: Buffer.from(JSON.stringify({ t: 21.5, h: 40.25, ts: 1700000000000 + i, unit: 'C', site: 'plant-7', line: 3 })),
  };
}

function rate(fn: (i: number) => void, seconds = 1): number {
  for (let i = 0; i < 20000; i++) fn(i); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(seconds * 1e9);
  let now = start;
  while (now < end) {
    for (let k = 0; k < 1000; k++) fn(n++);
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

function codec(): Record<string, number> {
  const m = telemetry(1);
  const r = {
    message_id: m.properties!.messageId,
    content_type: m.properties!.contentType,
    creation_time: m.properties!.creationTime,
    message_annotations: m.messageAnnotations,
    application_properties: m.applicationProperties,
    body: rhea.message.data_section(m.body),
  };
  const w = new Writer();
  const encoded = (() => {
    encodeMessage(w, m);
    return w.toBuffer();
  })();
  const rheaEncoded = rhea.message.encode(r);
  return {
    'ours: encode into the reused output buffer': rate(() => {
      w.reset();
      encodeMessage(w, m);
    }),
    'ours: encode to a new Buffer': rate(() => {
      w.reset();
      encodeMessage(w, m);
      w.toBuffer();
    }),
    'rhea: encode (message.encode)': rate(() => {
      rhea.message.encode(r);
    }),
    'ours: decode': rate(() => {
      decodeMessage(encoded);
    }),
    'rhea: decode (message.decode)': rate(() => {
      rhea.message.decode(rheaEncoded);
    }),
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`# AMQP client benchmark — ${new Date().toISOString()}`);
  console.log(`command: npm run bench:amqp -- ${process.argv.slice(2).join(' ') || '(defaults)'}`);
  console.log(`machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.platform()} ${os.release()}`);
  console.log(`send: acked (unsettled) sends of ${SIZE}-byte bodies, n=${N}, to a rhea peer in a child process on 127.0.0.1; median of ${RUNS} runs, clients alternating\n`);
  const body = Buffer.alloc(SIZE, 0x61);
  console.log(
    `| peer credit | unsettled window | peer TCP_NODELAY | ${CLIENTS.join(' | ')} | ${CLIENTS.slice(1)
      .map((c) => `ours/${c}`)
      .join(' | ')} |`,
  );
  console.log(
    `|---:|---:|---|${CLIENTS.map(() => '---:').join('|')}|${CLIENTS.slice(1)
      .map(() => '---:')
      .join('|')}|`,
  );
  for (const row of rows) {
    const peer = await startPeer(row.credit, row.noDelay);
    try {
      const results: Record<string, number[]> = Object.fromEntries(CLIENTS.map((c) => [c, []]));
      for (let run = 0; run < RUNS; run++) {
        for (const c of run % 2 === 0 ? CLIENTS : [...CLIENTS].reverse()) {
          const { run: fn, extra } = RUNNERS[c];
          results[c].push(await measured(peer, N, () => fn(peer.url, body, N, row.window), extra));
        }
      }
      const med = Object.fromEntries(CLIENTS.map((c) => [c, median(results[c])]));
      console.log(
        `| ${fmt(row.credit)} | ${fmt(row.window)} | ${row.noDelay ? 'on' : 'off'} | ${CLIENTS.map((c) => `${fmt(med[c])}/s`).join(' | ')} | ${CLIENTS.slice(1)
          .map((c) => (med.ours / med[c]).toFixed(2))
          .join(' | ')} |`,
      );
    } finally {
      peer.stop();
    }
  }
  if (flag('connect', 'on') === 'on') {
    console.log('\nconnect: a fresh connection, a sender attached and one message accepted; median of 15, clients alternating\n');
    console.log('| peer TCP_NODELAY | ours | rhea |');
    console.log('|---|---:|---:|');
    for (const noDelay of [false, true]) {
      const peer = await startPeer(1000, noDelay);
      try {
        const times: { ours: number[]; rhea: number[] } = { ours: [], rhea: [] };
        for (let i = 0; i < 15; i++) {
          times.ours.push(await connectOurs(peer.url));
          times.rhea.push(await connectRhea(peer.url));
        }
        console.log(`| ${noDelay ? 'on' : 'off'} | ${median(times.ours).toFixed(1)} ms | ${median(times.rhea).toFixed(1)} ms |`);
      } finally {
        peer.stop();
      }
    }
  }
  if (flag('codec', 'on') === 'off') return;
  console.log('\ncodec: typical telemetry message (properties, message-annotations, application-properties, 90-byte JSON data section)');
  const c = codec();
  for (const [k, v] of Object.entries(c)) console.log(`  ${k}: ${fmt(v)} msg/s`);
  console.log(
    `  encode ours/rhea: ${(c['ours: encode into the reused output buffer'] / c['rhea: encode (message.encode)']).toFixed(2)}x (to a new Buffer: ${(c['ours: encode to a new Buffer'] / c['rhea: encode (message.encode)']).toFixed(2)}x)`,
  );
  console.log(`  decode ours/rhea: ${(c['ours: decode'] / c['rhea: decode (message.decode)']).toFixed(2)}x`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
