import { Agent, request } from 'node:http';
import type { LoadReport } from './load-worker.js';

/**
 * The REST load generator, a child process like the MQTT one and driven by the same messages
 * (connect, start, mark, report, stop): `concurrency` keep-alive connections, each with one
 * `POST` of a batch in flight at a time, each connection with its own device token. A batch
 * counts as acknowledged when it is answered 201; other answers are counted as errors by status.
 */
export interface HttpLoadConfig {
  /** The full URL to POST to, e.g. http://127.0.0.1:3000/api/v1/messages. */
  url: string;
  /** Bearer tokens, one per connection (reused round robin if fewer). */
  tokens: string[];
  concurrency: number;
  /** Request bodies (JSON arrays of `batch` envelopes), sent in turn. */
  bodies: string[];
  batch: number;
}

let config: HttpLoadConfig;
let agent: Agent;
let running = false;
let measuring = false;
let acked = 0;
let sent = 0;
let ackedAtMark = 0;
let markedAt = 0;
let latencies: number[] = [];
const statuses = new Map<string, number>();
let inflight = 0;

/** One request; resolves with its status, or a network error's code. */
function post(slot: number, body: string): Promise<string> {
  const url = new URL(config.url);
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${config.tokens[slot % config.tokens.length]}` },
      },
      (res) => {
        res.resume(); // the answer is read and dropped: its size is the server's cost, not ours
        res.once('end', () => resolve(String(res.statusCode)));
      },
    );
    req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(body);
  });
}

async function connection(slot: number): Promise<void> {
  for (let n = slot; running; n += config.concurrency) {
    const started = performance.now();
    sent += config.batch;
    inflight++;
    const status = await post(slot, config.bodies[n % config.bodies.length]!);
    inflight--;
    if (status === '201') {
      acked += config.batch;
      if (measuring) latencies.push(performance.now() - started);
    } else {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      // 503 is backpressure (docs/architecture.md, "Delivery"): wait a little instead of hammering.
      if (status === '503') await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function report(): LoadReport {
  measuring = false;
  return {
    acked: acked - ackedAtMark,
    ackedTotal: acked,
    sentTotal: sent,
    seconds: (performance.now() - markedAt) / 1000,
    latenciesMs: latencies,
    errors: [...statuses].map(([status, n]) => `${n} answers ${status}`),
    connected: config.concurrency,
    connectSeconds: 0,
  };
}

process.on('message', async (msg: { op: string; config?: HttpLoadConfig; drainMs?: number }) => {
  if (msg.op === 'connect') {
    config = msg.config!;
    agent = new Agent({ keepAlive: true, maxSockets: config.concurrency });
    process.send!({ op: 'connected', count: config.concurrency });
  } else if (msg.op === 'start') {
    running = true;
    for (let slot = 0; slot < config.concurrency; slot++) void connection(slot);
  } else if (msg.op === 'mark') {
    ackedAtMark = acked;
    markedAt = performance.now();
    latencies = [];
    measuring = true;
  } else if (msg.op === 'report') {
    const r = report();
    const sorted = Float64Array.from(r.latenciesMs).sort();
    const pick = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
    process.send!({ op: 'report', report: { ...r, latenciesMs: [], p50: pick(0.5), p99: pick(0.99), max: sorted.length ? sorted[sorted.length - 1] : NaN } });
  } else if (msg.op === 'stop') {
    running = false;
    const deadline = performance.now() + (msg.drainMs ?? 0);
    while (inflight > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    agent?.destroy();
    process.send!({ op: 'stopped', ackedTotal: acked, sentTotal: sent });
    process.exit(0);
  }
});
