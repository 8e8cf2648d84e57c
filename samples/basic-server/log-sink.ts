import type { Writable } from 'node:stream';
import { z } from 'zod';
import { definePlugin, type Message, type Sink } from 'nitrogen';

/**
 * The smallest useful Sink: writes one line per message. A real sink sends downstream and
 * resolves `send` only once the downstream accepted the batch; this one accepts by writing.
 */
export class LogSink implements Sink {
  constructor(
    readonly name: string,
    private readonly out: Writable,
    private readonly prefix: string,
  ) {}

  async send(batch: Message[]): Promise<void> {
    for (const m of batch) this.out.write(`${this.prefix} ${m.ts} ${m.from} ${m.type} ${JSON.stringify(m.body)}\n`);
  }
}

/**
 * The plugin, writing to `out`. Options are validated at start; a bad one names its field
 * (`sinks.0.options.prefix: …`).
 */
export function logSinkPlugin(out: Writable = process.stdout) {
  return definePlugin({
    name: 'log',
    kind: 'sink',
    description: 'writes every message it receives as a line',
    options: z.strictObject({ prefix: z.string().max(32).default('[sink]') }),
    create: ({ name }, options) => new LogSink(name, out, options.prefix),
  });
}

/** Loaded by module path (`{ "use": "./…/log-sink.js" }`), it writes to stdout. */
export default logSinkPlugin();
