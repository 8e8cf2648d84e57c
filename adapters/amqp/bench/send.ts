// `npm run bench:amqp`: acked-send throughput of our client, rhea and amqp10
// against the same peer (a separate process), and encode/decode rates of a
// typical telemetry message with our codec and rhea's.
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import rhea from 'rhea';
import { Client, Policy } from '../src/index.js';
import { Writer } from '../src/codec/encoder.js';
import { decodeMessage, encodeMessage, type Message } from '../src/message.js';

const WINDOW = 1000; // unsettled sends in flight, for every client alike
const require = createRequire(import.meta.url);

interface Peer { url: string; received(): Promise<number>; stop(): void }

async function startPeer(): Promise<Peer> {
  const child = fork(fileURLToPath(new URL('./peer.js', import.meta.url)), { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return {
    url: `amqp://127.0.0.1:${port}`,
    received: () => new Promise((resolve) => { child.once('message', (m: { received: number }) => resolve(m.received)); child.send({ stats: true }); }),
    stop: () => child.kill(),
  };
}

/** Runs one client's send benchmark and checks the peer really got every message. */
async function measured(peer: Peer, n: number, run: () => Promise<number>, extra = 0): Promise<number> {
  const before = await peer.received();
  const r = await run();
  const got = (await peer.received()) - before;
  if (got !== n + extra) throw new Error(`peer received ${got} messages, expected ${n + extra}`);
  return r;
}

async function ours(url: string, body: Buffer, n: number): Promise<number> {
  const conn = await Client.connect(url, Policy.Default, { sender: { maxQueued: WINDOW * 2 } });
  const sender = await conn.createSender('bench');
  await sender.send({ body }); // warm the link
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const onAck = (): void => { if (++acked === n) resolve(); else if (sent < n) send(); };
    const send = (): void => { sent++; sender.send({ body }).then(onAck, reject); };
    for (let i = 0; i < WINDOW && sent < n; i++) send();
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await conn.close();
  return n / secs;
}

async function viaRhea(url: string, body: Buffer, n: number): Promise<number> {
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
      while (sent < n && sent - acked < WINDOW && sender.sendable()) { sender.send({ body: rhea.message.data_section(body) }); sent++; }
    };
    sender.on('sendable', pump);
    sender.on('accepted', () => { if (++acked === n) resolve(); else pump(); });
    pump();
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  conn.close();
  return n / secs;
}

async function viaAmqp10(url: string, body: Buffer, n: number): Promise<number> {
  const amqp10 = require('amqp10');
  const client = new amqp10.Client(amqp10.Policy.merge({ senderLink: { attach: { maxMessageSize: 0 } } }, amqp10.Policy.DefaultPolicy));
  await client.connect(url);
  const sender = await client.createSender('bench');
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const onAck = (): void => { if (++acked === n) resolve(); else if (sent < n) send(); };
    const send = (): void => { sent++; sender.send(body).then(onAck, reject); };
    for (let i = 0; i < WINDOW && sent < n; i++) send();
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await client.disconnect();
  return n / secs;
}

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
  while (now < end) { for (let k = 0; k < 1000; k++) fn(n++); now = process.hrtime.bigint(); }
  return n / (Number(now - start) / 1e9);
}

function codec(): Record<string, number> {
  const m = telemetry(1);
  const r = {
    message_id: m.properties!.messageId, content_type: m.properties!.contentType, creation_time: m.properties!.creationTime,
    message_annotations: m.messageAnnotations, application_properties: m.applicationProperties, body: rhea.message.data_section(m.body as Buffer),
  };
  const w = new Writer();
  const encoded = (() => { encodeMessage(w, m); return w.toBuffer(); })();
  const rheaEncoded = rhea.message.encode(r as never);
  return {
    'ours: encode into the reused output buffer': rate(() => { w.reset(); encodeMessage(w, m); }),
    'ours: encode to a new Buffer': rate(() => { w.reset(); encodeMessage(w, m); w.toBuffer(); }),
    'rhea: encode (message.encode)': rate(() => { rhea.message.encode(r as never); }),
    'ours: decode': rate(() => { decodeMessage(encoded); }),
    'rhea: decode (message.decode)': rate(() => { rhea.message.decode(rheaEncoded); }),
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`# AMQP client benchmark — ${new Date().toISOString()}`);
  console.log(`command: npm run bench:amqp`);
  console.log(`machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, ${os.platform()} ${os.release()}`);
  console.log(`send: acked (unsettled) sends, ${WINDOW} in flight, to a rhea peer in a child process on 127.0.0.1; best of 3 runs\n`);
  const peer = await startPeer();
  try {
    for (const [label, size, n] of [['100 B', 100, 50000], ['1 KiB', 1024, 30000]] as const) {
      const body = Buffer.alloc(size, 0x61);
      const best = { ours: 0, rhea: 0, amqp10: 0 };
      for (let run = 0; run < 3; run++) {
        best.ours = Math.max(best.ours, await measured(peer, n, () => ours(peer.url, body, n), 1));
        best.rhea = Math.max(best.rhea, await measured(peer, n, () => viaRhea(peer.url, body, n)));
        best.amqp10 = Math.max(best.amqp10, await measured(peer, 20000, () => viaAmqp10(peer.url, body, 20000)));
      }
      console.log(`send ${label} (n=${n}; amqp10 n=20000): ours ${fmt(best.ours)} msg/s | rhea ${fmt(best.rhea)} msg/s | amqp10 ${fmt(best.amqp10)} msg/s | ours/rhea ${(best.ours / best.rhea).toFixed(2)}x | ours/amqp10 ${(best.ours / best.amqp10).toFixed(1)}x`);
    }
  } finally {
    peer.stop();
  }
  console.log('\ncodec: typical telemetry message (properties, message-annotations, application-properties, 90-byte JSON data section)');
  const c = codec();
  for (const [k, v] of Object.entries(c)) console.log(`  ${k}: ${fmt(v)} msg/s`);
  console.log(`  encode ours/rhea: ${(c['ours: encode into the reused output buffer'] / c['rhea: encode (message.encode)']).toFixed(2)}x (to a new Buffer: ${(c['ours: encode to a new Buffer'] / c['rhea: encode (message.encode)']).toFixed(2)}x)`);
  console.log(`  decode ours/rhea: ${(c['ours: decode'] / c['rhea: decode (message.decode)']).toFixed(2)}x`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
