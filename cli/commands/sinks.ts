import type { Command } from '../command.js';
import { cell, table, type Column } from '../output.js';
import { arg, enc, positiveInt, query } from './common.js';

interface Replay {
  id: number;
  since?: string;
  until?: string;
  state: string;
  sent: number;
  error?: string;
}

interface SinkStatus {
  name: string;
  position: string | null;
  delivered: number;
  deadLettered: number;
  retrying: boolean;
  lastError: string | null;
  replays: Replay[];
  lag: { count: number; oldestTs: string | null } | null;
}

const COLUMNS: Column<SinkStatus>[] = [
  { header: 'name', value: (s) => s.name },
  { header: 'delivered', value: (s) => s.delivered },
  { header: 'dead-lettered', value: (s) => s.deadLettered },
  { header: 'lag', value: (s) => (s.lag ? `${s.lag.count}${s.lag.oldestTs ? ` since ${s.lag.oldestTs}` : ''}` : 'unknown') },
  { header: 'state', value: (s) => (s.retrying ? 'retrying' : 'ok') },
  { header: 'replays', value: (s) => s.replays.map((r) => `#${r.id} ${r.state} ${r.sent} sent`).join('; ') },
  { header: 'last error', value: (s) => s.lastError },
];

/** The sinks fed from the store (docs/api.md, "Sinks"): operators only, `admin` on the system. */
export const sinkCommands: Command[] = [
  {
    name: 'sinks status',
    summary: 'delivery, lag, replays and last error of every sink, or one (GET /sinks, /sinks/:name)',
    args: [{ name: 'NAME', optional: true }],
    async run(ctx) {
      const session = await ctx.session();
      const name = ctx.args.NAME as string | undefined;
      if (name) {
        const answer = await session.request<{ sink: SinkStatus }>('GET', `/sinks/${enc(name)}`);
        ctx.out.result(answer, () => table([answer.sink], COLUMNS));
      } else {
        const answer = await session.request<{ sinks: SinkStatus[] }>('GET', '/sinks');
        ctx.out.result(answer, () => table(answer.sinks, COLUMNS, '(no sinks fed from the store)'));
      }
    },
  },
  {
    name: 'sinks replay',
    summary: 'send the stored messages of a time range to a sink again (POST /sinks/:name/replay)',
    args: [{ name: 'NAME' }, { name: 'FROM', optional: true }, { name: 'TO', optional: true }],
    help: "FROM (inclusive) and TO (exclusive) are times on the messages' ts (2026-06-01, 2026-06-01T10:00Z);\nwithout them everything stored is replayed. It runs in the background: follow it with sinks status NAME.",
    async run(ctx) {
      const body: Record<string, string> = {};
      if (ctx.args.FROM) body.since = ctx.args.FROM as string;
      if (ctx.args.TO) body.until = ctx.args.TO as string;
      const name = arg(ctx, 'NAME');
      const answer = await (await ctx.session()).request<{ replay: Replay }>('POST', `/sinks/${enc(name)}/replay`, body);
      ctx.out.result(answer, () => `replay #${answer.replay.id} of ${name} started (${answer.replay.state}); follow it with: nitrogen sinks status ${name}\n`);
    },
  },
  {
    name: 'sinks dead-letters',
    summary: 'the messages a sink refused for good, most recent last (GET /sinks/:name/dead-letters)',
    args: [{ name: 'NAME' }],
    options: { limit: { type: 'string', value: 'N', help: 'the N most recent (default 100)' } },
    async run(ctx) {
      const limit = positiveInt(ctx.options.limit, 'limit');
      const answer = await (await ctx.session()).request<{ deadLetters: Array<{ at: string; reason: string; message: { id: string; type: string; from: string } }> }>('GET', `/sinks/${enc(arg(ctx, 'NAME'))}/dead-letters${query({ limit })}`);
      ctx.out.result(answer, () =>
        table(answer.deadLetters, [
          { header: 'at', value: (d) => d.at },
          { header: 'message', value: (d) => `${d.message.from}/${d.message.id}` },
          { header: 'type', value: (d) => d.message.type },
          { header: 'reason', value: (d) => cell(d.reason) },
        ]),
      );
    },
  },
];
