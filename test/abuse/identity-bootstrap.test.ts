// Issues: NITROGEN_ADMIN_SECRET of 12 spaces was accepted; the start banner named an
// admin.secret file that does not exist once the variable was removed; registry.db (secret
// digests) was 0644, safe only while the data directory was 0700, and an existing directory's
// mode was left alone.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCatalog } from '../../catalog.js';
import { loadConfig, parseConfig } from '../../core/config.js';
import { isNitrogenError } from '../../core/errors.js';
import { createServer } from '../../core/server.js';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { exited, spawnServer } from '../helpers/process.js';
import { TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp.js';

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** A server on `dataDir`, with `adminSecret` or none; its admin logs in with `login`. */
async function boot(dataDir: string, adminSecret: string | undefined, login?: string): Promise<TestServer> {
  const server = createServer(
    {
      host: '127.0.0.1',
      dataDir,
      adminSecret,
      log: { level: 'silent' },
      plugins: [
        { use: 'mqtt', options: { port: 0 } },
        { use: 'rest', options: { port: 0 } },
      ],
    },
    { catalog: defaultCatalog },
  );
  await server.start();
  const t = new TestServer(server, dataDir);
  const secret = login ?? adminSecret ?? (existsSync(join(dataDir, 'admin.secret')) ? readFileSync(join(dataDir, 'admin.secret'), 'utf8').trim() : undefined);
  if (secret !== undefined) t.adminToken = await t.token('admin', secret);
  return t;
}

const configError = (field: string) => (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_CONFIG') && err.message.includes(field);

describe('abuse: the admin secret and the files that hold secrets', () => {
  const dirs: Array<{ remove(): void }> = [];
  const dir = () => {
    const made = tempDir();
    dirs.push(made);
    return made.path;
  };
  after(() => dirs.forEach((d) => d.remove()));

  it('refuses a blank or whitespace admin secret, from the file and from the environment', async () => {
    assert.throws(() => parseConfig({ adminSecret: ' '.repeat(12) }), configError('adminSecret'));
    assert.throws(() => parseConfig({ adminSecret: '\t\n    short    \n' }), configError('adminSecret'));
    assert.throws(() => loadConfig({ NITROGEN_ADMIN_SECRET: ' '.repeat(16) }, dir()), configError('adminSecret'));
    assert.equal(parseConfig({ adminSecret: 'twelve-chars' }).adminSecret, 'twelve-chars');
    const t = await boot(dir(), 'a-real-admin-secret');
    await assertServesNormalDevice(t);
    await t.stop();
  });

  it('says where the admin secret is, and never names a file that does not hold it', async () => {
    const configured = dir();
    let t = await boot(configured, 'configured-admin-secret');
    assert.deepEqual(t.server.adminSecret, { kind: 'configured' });
    await t.stop();
    // The variable removed: the secret is still the configured one, and no file holds it.
    t = await boot(configured, undefined, 'configured-admin-secret');
    assert.deepEqual(t.server.adminSecret, { kind: 'earlier' });
    assert.equal(existsSync(join(configured, 'admin.secret')), false);
    await t.stop();

    const generated = dir();
    const file = join(generated, 'admin.secret');
    t = await boot(generated, undefined);
    assert.deepEqual(t.server.adminSecret, { kind: 'generated', file });
    assert.equal(mode(file), '600');
    await t.stop();
    t = await boot(generated, undefined);
    assert.deepEqual(t.server.adminSecret, { kind: 'file', file });
    assert.equal((await t.api('PUT', '/principals/admin/password', { body: { password: 'chosen-through-the-api' } })).status, 204);
    await t.stop();
    // The file no longer holds the secret: it is removed, not pointed at.
    t = await boot(generated, undefined, 'chosen-through-the-api');
    assert.deepEqual(t.server.adminSecret, { kind: 'earlier' });
    assert.equal(existsSync(file), false);
    await assertServesNormalDevice(t);
    await t.stop();
  });

  it('prints a start banner that tells the truth after NITROGEN_ADMIN_SECRET is removed', async () => {
    const dataDir = dir();
    const start = async (secret: string) => {
      const server = await spawnServer({ NITROGEN_DATA_DIR: dataDir, NITROGEN_ADMIN_SECRET: secret }, dataDir);
      server.child.kill('SIGTERM');
      await exited(server.child);
      return server.output();
    };
    assert.match(await start('the-first-admin-secret'), /admin: .*secret from NITROGEN_ADMIN_SECRET/);
    const banner = await start('');
    assert.doesNotMatch(banner, /admin\.secret/, banner);
    assert.match(banner, /admin: .*secret set earlier/);
    const t = await boot(dataDir, undefined, 'the-first-admin-secret');
    await assertServesNormalDevice(t);
    await t.stop();
  });

  it('keeps the data directory and the registry readable by this user only, also when they existed before', async () => {
    const dataDir = join(dir(), 'data');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    let t = await boot(dataDir, 'file-mode-admin-secret');
    assert.equal(mode(dataDir), '700');
    for (const name of ['registry.db', 'registry.db-wal', 'registry.db-shm', 'token.key']) assert.equal(mode(join(dataDir, name)), '600', name);
    await t.stop();

    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'registry.db'), 0o644);
    t = await boot(dataDir, 'file-mode-admin-secret');
    assert.equal(mode(dataDir), '700');
    assert.equal(mode(join(dataDir, 'registry.db')), '600');
    await assertServesNormalDevice(t);
    await t.stop();
  });
});
