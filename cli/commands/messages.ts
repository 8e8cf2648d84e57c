import type { Message, MessageFilter } from '@nitrogen/client';
import type { Command, Context, OptionSpec } from '../command.js';
import { readCredentials } from '../credentials.js';
import { CliError } from '../exit-codes.js';
import { cell, record, table, type Column } from '../output.js';
import { PAGING, announceNext, arg, enc, jsonValue, list, paged, positiveInt, query, readText } from './common.js';

const FILTERS: Record<string, OptionSpec> = {
  from: { type: 'string', multiple: true, value: 'ID', help: 'sent by any of these (repeat, or comma-separated)' },
  to: { type: 'string', multiple: true, value: 'ID', help: 'addressed to any of these' },
  type: { type: 'string', multiple: true, value: 'TYPE', help: 'of any of these types' },
  tag: { type: 'string', multiple: true, value: 'TAG', help: 'holding every one of these tags' },
  since: { type: 'string', value: 'TIME', help: 'ts at or after this time (ISO 8601: 2026-06-01, 2026-06-01T10:00Z)' },
  until: { type: 'string', value: 'TIME', help: 'ts before this time' },
};

function filter(ctx: Context): MessageFilter & { from: string[]; to: string[]; type: string[]; tag: string[]; since?: string; until?: string } {
  const o = ctx.options;
  return { from: list(o.from), to: list(o.to), type: list(o.type), tag: list(o.tag), since: o.since as string | undefined, until: o.until as string | undefined };
}

const COLUMNS: Column<Message>[] = [
  { header: 'ts', value: (m) => m.ts },
  { header: 'from', value: (m) => m.from },
  { header: 'to', value: (m) => m.to },
  { header: 'type', value: (m) => m.type },
  { header: 'tags', value: (m) => m.tags },
  { header: 'id', value: (m) => m.id },
  { header: 'body', value: (m) => m.body },
];

/** One line a person can follow in `tail`: time, sender (→ recipient), type, tags, body. */
const line = (m: Message): string => `${m.ts}  ${m.from}${m.to ? ` → ${m.to}` : ''}  ${m.type}${m.tags?.length ? ` [${m.tags.join(',')}]` : ''}  ${cell(m.body)}`;

export const messageCommands: Command[] = [
  {
    name: 'messages list',
    summary: 'stored messages you may view, filtered and paged (GET /messages)',
    options: { ...FILTERS, order: { type: 'string', value: 'asc|desc', help: 'by ts then id (default asc)' }, ...PAGING },
    async run(ctx) {
      const order = ctx.options.order as string | undefined;
      if (order !== undefined && order !== 'asc' && order !== 'desc') throw new CliError('usage', '--order: asc or desc');
      const { items, next } = await paged<Message>(ctx, '/messages', 'messages', { ...filter(ctx), order });
      ctx.out.result({ messages: items, next }, () => table(items, COLUMNS));
      announceNext(ctx, next);
    },
  },
  {
    name: 'messages show',
    summary: 'one message by its id (GET /messages/:id)',
    args: [{ name: 'ID' }],
    options: { from: { type: 'string', value: 'ID', help: 'its sender, when several used the same id' } },
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ message: Message }>('GET', `/messages/${enc(arg(ctx, 'ID'))}${query({ from: ctx.options.from as string | undefined })}`);
      const m = answer.message;
      ctx.out.result(answer, () =>
        record([
          ['id', m.id],
          ['type', m.type],
          ['from', m.from],
          ['to', m.to],
          ['ts', m.ts],
          ['tags', m.tags],
          ['responseTo', m.responseTo],
          ['expires', m.expires],
          ['body', m.body],
        ]),
      );
    },
  },
  {
    name: 'messages send',
    summary: 'send a message as yourself; answered once it is durably stored (POST /messages)',
    options: {
      type: { type: 'string', value: 'TYPE', help: 'its type (required)' },
      body: { type: 'string', value: 'JSON', help: `its body, JSON ('{"speed":88}', '"text"', 42)` },
      'body-file': { type: 'string', value: 'FILE', help: 'its body, the JSON in FILE (- for stdin)' },
      to: { type: 'string', value: 'ID', help: 'address it to a principal (a command; needs send rights)' },
      tag: { type: 'string', multiple: true, value: 'TAG', help: 'a tag' },
      id: { type: 'string', value: 'ID', help: 'its id, an idempotency key: sent twice, stored once' },
      'response-to': { type: 'string', multiple: true, value: 'ID', help: 'the id of a message it answers' },
      ts: { type: 'string', value: 'TIME', help: 'its time (default: when the server receives it)' },
      expires: { type: 'string', value: 'TIME', help: 'deleted after this time' },
    },
    async run(ctx) {
      const o = ctx.options as Record<string, string | string[] | undefined>;
      if (!o.type) throw new CliError('usage', 'messages send needs --type TYPE');
      const envelope: Record<string, unknown> = { type: o.type };
      if (o.body !== undefined && o['body-file'] !== undefined) throw new CliError('usage', '--body and --body-file: give one');
      if (o.body !== undefined) envelope.body = jsonValue(o.body as string, 'body');
      if (o['body-file'] !== undefined) envelope.body = jsonValue(readText(o['body-file'] as string, '--body-file'), 'body-file');
      for (const key of ['to', 'id', 'ts', 'expires'] as const) if (o[key] !== undefined) envelope[key] = o[key];
      if (o.tag) envelope.tags = list(o.tag);
      if (o['response-to']) envelope.responseTo = list(o['response-to']);
      const answer = await (await ctx.session()).request<{ messages: Message[] }>('POST', '/messages', envelope);
      ctx.out.result({ message: answer.messages[0] }, () => `stored ${answer.messages[0]!.id}\n`);
    },
  },
  {
    name: 'messages tail',
    summary: 'follow new messages live, with the same filters (GET /messages/stream, SSE)',
    options: { ...FILTERS, count: { type: 'string', value: 'N', help: 'stop after N messages (default: until Ctrl-C)' } },
    help: 'Prints each message as it is stored, one a line (--json: one JSON object a line, NDJSON).\nIf the stream is cut (server restart, token renewal), it is opened again; messages stored meanwhile\nare not replayed: use messages list --since to catch up. It ends (exit 3) when the login expires.',
    async run(ctx) {
      const count = positiveInt(ctx.options.count, 'count');
      const session = await ctx.session();
      // The stream retries a server that is away or a refused token without end; a tail that
      // cannot start says so at once instead.
      await session.request('GET', `/principals/${enc(session.id)}`);
      let seen = 0;
      let stop!: (exit: 'ok' | Error) => void;
      const stopped = new Promise<'ok' | Error>((resolve) => (stop = resolve));
      session.on('error', (error) => stop(error));
      const subscription = session.onMessage(
        filter(ctx),
        (m) => {
          if (count !== undefined && seen >= count) return;
          seen++;
          ctx.out.json ? ctx.out.line(m) : ctx.out.text(line(m));
          if (seen === count) stop('ok');
        },
        { via: 'sse' },
      );
      subscription.ready.then(
        () => ctx.out.note('following; Ctrl-C ends'),
        (err: Error) => stop(err),
      );
      const onSignal = () => stop('ok');
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      // The server ends the stream when the token expires, and a stored token cannot be renewed.
      const expiresAt = readCredentials(ctx.env).servers[ctx.apiUrl()]?.expiresAt;
      const expiry = expiresAt
        ? setTimeout(() => stop(new CliError('auth', `the login expired at ${expiresAt}: log in again with nitrogen login ${ctx.apiUrl()}`)), Math.min(2 ** 31 - 1, Math.max(0, Date.parse(expiresAt) - Date.now())))
        : undefined;
      try {
        const outcome = await stopped;
        if (outcome instanceof Error) throw outcome;
      } finally {
        clearTimeout(expiry);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await subscription.close();
      }
    },
  },
];
