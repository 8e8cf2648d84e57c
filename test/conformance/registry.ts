import assert from 'node:assert/strict';
import { isNitrogenError } from '../../core/errors.js';
import type { Permission, PrincipalRecord } from '../../core/ports/principal.js';
import type { Registry } from '../../core/ports/registry.js';

/** The Registry port's conformance suite: every Registry adapter runs it. */
export interface RegistryHarness {
  open(): Promise<Registry>;
  reopen?(registry: Registry): Promise<Registry>;
  close(registry: Registry): Promise<void>;
}

function principal(id: string, fields: Partial<PrincipalRecord> = {}): PrincipalRecord {
  return { id, type: 'device', tags: [], createdAt: '2026-01-01T00:00:00.000Z', enabled: true, secretHash: `sha256:${id}`, ...fields };
}

function permission(id: string, fields: Partial<Permission> = {}): Permission {
  return { id, issuedTo: 'app-1', principalFor: 'car-1', action: 'view', authorized: true, priority: 100, createdAt: '2026-01-01T00:00:00.000Z', ...fields };
}

const conflict = (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_CONFLICT');
const notFound = (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_NOT_FOUND');

export function registryConformance(label: string, harness: RegistryHarness): void {
  describe(`Registry conformance: ${label}`, function () {
    this.timeout(30_000);
    let registry: Registry;

    beforeEach(async () => {
      registry = await harness.open();
    });

    afterEach(async () => {
      await harness.close(registry);
    });

    it('creates and reads principals with every field', async () => {
      const full = principal('car-1', { name: 'Car One ✓', tags: ['eu', 'fleet-a'], lastSeenAt: '2026-01-02T00:00:00.000Z' });
      const bare = principal('app-1', { type: 'app', secretHash: undefined });
      delete bare.secretHash;
      await registry.createPrincipals([full, bare]);
      assert.deepEqual(await registry.getPrincipal('car-1'), full);
      assert.deepEqual(await registry.getPrincipal('app-1'), bare);
      assert.equal(await registry.getPrincipal('nobody'), null);
    });

    it('refuses a batch with a taken or repeated id, and stores none of it', async () => {
      await registry.createPrincipals([principal('car-1')]);
      await assert.rejects(registry.createPrincipals([principal('car-2'), principal('car-1')]), (err) => conflict(err) && (err as { details?: { ids?: string[] } }).details?.ids?.includes('car-1') === true);
      assert.equal(await registry.getPrincipal('car-2'), null);
      await assert.rejects(registry.createPrincipals([principal('car-3'), principal('car-3')]), conflict);
      assert.equal(await registry.getPrincipal('car-3'), null);
    });

    it('creates a thousand principals in one batch', async () => {
      const batch = Array.from({ length: 1000 }, (_, i) => principal(`bulk-${String(i).padStart(4, '0')}`));
      await registry.createPrincipals(batch);
      assert.deepEqual(await registry.getPrincipal('bulk-0999'), batch[999]);
    });

    it('updates fields and reports unknown ids', async () => {
      await registry.createPrincipals([principal('car-1', { name: 'old' })]);
      const updated = await registry.updatePrincipal('car-1', { name: 'new', tags: ['x'], enabled: false, secretHash: 'sha256:rotated' });
      assert.equal(updated.name, 'new');
      assert.deepEqual(await registry.getPrincipal('car-1'), updated);
      assert.deepEqual(updated.tags, ['x']);
      assert.equal(updated.enabled, false);
      await assert.rejects(registry.updatePrincipal('nobody', { name: 'x' }), notFound);
    });

    it('deletes a principal with the permissions issued to or for it', async () => {
      await registry.createPrincipals([principal('car-1'), principal('app-1', { type: 'app' })]);
      await registry.createPermission(permission('p1', { issuedTo: 'app-1', principalFor: 'car-1' }));
      await registry.createPermission(permission('p2', { issuedTo: 'car-1', principalFor: null }));
      await registry.createPermission(permission('p3', { issuedTo: 'app-1', principalFor: 'car-9' }));
      await registry.deletePrincipal('car-1');
      assert.equal(await registry.getPrincipal('car-1'), null);
      assert.deepEqual(
        (await registry.listPermissions()).map((p) => p.id),
        ['p3'],
      );
      await assert.rejects(registry.deletePrincipal('car-1'), notFound);
    });

    it('lists by id with type, tag and id filters, paging through everything once', async () => {
      const devices = Array.from({ length: 7 }, (_, i) => principal(`car-${i}`, { tags: i % 2 ? ['odd'] : ['even'] }));
      await registry.createPrincipals([...devices, principal('app-1', { type: 'app', tags: ['odd'] })]);
      for (const limit of [1, 3, 100]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await registry.listPrincipals({ type: 'device' }, { limit, cursor });
          assert.ok(page.items.length <= limit);
          seen.push(...page.items.map((p) => p.id));
          cursor = page.next ?? undefined;
        } while (cursor);
        assert.deepEqual(
          seen,
          devices.map((d) => d.id),
          `limit ${limit}`,
        );
      }
      const odd = await registry.listPrincipals({ tag: 'odd' }, { limit: 100 });
      assert.deepEqual(
        odd.items.map((p) => p.id),
        ['app-1', 'car-1', 'car-3', 'car-5'],
      );
      const some = await registry.listPrincipals({ ids: ['car-2', 'app-1', 'nobody'] }, { limit: 100 });
      assert.deepEqual(
        some.items.map((p) => p.id),
        ['app-1', 'car-2'],
      );
      assert.equal(some.next, null);
    });

    it('records lastSeenAt for many principals, ignoring unknown ids', async () => {
      await registry.createPrincipals([principal('car-1'), principal('car-2')]);
      await registry.touchPrincipals(['car-1', 'car-2', 'nobody'], '2026-03-01T00:00:00.000Z');
      assert.equal((await registry.getPrincipal('car-1'))!.lastSeenAt, '2026-03-01T00:00:00.000Z');
      assert.equal((await registry.getPrincipal('car-2'))!.lastSeenAt, '2026-03-01T00:00:00.000Z');
    });

    it('keeps permission records, ordered by priority, creation time and id', async () => {
      const records = [
        permission('c', { priority: 10, createdAt: '2026-01-02T00:00:00.000Z' }),
        permission('b', { priority: 10, createdAt: '2026-01-01T00:00:00.000Z' }),
        permission('a', { priority: 50, issuedTo: null, principalFor: null, action: null, authorized: false, expires: '2027-01-01T00:00:00.000Z' }),
        permission('d', { priority: 1, issuedTo: 'app-2', action: 'send' }),
      ];
      for (const r of records) await registry.createPermission(r);
      const listed = await registry.listPermissions();
      assert.deepEqual(
        listed.map((p) => p.id),
        ['d', 'b', 'c', 'a'],
      );
      assert.deepEqual(listed[3], records[2]);
      assert.deepEqual(
        (await registry.listPermissions({ issuedTo: 'app-2' })).map((p) => p.id),
        ['d'],
      );
      assert.deepEqual(
        (await registry.listPermissions({ principalFor: 'car-1' })).map((p) => p.id),
        ['d', 'b', 'c'],
      );
      await assert.rejects(registry.createPermission(permission('a')), conflict);
      await registry.deletePermission('b');
      assert.deepEqual(
        (await registry.listPermissions()).map((p) => p.id),
        ['d', 'c', 'a'],
      );
      await assert.rejects(registry.deletePermission('b'), notFound);
    });

    it('writes, replaces and reads records, with any JSON value', async () => {
      const value = { desired: { 'a.b': 1, $c: [true, null, 'ü'] }, n: 2.5 };
      await registry.putRecords([
        { kind: 'twins', key: 'car-1', principal: 'car-1', value },
        { kind: 'presence', key: 'car-1', principal: 'car-1', value: 'connected' },
      ]);
      assert.deepEqual(await registry.getRecord('twins', 'car-1'), { kind: 'twins', key: 'car-1', principal: 'car-1', value });
      await registry.putRecords([{ kind: 'twins', key: 'car-1', principal: 'car-1', value: { v: 2 } }]);
      assert.deepEqual((await registry.getRecord('twins', 'car-1'))!.value, { v: 2 });
      assert.deepEqual((await registry.getRecord('presence', 'car-1'))!.value, 'connected');
      assert.equal(await registry.getRecord('twins', 'car-2'), null);
      assert.equal(await registry.getRecord('other', 'car-1'), null);
    });

    it('creates a record only once, and deletes it exactly once', async () => {
      const record = { kind: 'claim-codes', key: 'ABCDE12345', principal: 'car-1', value: { expiresAt: '2026-01-01T00:00:00.000Z' } };
      await registry.createRecord(record);
      await assert.rejects(registry.createRecord({ ...record, principal: 'car-2' }), conflict);
      assert.equal((await registry.getRecord('claim-codes', 'ABCDE12345'))!.principal, 'car-1');
      const deletions = await Promise.all([registry.deleteRecord('claim-codes', 'ABCDE12345'), registry.deleteRecord('claim-codes', 'ABCDE12345')]);
      assert.deepEqual(deletions.sort(), [false, true]);
      assert.equal(await registry.getRecord('claim-codes', 'ABCDE12345'), null);
    });

    it('lists records of a kind by key, by principal, paging through everything once', async () => {
      const keys = Array.from({ length: 7 }, (_, i) => `k-${i}`);
      await registry.putRecords(keys.map((key, i) => ({ kind: 'api-keys', key, principal: i % 2 ? 'app-1' : 'user-1', value: i })));
      await registry.putRecords([{ kind: 'other', key: 'k-9', principal: 'app-1', value: 9 }]);
      for (const limit of [1, 3, 100]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await registry.listRecords('api-keys', {}, { limit, cursor });
          assert.ok(page.items.length <= limit);
          seen.push(...page.items.map((r) => r.key));
          cursor = page.next ?? undefined;
        } while (cursor);
        assert.deepEqual(seen, keys, `limit ${limit}`);
      }
      const mine = await registry.listRecords('api-keys', { principal: 'app-1' }, { limit: 100 });
      assert.deepEqual(
        mine.items.map((r) => [r.key, r.value]),
        [
          ['k-1', 1],
          ['k-3', 3],
          ['k-5', 5],
        ],
      );
      assert.equal(mine.next, null);
    });

    it('deletes the records of a deleted principal, and only those', async () => {
      await registry.createPrincipals([principal('car-1'), principal('car-2')]);
      await registry.putRecords([
        { kind: 'certificates', key: 'f1', principal: 'car-1', value: {} },
        { kind: 'presence', key: 'car-1', principal: 'car-1', value: {} },
        { kind: 'presence', key: 'car-2', principal: 'car-2', value: {} },
      ]);
      await registry.deletePrincipal('car-1');
      assert.equal(await registry.getRecord('certificates', 'f1'), null);
      assert.equal(await registry.getRecord('presence', 'car-1'), null);
      assert.ok(await registry.getRecord('presence', 'car-2'));
    });

    if (harness.reopen) {
      it('keeps principals, permissions and records across a reopen', async () => {
        await registry.createPrincipals([principal('car-1', { name: 'kept' })]);
        await registry.createPermission(permission('p1'));
        await registry.putRecords([{ kind: 'twins', key: 'car-1', principal: 'car-1', value: { kept: true } }]);
        registry = await harness.reopen!(registry);
        assert.equal((await registry.getPrincipal('car-1'))!.name, 'kept');
        assert.deepEqual(
          (await registry.listPermissions()).map((p) => p.id),
          ['p1'],
        );
        assert.deepEqual((await registry.getRecord('twins', 'car-1'))!.value, { kept: true });
      });
    }
  });
}
