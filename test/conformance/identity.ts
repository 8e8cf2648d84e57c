import assert from 'node:assert/strict';
import { isNitrogenError } from '../../core/errors.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Registry } from '../../core/ports/registry.js';

/**
 * The Identity port's conformance suite. `open` returns a started Identity over a started,
 * empty Registry it uses; `expiredToken` (optional) makes a token that is already expired, and
 * `tokenWithoutExpiry` (optional) one signed with the identity's own key but without an expiry.
 */
export interface IdentityHarness {
  open(): Promise<{ identity: Identity; registry: Registry }>;
  close(parts: { identity: Identity; registry: Registry }): Promise<void>;
  expiredToken?(identity: Identity, principalId: string): Promise<string>;
  tokenWithoutExpiry?(identity: Identity, principalId: string): Promise<string>;
}

const code = (c: string) => (err: unknown) => isNitrogenError(err) && err.code === c;

export function identityConformance(label: string, harness: IdentityHarness): void {
  describe(`Identity conformance: ${label}`, function () {
    let parts: { identity: Identity; registry: Registry };
    let identity: Identity;
    let registry: Registry;

    async function principal(id: string, type: 'device' | 'app' | 'user' = 'device', password?: string): Promise<string> {
      const made = password === undefined ? identity.newSecret() : { secret: password, secretHash: await identity.hashPassword(password) };
      await registry.createPrincipals([{ id, type, tags: [], createdAt: new Date().toISOString(), enabled: true, secretHash: made.secretHash }]);
      return made.secret;
    }

    beforeEach(async () => {
      parts = await harness.open();
      ({ identity, registry } = parts);
    });

    afterEach(() => harness.close(parts));

    it('makes random secrets and never keeps them in clear', () => {
      const a = identity.newSecret();
      const b = identity.newSecret();
      assert.notEqual(a.secret, b.secret);
      assert.ok(Buffer.from(a.secret, 'base64url').length >= 32, 'at least 256 bits');
      assert.ok(!a.secretHash.includes(a.secret));
    });

    it('authenticates a secret and a password; refuses wrong ones and unknown ids alike', async () => {
      const secret = await principal('car-1');
      const password = await principal('alice', 'user', 'a long enough password');
      assert.deepEqual({ ...(await identity.authenticateSecret('car-1', secret)), principal: undefined }, { principal: undefined, expiresAt: null }, "a secret holds until it is replaced, and is nobody else's");
      assert.equal((await identity.authenticateSecret('car-1', secret)).principal.id, 'car-1');
      assert.equal((await identity.authenticateSecret('alice', 'a long enough password')).principal.id, 'alice');
      assert.equal(password, 'a long enough password');
      await assert.rejects(identity.authenticateSecret('car-1', secret + 'x'), code('NITROGEN_ERR_BAD_CREDENTIALS'));
      await assert.rejects(identity.authenticateSecret('nobody', secret), code('NITROGEN_ERR_BAD_CREDENTIALS'));
      const returned = await identity.authenticateSecret('car-1', secret);
      assert.equal((returned.principal as { secretHash?: string }).secretHash, undefined, 'credentials never leave the port');
    });

    it('refuses a disabled principal', async () => {
      const secret = await principal('car-1');
      const token = (await identity.issueToken((await identity.authenticateSecret('car-1', secret)).principal)).accessToken;
      await registry.updatePrincipal('car-1', { enabled: false });
      await assert.rejects(identity.authenticateSecret('car-1', secret), code('NITROGEN_ERR_PRINCIPAL_DISABLED'));
      await assert.rejects(identity.authenticateToken(token), code('NITROGEN_ERR_PRINCIPAL_DISABLED'));
    });

    it('issues tokens that verify, expire, and cannot be forged or outlive their principal', async () => {
      const secret = await principal('car-1');
      const issued = await identity.issueToken((await identity.authenticateSecret('car-1', secret)).principal);
      assert.ok(Date.parse(issued.expiresAt) > Date.now());
      const authenticated = await identity.authenticateToken(issued.accessToken);
      assert.equal(authenticated.principal.id, 'car-1');
      assert.equal(authenticated.expiresAt, Date.parse(issued.expiresAt), 'the port says until when the token holds');
      assert.equal(authenticated.actor, undefined);
      const [h, p, sig] = issued.accessToken.split('.');
      const forged = [h, Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'admin' })).toString('base64url'), sig].join('.');
      await assert.rejects(identity.authenticateToken(forged), code('NITROGEN_ERR_TOKEN_INVALID'));
      await assert.rejects(identity.authenticateToken('not.a.token'), code('NITROGEN_ERR_TOKEN_INVALID'));
      if (harness.expiredToken) await assert.rejects(identity.authenticateToken(await harness.expiredToken(identity, 'car-1')), code('NITROGEN_ERR_TOKEN_EXPIRED'));
      if (harness.tokenWithoutExpiry) await assert.rejects(identity.authenticateToken(await harness.tokenWithoutExpiry(identity, 'car-1')), code('NITROGEN_ERR_TOKEN_INVALID'), 'a token must expire');
      await registry.deletePrincipal('car-1');
      await assert.rejects(identity.authenticateToken(issued.accessToken), code('NITROGEN_ERR_TOKEN_INVALID'));
    });

    it('tells its access tokens from secrets and passwords by their shape', async () => {
      const secret = await principal('car-1');
      const { accessToken } = await identity.issueToken((await identity.authenticateSecret('car-1', secret)).principal);
      assert.equal(identity.isAccessToken(accessToken), true);
      assert.equal(identity.isAccessToken(secret), false);
      assert.equal(identity.isAccessToken(identity.newSecret().secret), false);
      assert.equal(identity.isAccessToken('a long enough password'), false);
    });

    describe('impersonation tokens', () => {
      const impersonate = (id: string) => ({ id, issuedTo: 'app-1', principalFor: 'car-1', action: 'impersonate' as const, authorized: true, priority: 100, createdAt: new Date().toISOString() });
      let app: Awaited<ReturnType<Identity['authenticateSecret']>>['principal'];
      let car: typeof app;

      async function impersonationToken(): Promise<string> {
        return (await identity.issueToken(car, { actor: app })).accessToken;
      }

      beforeEach(async () => {
        const carSecret = await principal('car-1');
        const appSecret = await principal('app-1', 'app');
        car = (await identity.authenticateSecret('car-1', carSecret)).principal;
        app = (await identity.authenticateSecret('app-1', appSecret)).principal;
        await registry.createPermission(impersonate('grant'));
        await identity.permissionsChanged();
      });

      it('name the principal, the actor, and expire no later than a plain token', async () => {
        const plain = await identity.issueToken(car);
        const issued = await identity.issueToken(car, { actor: app });
        const authenticated = await identity.authenticateToken(issued.accessToken);
        assert.equal(authenticated.principal.id, 'car-1');
        assert.equal(authenticated.actor, 'app-1');
        assert.equal(authenticated.expiresAt, Date.parse(issued.expiresAt));
        assert.ok(Date.parse(issued.expiresAt) <= Date.parse(plain.expiresAt));
      });

      it('end when the actor loses impersonate', async () => {
        const token = await impersonationToken();
        await registry.deletePermission('grant');
        await identity.permissionsChanged();
        await assert.rejects(identity.authenticateToken(token), code('NITROGEN_ERR_TOKEN_INVALID'));
      });

      it('end when the actor is disabled, gets a new secret, or is deleted', async () => {
        const token = await impersonationToken();
        await registry.updatePrincipal('app-1', { enabled: false });
        await assert.rejects(identity.authenticateToken(token), code('NITROGEN_ERR_TOKEN_INVALID'), 'actor disabled');
        await registry.updatePrincipal('app-1', { enabled: true });
        assert.equal((await identity.authenticateToken(token)).actor, 'app-1', 'enabled again, the token holds again');
        await registry.updatePrincipal('app-1', { secretHash: identity.newSecret().secretHash });
        await assert.rejects(identity.authenticateToken(token), code('NITROGEN_ERR_TOKEN_INVALID'), 'actor rotated');
        const second = await impersonationToken();
        await registry.deletePrincipal('app-1');
        await assert.rejects(identity.authenticateToken(second), code('NITROGEN_ERR_TOKEN_INVALID'), 'actor deleted');
      });
    });

    it('decides by permission records, first match by priority, default deny; changes apply once reloaded', async () => {
      await principal('car-1');
      await principal('app-1', 'app');
      const app = { id: 'app-1' };
      assert.equal(identity.authorize({ id: 'car-1' }, 'send', 'car-1'), true, 'a principal acts as itself');
      assert.equal(identity.authorize(app, 'view', 'car-1'), false, 'default deny');
      await registry.createPermission({ id: 'p1', issuedTo: 'app-1', principalFor: null, action: 'view', authorized: true, priority: 100, createdAt: new Date().toISOString() });
      await registry.createPermission({ id: 'p2', issuedTo: 'app-1', principalFor: 'car-1', action: 'view', authorized: false, priority: 10, createdAt: new Date().toISOString() });
      await identity.permissionsChanged();
      assert.equal(identity.authorize(app, 'view', 'car-1'), false, 'the lower priority number wins');
      assert.equal(identity.authorize(app, 'view', 'car-2'), true);
      assert.equal(identity.authorize(app, 'send', 'car-2'), false);
      assert.equal(identity.scopeOf(app, 'view'), 'all');
      await registry.deletePermission('p1');
      await identity.permissionsChanged();
      assert.deepEqual(identity.scopeOf(app, 'view'), new Set(['app-1']));
    });
  });
}
