import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDb, migrateLatest, type Db } from '../../shared/db.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../scripts/devstack/postgres.js';
import { chainClient } from '../support/chain.js';
import { startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import { assertRecovered, createPayments, FAULT_ENV, openShop, PAYMENT_WEI, sleep } from './faultKit.js';

const OUTAGE_MS = 10_000;
const PG_FLAGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

describe('fault: Postgres stopped for 10 s', function () {
  this.timeout(600_000);
  let gw: Gateway | undefined;
  let pg: EmbeddedPostgresHandle | undefined;
  let db: Db | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payflow-fault-pg-'));
  fs.chmodSync(dir, 0o755); // embedded Postgres runs as user postgres when we are root
  after(async () => {
    await gw?.stop();
    await db?.destroy();
    await pg?.stop();
    await receiver?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the API answers 503 (never 500, never hangs), workers back off, and everything resumes', async () => {
    const port = await freePort();
    const dataDir = path.join(dir, 'pg');
    pg = await startEmbeddedPostgres({ dataDir, port, database: 'payflow_fault', postgresFlags: PG_FLAGS });
    db = createDb(pg.url, 4, 'payflow-fault-test');
    await migrateLatest(db);
    receiver = await startWebhookReceiver();
    // workers: 0, then one started by hand: startGateway would wait for chain cursors in the shared database.
    gw = await startGateway({ workers: 0, confirmations: 1, env: { ...FAULT_ENV, DATABASE_URL: pg.url, API_KEY_CACHE_TTL_MS: '0' } });
    const g = gw;
    await g.startWorker();
    await waitFor(async () => (await db!('chain_cursors').first()) !== undefined, 60_000, () => g.logs().slice(-3000));
    const shop = await openShop(g, receiver.url);
    const chain = chainClient(g.stack.rpcUrl, g.stack.usdcAddress);
    const payments = await createPayments(g, shop, 6);
    for (const p of payments.slice(0, 3)) await chain.sendEth(1, p.address, PAYMENT_WEI);
    await waitFor(async () => Number((await db!('payments').where({ status: 'confirmed' }).count({ n: '*' }))[0].n) === 3, 60_000, () => g.logs().slice(-3000));

    await pg.stop();
    const outageEnds = Date.now() + OUTAGE_MS;
    const answers: { route: string; status: number | string; ms: number; body?: unknown }[] = [];
    const probe = async (route: string, init: RequestInit = {}) => {
      const t0 = Date.now();
      try {
        const res = await fetch(`${g.apiUrl}${route}`, { ...init, headers: { authorization: `Bearer ${shop.apiKey}`, 'content-type': 'application/json' }, signal: AbortSignal.timeout(15_000) });
        const body = await res.json().catch(() => undefined);
        answers.push({ route, status: res.status, ms: Date.now() - t0, body });
      } catch (err) {
        answers.push({ route, status: (err as Error).name, ms: Date.now() - t0 });
      }
    };
    // Customers keep paying during the outage; the chain does not wait for us.
    for (const p of payments.slice(3)) await chain.sendEth(1, p.address, PAYMENT_WEI);
    while (Date.now() < outageEnds) {
      await Promise.all([
        probe(`/api/v1/payments/${payments[0].id}`),
        probe('/api/v1/payments', { method: 'POST', body: JSON.stringify({ amount: '0.001', currency: 'ETH' }) }),
      ]);
      const health = await fetch(`${g.apiUrl}/health`);
      expect(health.status, 'liveness does not depend on Postgres').to.equal(200);
      await sleep(500);
    }
    expect(g.workers[0].exitCode, 'the worker survived the outage').to.equal(null);
    pg = await startEmbeddedPostgres({ dataDir, port, database: 'payflow_fault', postgresFlags: PG_FLAGS });

    expect(answers.length).to.be.greaterThan(4);
    for (const a of answers) {
      expect(a.status, `${a.route} during the outage: ${JSON.stringify(a)}`).to.equal(503);
      expect((a.body as { error: { type: string } }).error.type).to.equal('service_unavailable_error');
    }
    await waitFor(async () => (await fetch(`${g.apiUrl}/api/v1/payments/${payments[0].id}`, { headers: { authorization: `Bearer ${shop.apiKey}` } })).status === 200, 60_000);
    await assertRecovered(db, { shop, paid: payments.map((p) => p.id), received: () => receiver!.received, describe: () => g.logs().slice(-4000) });
    expect(g.workers[0].exitCode, 'the worker is still the same process').to.equal(null);
    expect(g.logs(), 'the outbox relay backed off and said so').to.match(/outbox relay failed; retrying/);
  });
});
