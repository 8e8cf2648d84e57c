import type Router from '@koa/router';
import { NitrogenError } from '../../../core/errors.js';
import type { SinkRunner } from '../../../core/sink-runner.js';
import { parseIsoTime } from '../../../core/time.js';
import { readJson } from '../body.js';
import { principalOf, requireAllowed, type RestContext, type RestDeps } from '../context.js';
import { checkParams, limitParam } from '../params.js';

/** Sink status, dead letters and replay: for operators, so every route needs system `admin`. */
export function sinkRoutes(router: Router, deps: RestDeps): void {
  const { identity, sinkRunners, deadLetters } = deps;

  function find(ctx: RestContext): SinkRunner {
    requireAllowed(identity, principalOf(ctx), 'admin', null);
    const runner = sinkRunners.find((r) => r.sink.name === ctx.params.name);
    if (!runner) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no sink '${ctx.params.name}' fed from the store`);
    return runner;
  }

  async function describe(runner: SinkRunner) {
    return { ...runner.status(), lag: (await runner.lag()) ?? null };
  }

  router.get('/sinks', async (ctx: RestContext) => {
    requireAllowed(identity, principalOf(ctx), 'admin', null);
    checkParams(ctx.query, []);
    ctx.body = { sinks: await Promise.all(sinkRunners.map(describe)) };
  });

  router.get('/sinks/:name', async (ctx: RestContext) => {
    const runner = find(ctx);
    checkParams(ctx.query, []);
    ctx.body = { sink: await describe(runner) };
  });

  router.get('/sinks/:name/dead-letters', async (ctx: RestContext) => {
    const runner = find(ctx);
    checkParams(ctx.query, ['limit']);
    ctx.body = { deadLetters: deadLetters.list(runner.sink.name, limitParam(ctx.query, 100, 1000)) };
  });

  router.post('/sinks/:name/replay', async (ctx: RestContext) => {
    const runner = find(ctx);
    const input = await readJson(ctx);
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'body: must be a JSON object {since?, until?}', { details: { field: 'body' } });
    }
    const body = input as Record<string, unknown>;
    const range: { since?: string; until?: string } = {};
    for (const field of ['since', 'until'] as const) {
      const value = body[field];
      if (value === undefined) continue;
      const ms = parseIsoTime(value);
      if (Number.isNaN(ms)) throw new NitrogenError('NITROGEN_ERR_VALIDATION', `${field}: must be an ISO-8601 time with Z or an offset`, { details: { field } });
      range[field] = new Date(ms).toISOString();
    }
    for (const key of Object.keys(body)) {
      if (key !== 'since' && key !== 'until') throw new NitrogenError('NITROGEN_ERR_VALIDATION', `${key}: is not a replay field (since, until)`, { details: { field: key } });
    }
    ctx.status = 202;
    ctx.body = { replay: runner.startReplay(range) };
  });
}
