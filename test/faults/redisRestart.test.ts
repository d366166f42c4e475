import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../scripts/devstack/ports.js';
import { startRedis, type RedisHandle } from '../../scripts/devstack/redis.js';
import { chainClient } from '../support/chain.js';
import { call, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import { assertRecovered, createPayments, FAULT_ENV, openShop, PAYMENT_WEI, sleep } from './faultKit.js';

describe('fault: Redis killed and restarted empty', function () {
  this.timeout(600_000);
  let gw: Gateway | undefined;
  let redis: RedisHandle | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payflow-fault-redis-'));
  after(async () => {
    await gw?.stop();
    await redis?.stop();
    await receiver?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the outbox and maintenance rebuild what Redis lost: schedulers, queued jobs and pending retries', async () => {
    // A private Redis: the suite's shared one must not be killed under other gateways.
    const port = await freePort();
    redis = await startRedis({ port, dir, persist: false });
    // The receiver fails at first, so retries sit as delayed jobs in Redis when it dies.
    let receiverUp = false;
    receiver = await startWebhookReceiver(() => (receiverUp ? 200 : 503));
    gw = await startGateway({ workers: 1, confirmations: 1, env: { ...FAULT_ENV, REDIS_URL: redis.url, WEBHOOK_RETRY_SCHEDULE: '4,4,4,4,4,4,4,4,4,4' } });
    const g = gw;
    const shop = await openShop(g, receiver.url);
    const chain = chainClient(g.stack.rpcUrl, g.stack.usdcAddress);
    const payments = await createPayments(g, shop, 8);

    for (const p of payments.slice(0, 4)) await chain.sendEth(1, p.address, PAYMENT_WEI);
    await waitFor(async () => {
      const [{ n }] = await g.db('payments').whereIn('id', payments.slice(0, 4).map((p) => p.id)).where({ status: 'confirmed' }).count({ n: '*' });
      return Number(n) === 4;
    }, 60_000, () => g.logs().slice(-3000));
    await waitFor(async () => (await g.db('webhook_deliveries').where('attempts', '>', 0).where({ status: 'pending' }).first()) !== undefined, 30_000);

    process.kill(redis.pid, 'SIGKILL');
    await redis.stop();
    // While Redis is gone: customers keep paying, merchants keep creating payments (Postgres is the truth).
    for (const p of payments.slice(4)) await chain.sendEth(1, p.address, PAYMENT_WEI);
    const created = await call(g, 'POST', '/api/v1/payments', { auth: shop.apiKey, body: { amount: '0.001', currency: 'ETH' } });
    expect(created.status, `POST /api/v1/payments with Redis down: ${JSON.stringify(created.body)}`).to.equal(201);
    // Its delivery's first job, which the API sends to Redis after commit, waits in the outbox instead.
    const [{ id: deliveryId }] = await g.db('webhook_deliveries as d').join('events as e', 'e.id', 'd.event_id').where('e.payment_id', created.body.id).select('d.id');
    await waitFor(async () => (await g.db('outbox').where({ job_id: `${deliveryId}-0` }).first()) !== undefined, 15_000, () => g.logs().slice(-3000));
    await sleep(3000);
    receiverUp = true;

    redis = await startRedis({ port, dir, persist: false });
    await assertRecovered(g.db, { shop, paid: payments.map((p) => p.id), received: () => receiver!.received, describe: () => g.logs().slice(-4000) });
    expect(g.workers.every((w) => w.exitCode === null), 'the worker survived').to.equal(true);
  });
});
