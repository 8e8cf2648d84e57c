// The entry of a delivery worker thread (core/worker-sink.ts): it creates one sink from its
// plugin, off the ingest thread, and sends the packed batches the main thread hands it. The
// main thread keeps the feed position, checkpoints, retries and dead letters (sink-runner.ts);
// here is only what costs CPU per message: mapping, encoding, the AMQP link and its outcomes.
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { rootContainer } from './di.js';
import { isNitrogenError } from './errors.js';
import { createLogger } from './logger.js';
import type { Message } from './message.js';
import type { Plugin } from './plugin.js';
import type { Sink } from './ports/sink.js';
import { unpackRecords } from './record-batch.js';
import type { WorkerSinkData, FromWorker, ToWorker } from './worker-sink.js';

const data = workerData as WorkerSinkData;
const port = parentPort!;
const post = (message: FromWorker): void => port.postMessage(message);

/** An error as data: code, message and details survive the trip (the runner reads REJECTED's `details.index`). */
function describe(err: unknown): { code?: string; message: string; details?: Record<string, unknown> } {
  const message = (err as Error)?.message ?? String(err);
  return isNitrogenError(err) ? { code: err.code, message, details: err.details } : { message };
}

async function main(): Promise<void> {
  const logger = createLogger(data.level as never).child({ plugin: data.name, thread: 'delivery' });
  const metrics = new Registry();
  const loaded = (await import(data.module)) as Record<string, Plugin<'sink', unknown>>;
  const plugin = loaded[data.exportName]!;
  const options = plugin.options ? plugin.options.parse(data.options) : data.options;
  const sink: Sink = await plugin.create({ container: rootContainer.createChildContainer(), config: data.config as never, logger, metrics, dataDir: data.dataDir, name: data.name }, options);
  await sink.start?.();
  // Counters the sink keeps (e.g. token renewals) reach the server's /metrics through the main thread.
  const publish = async (): Promise<void> => post({ op: 'metrics', metrics: (await metrics.getMetricsAsJSON()).filter((m) => m.type === ('counter' as never)) });
  const timer = setInterval(() => void publish(), 1000);
  port.on('message', (message: ToWorker) => {
    if (message.op === 'send') {
      const records = unpackRecords(Buffer.from(message.buf));
      const send = sink.sendRecords ? sink.sendRecords(records) : sink.send(records.map((r) => JSON.parse(r.json.toString('utf8')) as Message));
      send.then(
        () => post({ op: 'done', id: message.id }),
        (err: unknown) => post({ op: 'done', id: message.id, error: describe(err) }),
      );
    } else if (message.op === 'stop') {
      clearInterval(timer);
      void Promise.resolve(sink.stop?.())
        .then(publish)
        .finally(() => port.close());
    }
  });
  post({ op: 'ready' });
}

main().catch((err: unknown) => post({ op: 'failed', error: describe(err) }));
