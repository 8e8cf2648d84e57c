// The OpenAPI document is built from the route table that mounts the routes. These tests hold
// every route to it: each operation is called over real HTTP, for its successes and its errors,
// and every answer must be one the document lists for that operation and status, with a body
// its schema accepts (Ajv, JSON Schema 2020-12). An operation no case reaches fails the suite,
// so a new route comes with its cases; a route without schemas cannot be mounted at all.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { defaultCatalog } from '../catalog.js';
import { DeadLetters } from '../core/dead-letters.js';
import { logSinkPlugin } from '../samples/basic-server/log-sink.js';
import { route, routers } from '../plugins/rest/route.js';
import { startServer, type TestServer } from './helpers/server.js';
import { TestCa } from './helpers/certificates.js';
import { tempDir } from './helpers/temp.js';

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
const catalog = { ...defaultCatalog, sink: { ...defaultCatalog.sink, log: async () => logSinkPlugin(discard) } };

interface Answer {
  status: number;
  type: string;
  text: string;
}

type Operation = { responses: Record<string, { content?: Record<string, { schema: unknown }> }> };

describe('OpenAPI document', function () {
  let t: TestServer;
  let doc: { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };
  let ajv: Ajv2020;
  const checked = new Map<string, Set<number>>();
  let device: { id: string; secret: string };
  let deviceToken: string;

  before(async () => {
    t = await startServer({ sinks: [{ use: 'log', name: 'archive', delivery: { pollMs: 50 } }] }, undefined, catalog);
    device = (await t.register([{ type: 'device', id: 'car-1', tags: ['eu'] }]))[0]!;
    deviceToken = await t.token(device!.id, device!.secret);
    const res = await fetch(`${t.restUrl}/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as typeof doc;
    // Strict off: the document holds OpenAPI keywords around its schemas.
    ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema(doc, 'openapi');
  });
  after(() => t?.stop());

  /** Sends a request as it is, returning the raw answer. */
  async function call(method: string, url: string, options: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? t.adminToken : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(url, { method, headers, body });
    return { status: res.status, type: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(), text: await res.text() };
  }

  /** The document's path for a concrete one: `/api/v1/principals/car-1` → `/api/v1/principals/{id}`. */
  function templateOf(method: string, path: string): string {
    const segments = path.split('/');
    const match = Object.keys(doc.paths)
      .filter((template) => doc.paths[template]![method])
      .filter((template) => {
        const parts = template.split('/');
        return parts.length === segments.length && parts.every((part, i) => part.startsWith('{') || part === segments[i]);
      })
      // A literal segment wins over a parameter, as the router matches (`/messages/stream`).
      .sort((a, b) => (b.match(/\{/g)?.length ?? 0) - (a.match(/\{/g)?.length ?? 0));
    assert.ok(match.length > 0, `${method.toUpperCase()} ${path} is not in the document`);
    return match.at(-1)!;
  }

  /** Calls `path` (relative to the origin) and holds the answer to the document. */
  async function expect(method: string, path: string, status: number, options: Parameters<typeof call>[2] = {}): Promise<unknown> {
    const answer = await call(method, t.origin + path, options);
    assert.equal(answer.status, status, `${method} ${path}: ${answer.text.slice(0, 300)}`);
    return conforms(method, path.split('?')[0]!, answer);
  }

  function conforms(method: string, path: string, answer: Answer): unknown {
    const verb = method.toLowerCase();
    const template = templateOf(verb, path);
    const where = `${method} ${template} → ${answer.status}`;
    const response = doc.paths[template]![verb]!.responses[String(answer.status)];
    assert.ok(response, `${where}: the document does not list this status`);
    if (!checked.has(`${verb} ${template}`)) checked.set(`${verb} ${template}`, new Set());
    checked.get(`${verb} ${template}`)!.add(answer.status);
    if (answer.status === 204) {
      assert.equal(answer.text, '', `${where}: a body`);
      return undefined;
    }
    assert.ok(response.content?.[answer.type], `${where}: the document does not list ${answer.type}`);
    const body = answer.type === 'application/json' ? JSON.parse(answer.text) : answer.text;
    const pointer = ['paths', template, verb, 'responses', String(answer.status), 'content', answer.type, 'schema'].map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
    const validate = ajv.getSchema(`openapi#/${pointer}`);
    assert.ok(validate, `${where}: no schema`);
    assert.ok(validate(body), `${where}: ${ajv.errorsText(validate.errors)} in ${answer.text.slice(0, 300)}`);
    return body;
  }

  it('is OpenAPI 3.1, served without a token, and describes every parameter and body it reads', async () => {
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    await expect('GET', '/api/v1/openapi.json', 200, { token: null });
    await expect('GET', '/api/v1/openapi.json?x=1', 400, { token: null });
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations) as Array<[string, Operation & { parameters: Array<{ name: string; in: string; schema?: unknown }>; requestBody?: unknown }]>) {
        const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        assert.deepEqual(
          operation.parameters.filter((p) => p.in === 'path').map((p) => p.name),
          inPath,
          `${method} ${path}: path parameters`,
        );
        for (const parameter of operation.parameters) assert.ok(parameter.schema, `${method} ${path}: ${parameter.name} has no schema`);
        if (method === 'post' || method === 'put' || method === 'patch') {
          const takesNone = /\/(secret|impersonate|claim-code|tickets)$/.test(path) && method === 'post';
          assert.equal(operation.requestBody !== undefined, !takesNone, `${method} ${path}: request body`);
        }
        assert.ok(
          Object.keys(operation.responses).some((s) => s.startsWith('2')),
          `${method} ${path}: no success`,
        );
      }
    }
    // Every schema the document refers to is in it.
    for (const [, name] of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) assert.ok(doc.components.schemas[name!], `missing schema ${name}`);
  });

  it('lists the same routes as the route table of docs/api.md', () => {
    const table = readFileSync(join(process.cwd(), 'docs/api.md'), 'utf8');
    const documented = new Set([...table.matchAll(/^\| \[`([A-Z]+) ([^`]+)`\]/gm)].map((m) => `${m[1]} ${m[2]}`));
    const described = new Set(Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path.replace(/^\/api\/v1/, '').replace(/\{(\w+)\}/g, ':$1')}`)));
    assert.deepEqual([...described].sort(), [...documented].sort());
  });

  it('cannot mount a route that does not describe what it reads', () => {
    const answer = { 200: { description: 'ok', body: z.strictObject({}) } };
    const handle = () => ({ status: 200, body: {} });
    assert.throws(() => routers([route({ method: 'get', path: '/things', tag: 't', summary: 's', responses: answer, errors: [], handle })], '/api/v1'), /needs a query schema/);
    assert.throws(() => routers([route({ method: 'delete', path: '/things/:id', tag: 't', summary: 's', params: z.strictObject({ name: z.string() }), responses: answer, errors: [], handle })], '/api/v1'), /path parameters/);
  });

  it('matches what the principal routes answer', async () => {
    const base = '/api/v1';
    await expect('POST', `${base}/principals/auth`, 200, { token: null, body: device });
    await expect('POST', `${base}/principals/auth`, 400, { token: null, body: { id: 5 } });
    await expect('POST', `${base}/principals/auth`, 401, { token: null, body: { id: 'car-1', secret: 'wrong' } });
    await expect('POST', `${base}/principals/auth`, 415, { token: null, raw: 'x', headers: { 'content-type': 'text/plain' } });
    await expect('POST', `${base}/principals/auth`, 413, { token: null, raw: JSON.stringify({ id: 'x', secret: 'y'.repeat(5000) }) });

    await expect('POST', `${base}/principals`, 201, {
      body: [
        { type: 'device', id: 'car-2', name: 'Car 2' },
        { type: 'user', id: 'ann', password: 'a long enough password' },
        { type: 'app', id: 'dash' },
      ],
    });
    await expect('POST', `${base}/principals`, 400, { body: { type: 'toaster' } });
    await expect('POST', `${base}/principals`, 400, { raw: '{"type": ' });
    await expect('POST', `${base}/principals`, 403, { token: deviceToken, body: { type: 'device' } });
    await expect('POST', `${base}/principals`, 409, { body: { type: 'device', id: 'car-1' } });
    await expect('POST', `${base}/principals`, 413, { body: Array.from({ length: 1001 }, () => ({ type: 'device' })) });
    await expect('POST', `${base}/principals`, 401, { token: null, body: { type: 'device' } });

    await expect('GET', `${base}/principals?type=device&limit=1`, 200);
    await expect('GET', `${base}/principals`, 200, { token: deviceToken });
    await expect('GET', `${base}/principals?colour=red`, 400);
    await expect('GET', `${base}/principals`, 401, { token: 'not-a-token' });
    await expect('GET', `${base}/principals/car-1`, 200);
    await expect('GET', `${base}/principals/car-2`, 403, { token: deviceToken });
    await expect('GET', `${base}/principals/nobody`, 404);
    await expect('GET', `${base}/principals/car-1?x=1`, 400);

    await expect('PATCH', `${base}/principals/car-2`, 200, { body: { name: 'Second car', tags: ['eu', 'diesel'] } });
    await expect('PATCH', `${base}/principals/car-2`, 400, { body: { colour: 'red' } });
    await expect('PATCH', `${base}/principals/car-2`, 403, { token: deviceToken, body: { name: 'mine' } });
    await expect('PATCH', `${base}/principals/nobody`, 404, { body: { name: 'x' } });

    await expect('POST', `${base}/principals/car-2/secret`, 200);
    await expect('POST', `${base}/principals/car-2/secret`, 403, { token: deviceToken });
    await expect('POST', `${base}/principals/nobody/secret`, 404);

    await expect('PUT', `${base}/principals/ann/password`, 204, { body: { password: 'another long password' } });
    await expect('PUT', `${base}/principals/ann/password`, 400, { body: { password: 'short' } });
    await expect('PUT', `${base}/principals/ann/password`, 403, { token: deviceToken, body: { password: 'another long password' } });
    await expect('PUT', `${base}/principals/nobody/password`, 404, { body: { password: 'another long password' } });

    await expect('POST', `${base}/principals/car-1/impersonate`, 200);
    await expect('POST', `${base}/principals/car-2/impersonate`, 403, { token: deviceToken });
    await expect('POST', `${base}/principals/nobody/impersonate`, 404);
    await expect('PATCH', `${base}/principals/dash`, 200, { body: { enabled: false } });
    await expect('POST', `${base}/principals/dash/impersonate`, 403);

    await expect('DELETE', `${base}/principals/dash`, 204);
    await expect('DELETE', `${base}/principals/dash`, 404);
    await expect('DELETE', `${base}/principals/admin`, 403);
  });

  it('matches what the message routes answer, stream included', async () => {
    const base = '/api/v1';
    const [sent] = (
      (await expect('POST', `${base}/messages`, 201, {
        token: deviceToken,
        body: [
          { type: 'telemetry', tags: ['eu'], body: { speed: 88 } },
          { type: 'location', to: 'car-1', ts: '2026-06-01T12:00:00+02:00', expires: '2027-01-01', body: null },
        ],
      })) as {
        messages: Array<{ id: string }>;
      }
    ).messages;
    await expect('POST', `${base}/messages`, 400, { token: deviceToken, body: { type: 'telemetry', colour: 'red' } });
    await expect('POST', `${base}/messages`, 403, { token: deviceToken, body: { type: 'telemetry', from: 'car-2' } });
    await expect('POST', `${base}/messages`, 413, { token: deviceToken, body: { type: 'telemetry', body: 'x'.repeat(300 * 1024) } });

    await expect('GET', `${base}/messages?from=car-1&type=telemetry,location&order=desc&limit=1`, 200);
    await expect('GET', `${base}/messages?since=2026-02-30`, 400);
    await expect('GET', `${base}/messages/${sent!.id}`, 200, { token: deviceToken });
    await expect('GET', `${base}/messages/${sent!.id}?from=car-2`, 404);
    await expect('GET', `${base}/messages/${sent!.id}?to=car-2`, 400);

    // The stream: its head, and an event whose data is a Message.
    const events = await new Promise<{ status: number; type: string; data: string }>((resolve, reject) => {
      const req = request(`${t.restUrl}/messages/stream?type=stream-test`, { headers: { authorization: `Bearer ${deviceToken}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text === ': connected\n\n') void call('POST', `${t.restUrl}/messages`, { token: deviceToken, body: { type: 'stream-test', body: { n: 1 } } });
          const data = /^data: (.*)$/m.exec(text)?.[1];
          if (data === undefined) return;
          req.destroy();
          resolve({ status: res.statusCode!, type: res.headers['content-type']!.split(';')[0]!, data });
        });
      });
      req.on('error', reject).end();
    });
    conforms('GET', `${base}/messages/stream`, { status: events.status, type: events.type, text: '' });
    const validate = ajv.getSchema('openapi#/components/schemas/Message')!;
    assert.ok(validate(JSON.parse(events.data)), ajv.errorsText(validate.errors));
    await expect('GET', `${base}/messages/stream?limit=5`, 400);
  });

  it('matches what the onboarding, certificate and state routes answer', async () => {
    const base = '/api/v1';
    const { key, apiKey } = (await expect('POST', `${base}/api-keys`, 201, { body: { name: 'factory', deviceTags: ['line-3'], expiresAt: '2099-01-01T00:00:00Z' } })) as { key: string; apiKey: { id: string } };
    await expect('POST', `${base}/api-keys`, 400, { body: { capabilities: ['fly'] } });
    await expect('POST', `${base}/api-keys`, 400, { token: deviceToken, body: {} });
    await expect('GET', `${base}/api-keys`, 200);
    await expect('GET', `${base}/api-keys?owner=car-1`, 403, { token: await t.register([{ type: 'app', id: 'dash-2' }]).then(([a]) => t.token(a!.id, a!.secret)) });
    const { principal: made, claimCode } = (await expect('POST', `${base}/devices/register`, 201, { token: null, headers: { authorization: `ApiKey ${key}` }, body: { name: 'Sensor' } })) as {
      principal: { id: string };
      claimCode: { code: string };
    };
    await expect('POST', `${base}/devices/register`, 401, { token: null, headers: { authorization: 'ApiKey n2k_0000000000000000_' + 'x'.repeat(43) }, body: {} });
    await expect('POST', `${base}/devices/register`, 401, { token: null, body: {} });
    await expect('POST', `${base}/devices/register`, 400, { token: null, headers: { authorization: `ApiKey ${key}` }, body: { type: 'app' } });
    const [ann] = await t.register([{ type: 'app', id: 'ann-2' }]);
    const annToken = await t.token(ann!.id, ann!.secret);
    await expect('POST', `${base}/claims`, 200, { token: annToken, body: { code: claimCode.code } });
    await expect('POST', `${base}/claims`, 400, { token: annToken, body: { code: claimCode.code } });
    await expect('POST', `${base}/claims`, 403, { token: deviceToken, body: { code: claimCode.code } });
    await expect('POST', `${base}/principals/${made.id}/claim-code`, 201, { token: annToken });
    await expect('POST', `${base}/principals/car-1/claim-code`, 403, { token: annToken });
    await expect('DELETE', `${base}/api-keys/${apiKey.id}`, 204);
    await expect('DELETE', `${base}/api-keys/${apiKey.id}`, 404);

    const dir = tempDir();
    try {
      const ca = new TestCa(dir.path);
      const leaf = ca.issue('car-1');
      const { certificate } = (await expect('POST', `${base}/principals/car-1/certificates`, 201, { body: { certificate: leaf.cert } })) as { certificate: { fingerprint: string } };
      await expect('POST', `${base}/principals/car-1/certificates`, 400, { body: { certificate: 'not a certificate' } });
      await expect('GET', `${base}/principals/car-1/certificates`, 200, { token: deviceToken });
      await expect('GET', `${base}/principals/${made.id}/certificates`, 403, { token: deviceToken });
      await expect('DELETE', `${base}/principals/car-1/certificates/${certificate.fingerprint}`, 200);
      await expect('DELETE', `${base}/principals/car-1/certificates/${certificate.fingerprint}`, 403, { token: deviceToken });
      const { certificate: authority } = (await expect('POST', `${base}/certificate-authorities`, 201, { body: { certificate: ca.ca.cert } })) as { certificate: { fingerprint: string } };
      await expect('POST', `${base}/certificate-authorities`, 400, { body: { certificate: leaf.cert } });
      await expect('GET', `${base}/certificate-authorities`, 200);
      await expect('GET', `${base}/certificate-authorities`, 403, { token: deviceToken });
      await expect('DELETE', `${base}/certificate-authorities/${authority.fingerprint}`, 204);
      await expect('DELETE', `${base}/certificate-authorities/${authority.fingerprint}`, 404);
    } finally {
      dir.remove();
    }

    await expect('PATCH', `${base}/principals/car-1/twin/desired`, 200, { body: { interval: 10, mode: { eco: true } } });
    await expect('PATCH', `${base}/principals/car-1/twin/desired`, 403, { token: deviceToken, body: { interval: 1 } });
    await expect('PATCH', `${base}/principals/car-1/twin/desired`, 400, { body: [1] });
    await expect('GET', `${base}/principals/car-1/state`, 200, { token: deviceToken });
    await expect('GET', `${base}/principals/${made.id}/state`, 403, { token: deviceToken });
    await expect('POST', `${base}/messages/stream/tickets`, 201, { token: deviceToken });
    await expect('POST', `${base}/messages/stream/tickets`, 401, { token: null });
  });

  it('matches what the permission routes answer', async () => {
    const base = '/api/v1';
    const { permission } = (await expect('POST', `${base}/permissions`, 201, { body: { issuedTo: 'car-2', principalFor: 'car-1', action: 'view', authorized: true, expires: '2030-01-01T00:00:00Z' } })) as { permission: { id: string } };
    await expect('POST', `${base}/permissions`, 201, { body: { issuedTo: null, principalFor: null, action: null, authorized: false, priority: 5000 } });
    await expect('POST', `${base}/permissions`, 400, { body: { authorized: true, action: 'fly' } });
    await expect('POST', `${base}/permissions`, 403, { token: deviceToken, body: { issuedTo: 'car-1', principalFor: 'car-2', authorized: true } });
    await expect('GET', `${base}/permissions`, 200);
    await expect('GET', `${base}/permissions`, 200, { token: deviceToken });
    await expect('GET', `${base}/permissions?issuedTo=car-1`, 400);
    await expect('DELETE', `${base}/permissions/${permission.id}`, 403, { token: deviceToken });
    await expect('DELETE', `${base}/permissions/${permission.id}`, 204);
    await expect('DELETE', `${base}/permissions/${permission.id}`, 404);
  });

  it('matches what the sink routes answer', async () => {
    const base = '/api/v1';
    const [message] = (JSON.parse((await call('GET', `${t.restUrl}/messages?limit=1`)).text) as { messages: [never] }).messages;
    await new DeadLetters(t.dataDir).record('archive', message, 'refused downstream');
    await expect('POST', `${base}/sinks/archive/replay`, 202, { body: { since: '2026-01-01T00:00:00Z' } });
    await expect('POST', `${base}/sinks/archive/replay`, 400, { body: { since: 'soon' } });
    await expect('POST', `${base}/sinks/nope/replay`, 404, { body: {} });
    await expect('GET', `${base}/sinks`, 200);
    await expect('GET', `${base}/sinks`, 403, { token: deviceToken });
    await expect('GET', `${base}/sinks/archive`, 200);
    await expect('GET', `${base}/sinks/archive?x=1`, 400);
    await expect('GET', `${base}/sinks/nope`, 404);
    const letters = (await expect('GET', `${base}/sinks/archive/dead-letters?limit=5`, 200)) as { deadLetters: unknown[] };
    assert.equal(letters.deadLetters.length, 1);
    await expect('GET', `${base}/sinks/archive/dead-letters?limit=0`, 400);
    await expect('GET', `${base}/sinks/nope/dead-letters`, 404);
  });

  it('matches what the system routes answer', async () => {
    await expect('GET', '/api/v1/headwaiter', 200, { token: null });
    await expect('GET', '/api/v1/headwaiter?x=1', 400, { token: null });
    await expect('GET', '/health', 200, { token: null });
    await expect('GET', '/ready', 200, { token: null });
    await expect('GET', '/ready?verbose=1', 400, { token: null });
    await expect('GET', '/metrics', 200, { token: null });
    // A request head over maxHeaderBytes is refused before any route: every operation lists it.
    for (const path of ['/health', '/metrics']) await expect('GET', path, 400, { token: null, headers: { 'x-padding': 'x'.repeat(20 * 1024) } });
  });

  it('has each operation answered, for a success and an error, by the cases above', () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const method of Object.keys(operations)) {
        const statuses = [...(checked.get(`${method} ${path}`) ?? [])];
        assert.ok(
          statuses.some((s) => s < 300),
          `${method.toUpperCase()} ${path}: no success was checked against the document`,
        );
        assert.ok(
          statuses.some((s) => s >= 400),
          `${method.toUpperCase()} ${path}: no error was checked against the document`,
        );
      }
    }
  });
});
