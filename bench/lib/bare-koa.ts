import Router from '@koa/router';
import Koa from 'koa';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The REST peer: koa with @koa/router and one route, `POST /api/v1/messages`, that reads the
 * body, parses the JSON and answers 201 with the parsed envelopes (the shape of Nitrogen's
 * answer) — no authentication, validation or storage. What a koa endpoint costs at the least.
 */
const app = new Koa();
const router = new Router({ prefix: '/api/v1' });
router.post('/messages', async (ctx) => {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) chunks.push(chunk);
  const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  ctx.status = 201;
  ctx.body = { messages: Array.isArray(parsed) ? parsed : [parsed] };
});
app.use(router.routes());

const server = createServer(app.callback());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
