// The principal and permission use cases (core/principals.ts, core/permission-records.ts) as a
// transport other than REST, or a tool, calls them: resolved from a running server's container,
// over its real registry and identity. What they do shows at once to REST and MQTT clients.
import assert from 'node:assert/strict';
import { isNitrogenError, type ErrorCode } from '../core/errors.js';
import type { PermissionRecords } from '../core/permission-records.js';
import type { Principal } from '../core/ports/principal.js';
import type { Principals } from '../core/principals.js';
import { Tokens } from '../core/tokens.js';
import { startServer, type TestServer } from './helpers/server.js';

async function refused(promise: Promise<unknown> | (() => unknown), code: ErrorCode, field?: string): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (err: unknown) => isNitrogenError(err, code) && (field === undefined || err.details?.field === field),
  );
}

describe('principal and permission use cases', () => {
  let t: TestServer;
  let principals: Principals;
  let records: PermissionRecords;
  let admin: Principal;
  const revoked: Array<[string, string]> = [];

  before(async () => {
    t = await startServer({ limits: { maxBatch: 3 } });
    principals = t.server.container.resolve(Tokens.Principals);
    records = t.server.container.resolve(Tokens.PermissionRecords);
    t.server.container.resolve(Tokens.PrincipalEvents).on('revoked', (id, reason) => revoked.push([id, reason]));
    admin = await principals.get({ id: 'admin' } as Principal, 'admin');
  });
  after(() => t.stop());

  it('registers principals whose secrets then work over REST and MQTT', async () => {
    const [made] = await principals.register(admin, [{ type: 'device', id: 'core-car', tags: ['eu'] }]);
    assert.equal(made!.principal.id, 'core-car');
    assert.equal((made!.principal as { secretHash?: string }).secretHash, undefined);
    await t.token('core-car', made!.secret!);
    const client = await t.mqtt('core-car', made!.secret!);
    await client.endAsync();
    const [generated] = await principals.register(admin, [{ type: 'app' }]);
    assert.match(generated!.principal.id, /^app-[0-9a-f]{16}$/);
  });

  it('lets only a system admin register, counts the batch against limits.maxBatch, and is all or nothing', async () => {
    const [car] = await principals.register(admin, [{ type: 'device', id: 'plain-car' }]);
    const carPrincipal = car!.principal;
    await refused(principals.register(carPrincipal, [{ type: 'device' }]), 'NITROGEN_ERR_FORBIDDEN');
    await refused(principals.register(admin, [{ type: 'device' }, { type: 'device' }, { type: 'device' }, { type: 'device' }]), 'NITROGEN_ERR_BATCH_TOO_LARGE');
    await refused(
      principals.register(admin, [
        { type: 'device', id: 'fresh' },
        { type: 'device', id: 'plain-car' },
      ]),
      'NITROGEN_ERR_CONFLICT',
    );
    await refused(principals.get(admin, 'fresh'), 'NITROGEN_ERR_NOT_FOUND');
    // Over REST, the same limit and the same answer.
    const res = await t.api('POST', '/principals', { body: [{ type: 'device' }, { type: 'device' }, { type: 'device' }, { type: 'device' }] });
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'NITROGEN_ERR_BATCH_TOO_LARGE');
  });

  it('revokes sessions when a principal is disabled, given a new secret or password, or deleted — not on other changes', async () => {
    await principals.register(admin, [
      { type: 'device', id: 'rev-car' },
      { type: 'user', id: 'rev-user', password: 'a long first password' },
    ]);
    revoked.length = 0;
    await principals.change(admin, 'rev-car', { name: 'Renamed', tags: ['x'] });
    assert.deepEqual(revoked, []);
    const disabled = await principals.change(admin, 'rev-car', { enabled: false });
    assert.equal(disabled.enabled, false);
    const { secret } = await principals.rotateSecret(admin, 'rev-car');
    assert.equal(typeof secret, 'string');
    await principals.setPassword(admin, 'rev-user', 'a long second password');
    await principals.delete(admin, 'rev-car');
    assert.deepEqual(revoked, [
      ['rev-car', 'disabled'],
      ['rev-car', 'secret rotated'],
      ['rev-user', 'password changed'],
      ['rev-car', 'deleted'],
    ]);
    await t.token('rev-user', 'a long second password');
    await refused(principals.get(admin, 'rev-car'), 'NITROGEN_ERR_NOT_FOUND');
  });

  it('guards the bootstrap admin whatever the records grant', async () => {
    const [made] = await principals.register(admin, [{ type: 'app', id: 'super-app' }]);
    const app = made!.principal;
    await records.grant(admin, { issuedTo: 'super-app', principalFor: null, action: null, authorized: true });
    await refused(principals.change(app, 'admin', { enabled: false }), 'NITROGEN_ERR_FORBIDDEN');
    await refused(principals.delete(app, 'admin'), 'NITROGEN_ERR_FORBIDDEN');
    await refused(principals.rotateSecret(app, 'admin'), 'NITROGEN_ERR_FORBIDDEN');
    await refused(principals.setPassword(app, 'admin', 'not the admin password'), 'NITROGEN_ERR_FORBIDDEN');
    await refused(principals.impersonate(app, 'admin'), 'NITROGEN_ERR_FORBIDDEN');
    await refused(principals.change(admin, 'admin', { enabled: false }), 'NITROGEN_ERR_FORBIDDEN');
    // Its grant works on anyone else; a token obtained by impersonation cannot impersonate again.
    const token = await principals.impersonate(app, 'core-car');
    assert.equal(token.principal.id, 'core-car');
    await refused(principals.impersonate(app, 'core-car', 'someone'), 'NITROGEN_ERR_FORBIDDEN');
    await principals.delete(admin, 'super-app');
  });

  it('sets passwords of users only, checked before anything is written', async () => {
    await refused(principals.checkPasswordChange(admin, 'core-car'), 'NITROGEN_ERR_VALIDATION', 'id');
    await refused(principals.setPassword(admin, 'nobody', 'long enough password'), 'NITROGEN_ERR_NOT_FOUND');
    const [user] = await principals.register(admin, [{ type: 'user', id: 'self-user', password: 'my own password' }]);
    // A user changes its own password without a permission; another principal needs admin on it.
    await principals.setPassword(user!.principal, 'self-user', 'my newer password');
    const [other] = await principals.register(admin, [{ type: 'user', id: 'other-user', password: 'other password 1' }]);
    await refused(principals.setPassword(other!.principal, 'self-user', 'not theirs to set'), 'NITROGEN_ERR_FORBIDDEN');
  });

  it('grants and revokes permission records, in force as soon as each resolves', async () => {
    const identity = t.server.container.resolve(Tokens.Identity);
    const [a, b] = await principals.register(admin, [
      { type: 'app', id: 'watcher' },
      { type: 'device', id: 'watched' },
    ]);
    const watcher = a!.principal;
    assert.equal(identity.authorize(watcher, 'view', 'watched'), false);
    const record = await records.grant(admin, { issuedTo: 'watcher', principalFor: 'watched', action: 'view', authorized: true, expires: '2099-01-01T00:00:00.000Z' });
    assert.equal(record.priority, 1000);
    assert.equal(identity.authorize(watcher, 'view', 'watched'), true);
    assert.ok(
      (await records.visibleTo(watcher)).some((p) => p.id === record.id),
      'a record issued to a principal is visible to it',
    );
    assert.ok(
      (await records.visibleTo(b!.principal)).some((p) => p.id === record.id),
      'a record for a principal is visible to it',
    );
    // Visible but not its to delete: 403. Not visible at all: 404, as if absent.
    await refused(records.revoke(watcher, record.id), 'NITROGEN_ERR_FORBIDDEN');
    const [stranger] = await principals.register(admin, [{ type: 'app', id: 'stranger' }]);
    await refused(records.revoke(stranger!.principal, record.id), 'NITROGEN_ERR_NOT_FOUND');
    await refused(records.grant(watcher, { issuedTo: 'watcher', principalFor: null, action: 'admin', authorized: true }), 'NITROGEN_ERR_FORBIDDEN');
    await refused(records.grant(admin, { issuedTo: 'admin', principalFor: 'watched', action: 'view', authorized: false }), 'NITROGEN_ERR_VALIDATION', 'issuedTo');
    await records.revoke(admin, record.id);
    assert.equal(identity.authorize(watcher, 'view', 'watched'), false);
    await refused(records.revoke(admin, record.id), 'NITROGEN_ERR_NOT_FOUND');
  });
});
