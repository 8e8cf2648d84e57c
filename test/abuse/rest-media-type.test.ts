// Issue item 17: `application/json-seq` and `application/json-patch+json` were accepted as JSON.
// A body is now read only as `application/json` in UTF-8 (or with no Content-Type at all):
// other types that merely end in "json" mean other formats, and get 415.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('abuse: request bodies that are not application/json', () => {
  let t: TestServer;
  before(async () => (t = await startServer()));
  after(() => t.stop());

  it('answers 415 to JSON-like media types and other charsets, and reads application/json in its spellings', async () => {
    const body = JSON.stringify({ type: 'telemetry', body: { n: 1 } });
    for (const type of [
      'application/json-seq',
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/vnd.api+json',
      'application/jsonx',
      'text/json',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'multipart/form-data; boundary=application/json',
    ]) {
      const res = await t.api('POST', '/messages', { raw: body, headers: { 'content-type': type } });
      assert.equal(res.status, 415, `${type} answered ${res.status}`);
      assert.equal(res.body.error.code, 'NITROGEN_ERR_UNSUPPORTED_MEDIA_TYPE', type);
    }
    for (const type of ['application/json', 'APPLICATION/JSON', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json ; charset=utf8']) {
      const res = await t.api('POST', '/messages', { raw: body, headers: { 'content-type': type } });
      assert.equal(res.status, 201, `${type} answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    // With no Content-Type at all (curl --data-binary with -H 'content-type:'), the body is read as JSON.
    const untyped = await fetch(`${t.restUrl}/messages`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` }, body: new Blob([body]) });
    assert.equal(untyped.status, 201);
    await assertServesNormalDevice(t);
  });
});
