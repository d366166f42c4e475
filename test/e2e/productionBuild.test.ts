import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HDNodeWallet } from 'ethers';
import { createDb, migrateLatest, migrationConfig, type Db } from '../../shared/db.js';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { procfileNodeArgs } from '../support/procfile.js';
import { createTestDatabase } from '../support/stack.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

/**
 * The production build (`npm run build` → dist/) and the Procfile's processes run from it with plain node, no tsx:
 * web serves an authenticated API call and creates a payment, worker starts scanning, release migrates. Migrations
 * keep their recorded `.ts` names whichever form ran them, so a database migrated from source is current for the
 * build and the other way round.
 */
describe('production build: the Procfile processes from dist/ with plain node', function () {
  this.timeout(180_000);
  let gw: Gateway;

  const migrateFromDist = (databaseUrl: string) =>
    run(process.execPath, procfileNodeArgs('release'), { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl } });

  before(async function () {
    // A fresh clone has no dist/; an edited source makes it stale. Either way this builds, so a broken build fails here.
    this.timeout(300_000);
    await run(process.execPath, [path.join(repoRoot, 'scripts/build.mjs'), '--if-stale'], { cwd: repoRoot, maxBuffer: 10 * 2 ** 20 });
    // The database is migrated from source (the harness does); the processes run from dist/.
    gw = await startGateway({ workers: 0, compiled: true });
  });
  after(async () => {
    await gw?.stop();
  });

  it('node dist/api/main.js answers /health, serves the API to a merchant key, and the Bull Board loads on demand', async () => {
    // Started as the Procfile says, flags included (the heap flags, README "Processes").
    const cmdline = readFileSync(`/proc/${gw.api.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    expect(cmdline.slice(1)).to.deep.equal(['--max-old-space-size=384', '--max-semi-space-size=32', '--no-allocation-site-pretenuring', '--no-memory-reducer', path.join(repoRoot, 'dist/api/main.js')]);
    // Files read at start-up relative to the code (docs/openapi.json, checkout assets) are found from dist/ too.
    const openapi = await call(gw, 'GET', '/openapi.json');
    expect(openapi.status).to.equal(200);
    expect(openapi.body.openapi).to.match(/^3\./);

    const merchant = await createTestMerchant(gw, 'Build Shop');
    const list = await call(gw, 'GET', '/api/v1/payments', { auth: merchant.api_key });
    expect(list.status, JSON.stringify(list.body)).to.equal(200);
    expect(list.body.data).to.deep.equal([]);
    expect((await call(gw, 'GET', '/api/v1/payments')).status).to.equal(401);

    const board = await call(gw, 'GET', '/admin/queues/api/queues', { auth: gw.adminToken });
    expect(board.status, gw.logs()).to.equal(200);
    expect((board.body.queues as { name: string }[]).map((q) => q.name)).to.include('payments');
  });

  it('node dist/workers/main.js starts its pipeline, and the compiled API then creates a payment at a derived address', async () => {
    await gw.startWorker();
    await waitFor(async () => Number((await gw.db('chain_cursors').count('* as n').first())!.n) >= 1, 30_000, () => `compiled worker did not start:\n${gw.logs()}`);

    const merchant = await createTestMerchant(gw, 'Build Shop 2');
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.01', currency: 'ETH' } });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const row = await gw.db('payments').where({ id: created.body.id }).first('address', 'address_index');
    expect(created.body.address).to.equal(row.address);
    expect(row.address).to.equal(HDNodeWallet.fromPhrase(gw.env.HD_MNEMONIC, undefined, `m/44'/60'/0'/0/${row.address_index}`).address);
  });

  it('node dist/scripts/migrate.js on a database migrated from source is a no-op', async () => {
    const before = await gw.db('knex_migrations').orderBy('id').select('name', 'batch');
    expect(before.length).to.be.greaterThan(0);
    const { stdout } = await migrateFromDist(gw.databaseUrl);
    expect(stdout.trim()).to.equal('schema is up to date');
    expect(await gw.db('knex_migrations').orderBy('id').select('name', 'batch')).to.deep.equal(before);
  });

  it('a database migrated by dist/scripts/migrate.js is current for the source, under the same .ts names', async () => {
    const dbName = `pf_build_${randomBytes(4).toString('hex')}`;
    const databaseUrl = await createTestDatabase(gw.stack, dbName);
    let db: Db | undefined;
    try {
      const { stdout } = await migrateFromDist(databaseUrl);
      expect(stdout).to.match(/^migrations applied: /);
      db = createDb(databaseUrl, 2, 'payflow-test');
      const fromDist = (await db('knex_migrations').orderBy('id').pluck('name')) as string[];
      const fromSource = (await gw.db('knex_migrations').orderBy('id').pluck('name')) as string[];
      expect(fromDist).to.deep.equal(fromSource);
      expect(fromDist.every((name) => name.endsWith('.ts'))).to.equal(true);
      expect(await migrateLatest(db)).to.deep.equal([]);
      const [, pending] = (await db.migrate.list(migrationConfig)) as [unknown[], unknown[]];
      expect(pending).to.deep.equal([]);
    } finally {
      await db?.destroy();
    }
  });
});
