import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { call, createTestMerchant, startGateway, stopChild, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';

const run = promisify(execFile);

/** The ops CLI against a real gateway's database, Redis and chain. */
describe('ops: CLI (npm run payflow -- <command>)', function () {
  this.timeout(150_000);
  let gw: Gateway;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  const payflow = async (...args: string[]) => {
    try {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/payflow.ts', ...args], { env: gw.env });
      return { code: 0, json: JSON.parse(stdout), stderr: '' };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, json: undefined, stderr: e.stderr };
    }
  };
  const status = async (key: string) => (await call(gw, 'GET', '/api/v1/chains', { auth: key })).status;

  before(async () => {
    receiver = await startWebhookReceiver();
    gw = await startGateway({ workers: 1, env: { API_KEY_CACHE_TTL_MS: '0', WORKER_QUEUES: 'chain,webhooks' } });
  });
  after(async () => {
    await receiver?.close();
    await gw?.stop();
  });

  it('is wired as `npm run payflow`, prints usage, and rejects unknown commands and bad flags with exit 64', async () => {
    const { stdout } = await run('npm', ['run', '-s', 'payflow', '--', 'chains:cursors'], { env: gw.env });
    expect(JSON.parse(stdout)).to.be.an('array');
    const unknown = await payflow('merchants:delete');
    expect(unknown.code).to.equal(64);
    expect(unknown.stderr).to.match(/unknown command "merchants:delete"[\s\S]*usage:/);
    const missing = await payflow('merchant:create');
    expect(missing.code).to.equal(64);
    expect(missing.stderr).to.include('--name <value> is required');
  });

  it('merchant:create, key:create, keys:list, key:rotate, key:revoke', async () => {
    const created = await payflow('merchant:create', '--name', 'CLI Shop', '--settlement-address', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8');
    expect(created.code).to.equal(0);
    expect(created.json).to.include({ name: 'CLI Shop', settlement_address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' });
    expect(created.json.api_key).to.match(/^sk_test_/);
    const merchantId = created.json.id as string;
    expect(await status(created.json.api_key)).to.equal(200);

    const second = await payflow('key:create', '--merchant', merchantId, '--scopes', 'read');
    expect(second.code).to.equal(0);
    expect(second.json).to.include({ merchant_id: merchantId });
    expect(second.json.scopes).to.deep.equal(['read']);
    expect(await status(second.json.api_key)).to.equal(200);
    expect((await payflow('key:create', '--merchant', 'mer_nobody')).code).to.equal(64);

    const listed = await payflow('keys:list', '--merchant', merchantId);
    expect(listed.json).to.have.length(2);
    expect(JSON.stringify(listed.json)).to.not.include(created.json.api_key); // prefixes only
    const firstKeyId = listed.json.find((k: { scopes: string[] }) => k.scopes.includes('write')).id;

    const rotated = await payflow('key:rotate', '--key', firstKeyId);
    expect(rotated.code).to.equal(0);
    expect(rotated.json).to.include({ revoked: firstKeyId, merchant_id: merchantId });
    expect(rotated.json.scopes).to.deep.equal(['read', 'write']);
    expect(await status(rotated.json.api_key)).to.equal(200);
    await waitFor(async () => (await status(created.json.api_key)) === 401, 15_000);
    expect((await payflow('key:rotate', '--key', firstKeyId)).code, 'a revoked key cannot be rotated again').to.equal(64);

    const revoked = await payflow('key:revoke', '--key', second.json.id);
    expect(revoked.code).to.equal(0);
    await waitFor(async () => (await status(second.json.api_key)) === 401, 15_000);
    expect(await status(rotated.json.api_key)).to.equal(200);
  });

  it('webhooks:redeliver sends a delivered event again, with the same webhook-id', async () => {
    const merchant = await createTestMerchant(gw);
    await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } });
    const payment = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.5', currency: 'ETH' } });
    await waitFor(async () => receiver.events().some((e) => e.data.id === payment.body.id), 20_000, () => gw.logs());
    const event = receiver.events().find((e) => e.data.id === payment.body.id)!;
    const delivery = await gw.db('webhook_deliveries').where({ event_id: event.id }).first();
    await waitFor(async () => (await gw.db('webhook_deliveries').where({ id: delivery.id }).first()).status === 'succeeded', 10_000);

    const res = await payflow('webhooks:redeliver', '--event', event.id);
    expect(res.code).to.equal(0);
    expect(res.json).to.deep.equal({ redelivered: [delivery.id], skipped: [] });
    await waitFor(async () => receiver.received.filter((r) => r.headers['webhook-id'] === event.id).length === 2, 20_000, () => gw.logs());
    expect((await payflow('webhooks:redeliver', '--delivery', 'whd_missing')).code).to.equal(64);
  });

  it('jobs:retry-failed puts failed BullMQ jobs back to waiting', async () => {
    // The gateway's worker does not consume `payments` here; a worker in this test fails every job it takes there.
    const connection = new Redis(gw.stack.redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('payments', { connection, prefix: gw.env.QUEUE_PREFIX });
    const failing = new Worker('payments', async () => {
      throw new Error('broken on purpose');
    }, { connection: connection.duplicate(), prefix: gw.env.QUEUE_PREFIX });
    try {
      const job = await queue.add('broken', {}, { jobId: 'broken-1', attempts: 1 });
      await waitFor(async () => (await queue.getJobState(job.id!)) === 'failed', 20_000);
      await failing.close();
      const failedBefore = await queue.getFailedCount();
      const res = await payflow('jobs:retry-failed', '--queue', 'payments');
      expect(res.code).to.equal(0);
      expect(res.json).to.deep.equal({ retried: { payments: failedBefore } });
      expect(await queue.getFailedCount()).to.equal(0);
      expect(await queue.getJobState(job.id!)).to.equal('waiting');
      expect((await payflow('jobs:retry-failed', '--queue', 'nope')).code).to.equal(64);
    } finally {
      await failing.close();
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });

  it('chains:cursors shows each chain scanned block, node head and lag', async () => {
    const res = await payflow('chains:cursors');
    expect(res.code).to.equal(0);
    expect(res.json).to.have.length(1);
    const [c] = res.json;
    expect(c).to.include({ chain_id: 31337, name: 'test chain' });
    expect(c.head).to.be.a('number');
    expect(c.scanned_block).to.be.a('number');
    expect(c.lag_blocks).to.equal(Math.max(0, c.head - c.scanned_block));
  });

  it('payments:stuck lists payments confirming for too long, not fresh ones', async () => {
    // Nothing may touch the payments while we age them: stop the worker first.
    for (const w of gw.workers) await stopChild(w);
    const merchant = await createTestMerchant(gw, 'Stuck Shop');
    const [old, fresh] = await Promise.all(
      ['1', '2'].map(async (amount) => (await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount, currency: 'ETH' } })).body),
    );
    await gw.db('payments').where({ id: old.id }).update({ status: 'confirming', updated_at: new Date(Date.now() - 2 * 3600_000) });
    await gw.db('payments').where({ id: fresh.id }).update({ status: 'confirming', updated_at: new Date() });
    const res = await payflow('payments:stuck', '--older-than', '3600');
    expect(res.code).to.equal(0);
    const ids = res.json.map((p: { id: string }) => p.id);
    expect(ids).to.include(old.id);
    expect(ids).to.not.include(fresh.id);
    expect(res.json.find((p: { id: string }) => p.id === old.id)).to.include({ status: 'confirming', chain_id: 31337 });
  });
});
