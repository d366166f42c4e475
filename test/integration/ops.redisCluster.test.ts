import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { call, createTestMerchant, startGateway, stopChild, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import { freePort } from '../../scripts/devstack/ports.js';

const run = promisify(execFile);

/** Three cluster-enabled redis-servers on loopback, joined with `redis-cli --cluster create` (no replicas). */
async function startRedisCluster() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'payflow-cluster-'));
  const ports: number[] = [];
  while (ports.length < 3) {
    const p = await freePort();
    // The cluster bus listens on port + 10000: both must be free.
    if (p + 10000 <= 65535 && !ports.includes(p)) ports.push(p);
  }
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
      '--daemonize', 'no', '--loglevel', 'warning',
    ], { stdio: 'ignore' }),
  );
  const stop = async () => {
    await Promise.all(nodes.map((n) => stopChild(n)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await waitFor(async () => (await run('redis-cli', ['-p', String(port), 'ping'])).stdout.trim() === 'PONG', 15_000);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      await waitFor(async () => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout.includes('cluster_state:ok'), 20_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop };
}

describe('ops: the payment story on a 3-node Redis Cluster (redis+cluster://, hash-tagged queue prefix)', function () {
  this.timeout(150_000);
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let gw: Gateway;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const prefix = '{payflow-cluster}';

  before(async () => {
    cluster = await startRedisCluster();
    receiver = await startWebhookReceiver();
    gw = await startGateway({ workers: 2, env: { REDIS_URL: cluster.url, QUEUE_PREFIX: prefix } });
  });
  after(async () => {
    await gw?.stop();
    await receiver?.close();
    await cluster?.stop();
  });

  it('refuses a queue prefix without a hash tag on a cluster, naming the variable', async () => {
    const res = await run(process.execPath, ['--import', 'tsx', 'workers/main.ts'], { env: { ...gw.env, QUEUE_PREFIX: 'payflow' } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(res.code).to.equal(78);
    expect(res.stderr).to.match(/QUEUE_PREFIX.*hash tag/);
  });

  it('is ready, then creates, pays, confirms and delivers the signed webhooks', async () => {
    const ready = await call(gw, 'GET', '/ready');
    expect(ready.status, JSON.stringify(ready.body)).to.equal(200);
    const merchant = await createTestMerchant(gw);
    await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } });
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.03', currency: 'ETH' } });
    expect(created.status).to.equal(201);
    const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    await chain.sendEth(5, created.body.address, 30_000_000_000_000_000n);
    await chain.mine(2);
    await waitFor(async () => (await call(gw, 'GET', `/api/v1/payments/${created.body.id}`, { auth: merchant.api_key })).body.status === 'confirmed', 40_000, () => gw.logs().slice(-4000));
    await waitFor(async () => receiver.events().filter((e) => e.data.id === created.body.id).length === 3, 30_000, () => gw.logs().slice(-4000));
    expect(receiver.events().filter((e) => e.data.id === created.body.id).map((e) => e.type).sort()).to.deep.equal(['payment.confirmed', 'payment.confirming', 'payment.created']);

    // The queues really live in the cluster, all on the one slot of the hash tag.
    const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    try {
      const slot = await client.cluster('KEYSLOT', prefix);
      const keys: string[] = [];
      for (const node of client.nodes('master')) keys.push(...(await node.keys(`${prefix}:*`)));
      expect(keys.some((k) => k.startsWith(`${prefix}:webhooks:`))).to.equal(true);
      for (const k of keys) expect(await client.cluster('KEYSLOT', k)).to.equal(slot);
    } finally {
      client.disconnect();
    }
  });
});
