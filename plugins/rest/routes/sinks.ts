import { z } from 'zod';
import { requireAllowed } from '../../../core/access.js';
import { NitrogenError } from '../../../core/errors.js';
import { pageLimit, IsoTime } from '../../../core/schemas/common.js';
import type { SinkRunner } from '../../../core/sink-runner.js';
import { principalOf, type RestContext, type RestDeps } from '../context.js';
import { route, type Route } from '../route.js';
import { NoQuery } from '../schemas/queries.js';
import { DeadLetters, OneSink, Sinks, StartedReplay } from '../schemas/responses.js';
import { jsonBody } from '../validation.js';

const TAG = 'sinks';
const ByName = z.strictObject({ name: z.string().meta({ description: "The sink's name." }) });

const ReplayRange = z
  .strictObject(
    { since: IsoTime.optional().meta({ description: 'Inclusive, on `ts`.' }), until: IsoTime.optional().meta({ description: 'Exclusive, on `ts`.' }) },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a replay field (since, until)' : 'must be a JSON object {since?, until?}') },
  )
  .meta({ id: 'ReplayRange' });

/** Sink status, dead letters and replay: for operators, so every route needs system `admin`, checked before anything else. */
export function sinkRoutes(deps: RestDeps): Route[] {
  const { identity, sinkRunners, deadLetters } = deps;
  const requireOperator = (ctx: RestContext) => requireAllowed(identity, principalOf(ctx), 'admin', null);

  function find(name: string): SinkRunner {
    const runner = sinkRunners.find((r) => r.sink.name === name);
    if (!runner) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no sink '${name}' fed from the store`);
    return runner;
  }

  async function describe(runner: SinkRunner) {
    return { ...runner.status(), lag: (await runner.lag()) ?? null };
  }

  const common = { tag: TAG, guard: requireOperator } as const;
  // A named sink is looked up before its parameters are read, as the docs promise: 403, then 404.
  const named = {
    tag: TAG,
    params: ByName,
    guard: (ctx: RestContext) => {
      requireOperator(ctx);
      find(ctx.params.name!);
    },
  } as const;
  return [
    route({
      ...common,
      method: 'get',
      path: '/sinks',
      summary: 'The status of every sink fed from the store, in configuration order',
      query: NoQuery,
      responses: { 200: { description: 'The sinks', body: Sinks } },
      errors: ['NITROGEN_ERR_FORBIDDEN'],
      async handle() {
        return { status: 200, body: { sinks: await Promise.all(sinkRunners.map(describe)) } };
      },
    }),
    route({
      ...named,
      method: 'get',
      path: '/sinks/:name',
      summary: "A sink's status: position, counts, replays, lag",
      query: NoQuery,
      responses: { 200: { description: 'The sink', body: OneSink } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      async handle(_ctx, { params }) {
        return { status: 200, body: { sink: await describe(find(params.name)) } };
      },
    }),
    route({
      ...named,
      method: 'get',
      path: '/sinks/:name/dead-letters',
      summary: 'The messages the sink refused for good, most recent last',
      query: z.strictObject({ limit: pageLimit(100, 1000) }),
      responses: { 200: { description: 'The most recent dead letters', body: DeadLetters } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      handle(_ctx, { params, query }) {
        const runner = find(params.name);
        return { status: 200, body: { deadLetters: deadLetters.list(runner.sink.name, query.limit) } };
      },
    }),
    route({
      ...named,
      method: 'post',
      path: '/sinks/:name/replay',
      summary: 'Send the stored messages of a time range to the sink again, in the background',
      body: jsonBody(ReplayRange),
      responses: { 202: { description: 'The replay, as in the sink status', body: StartedReplay } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      async handle(_ctx, { params, body }) {
        const runner = find(params.name);
        return { status: 202, body: { replay: runner.startReplay(await body()) } };
      },
    }),
  ];
}
