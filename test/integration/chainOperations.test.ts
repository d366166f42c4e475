import { expect } from 'chai';
import path from 'node:path';
import { call, createTestMerchant, startGateway, stopChild, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { startFaultProxy, type FaultProxy } from '../support/faultProxy.js';
import { devAccounts, startDevChain } from '../../scripts/devstack/chain.js';
import { deployDevToken } from '../../scripts/devstack/token.js';
import { freePort } from '../../scripts/devstack/ports.js';

const ETH = (milli: number) => BigInt(milli) * 10n ** 15n;

async function createPayment(gw: Gateway, key: string, body: Record<string, unknown>) {
  const res = await call(gw, 'POST', '/api/v1/payments', { auth: key, body });
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  return res.body;
}

async function waitAllStatus(gw: Gateway, key: string, ids: string[], status: string, timeout = 60_000) {
  return waitFor(async () => {
    const all = await Promise.all(ids.map(async (id) => (await call(gw, 'GET', `/api/v1/payments/${id}`, { auth: key })).body));
    return all.every((p) => p.status === status) && all;
  }, timeout, () => gw.logs().slice(-4000));
}

/** Every payment told exactly one story: each event type at most once, in the expected order. */
async function expectEventsOnce(gw: Gateway, ids: string[], expected: string[]) {
  for (const id of ids) {
    const types = (await gw.db('events').where({ payment_id: id }).orderBy('seq')).map((e) => e.type);
    expect(types, id).to.deep.equal(expected);
  }
}

describe('chain correctness: chains, finality tags, backfill, RPC faults, many workers', function () {
  this.timeout(180_000);

  describe('before any worker has started on a chain', () => {
    let gw: Gateway;
    after(async () => gw?.stop());

    it('refuses payments with 503 chain_not_ready (a payment the scanner would never see is worse than none)', async () => {
      gw = await startGateway({ workers: 0 });
      const m = await createTestMerchant(gw);
      const res = await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '1', currency: 'ETH' } });
      expect(res.status).to.equal(503);
      expect(res.body.error.code).to.equal('chain_not_ready');
      expect(await gw.db('payments')).to.have.length(0);
      await gw.startWorker();
      await waitFor(async () => (await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '1', currency: 'ETH' } })).status === 201, 30_000);
    });
  });

  describe('finality by block tag', () => {
    let gw: Gateway;
    let proxy: FaultProxy;
    after(async () => {
      await gw?.stop();
      await proxy?.close();
    });

    it('confirms only once the node\'s finalized block has passed the transfer', async () => {
      gw = await startGateway({
        confirmations: 'finalized',
        wrapRpc: async (url) => (proxy = await startFaultProxy(url, { finalizedLag: 4 })).url,
      });
      const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
      const m = await createTestMerchant(gw);
      const p = await createPayment(gw, m.api_key, { amount: '0.01', currency: 'ETH' });
      expect(p.confirmations_required).to.equal('finalized');
      const txHash = await chain.sendEth(1, p.address, ETH(10));
      const block = (await chain.provider.getTransactionReceipt(txHash))!.blockNumber;
      await chain.mine(3); // head = block + 3: finalized (head − 4) is still below the transfer
      await waitFor(async () => Number((await gw.db('chain_cursors').first())?.next_block) > block + 3, 20_000);
      await new Promise((r) => setTimeout(r, 500));
      expect((await call(gw, 'GET', `/api/v1/payments/${p.id}`, { auth: m.api_key })).body.status, gw.logs()).to.equal('confirming');
      await chain.mine(1); // finalized = block
      await waitAllStatus(gw, m.api_key, [p.id], 'confirmed', 20_000);
    });
  });

  describe('several chains at once', () => {
    let gw: Gateway;
    let second: Awaited<ReturnType<typeof startDevChain>>;
    after(async () => {
      await gw?.stop();
      await second?.stop();
    });

    it('follows two chains, each with its own cursor, confirmations and tokens', async () => {
      const base = path.join((await import('node:os')).tmpdir(), `payflow-second-${process.pid}`);
      second = await startDevChain({ port: await freePort(), blockTime: 0, chainId: 31338, dir: base });
      const usdc2 = await deployDevToken(second.rpcUrl, devAccounts(10).map((a) => a.address));
      gw = await startGateway({
        confirmations: 2,
        extraChains: [
          { chain_id: 31338, name: 'second dev chain', rpc_url: second.rpcUrl, confirmations: 3, block_time: 0.4, tokens: [{ symbol: 'USDC', address: usdc2.address, decimals: 6 }] },
        ],
      });
      const m = await createTestMerchant(gw);
      const chains = (await call(gw, 'GET', '/api/v1/chains', { auth: m.api_key })).body.data;
      expect(chains.map((c: { chain_id: number }) => c.chain_id)).to.deep.equal([31337, 31338]);

      const ambiguous = await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '1', currency: 'USDC' } });
      expect(ambiguous.status).to.equal(400);
      expect(ambiguous.body.error).to.include({ code: 'chain_required', param: 'chain_id' });

      const one = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
      const two = chainClient(second.rpcUrl, usdc2.address);
      const p1 = await createPayment(gw, m.api_key, { amount: '2', currency: 'USDC', chain_id: 31337 });
      const p2 = await createPayment(gw, m.api_key, { amount: '3', currency: 'USDC', chain_id: 31338 });
      const p3 = await createPayment(gw, m.api_key, { amount: '0.01', currency: 'ETH', chain_id: 31338 });
      expect(p2).to.include({ chain_id: 31338, confirmations_required: 3, token_address: usdc2.address });
      // USDC sent on the wrong chain's token is not the asset asked for.
      await one.sendUsdc(1, p2.address, 3_000_000n);
      await one.sendUsdc(1, p1.address, 2_000_000n);
      await one.mine(1);
      await two.sendUsdc(1, p2.address, 3_000_000n);
      await two.mine(1);
      await waitAllStatus(gw, m.api_key, [p1.id], 'confirmed');
      await waitAllStatus(gw, m.api_key, [p2.id], 'confirming');
      await waitFor(async () => Number((await gw.db('chain_cursors').where({ chain_id: 31338 }).first()).next_block) > (await two.head()), 20_000);
      const mid = (await call(gw, 'GET', `/api/v1/payments/${p2.id}`, { auth: m.api_key })).body;
      expect(mid.status).to.equal('confirming'); // scanned 2 of 3 confirmations on the second chain: not final
      await two.sendEth(1, p3.address, ETH(10)); // a third block on chain 31338
      await two.mine(2);
      await waitAllStatus(gw, m.api_key, [p1.id, p2.id, p3.id], 'confirmed');
      const p2Final = (await call(gw, 'GET', `/api/v1/payments/${p2.id}`, { auth: m.api_key })).body;
      expect(p2Final.amount_received).to.equal('3'); // the transfer on chain 31337 to the same address never counted
      const cursors = await gw.db('chain_cursors').orderBy('chain_id');
      expect(cursors.map((c) => Number(c.chain_id))).to.deep.equal([31337, 31338]);
    });
  });

  describe('backfill after downtime', () => {
    let gw: Gateway;
    let proxy: FaultProxy;
    after(async () => {
      await gw?.stop();
      await proxy?.close();
    });

    it('catches up from its cursor with bounded log ranges that shrink when the provider refuses, skipping and double-counting nothing', async () => {
      gw = await startGateway({
        confirmations: 2,
        chainOverrides: { max_block_range: 25 },
        wrapRpc: async (url) => (proxy = await startFaultProxy(url, { maxLogRange: 4 })).url,
      });
      const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
      const m = await createTestMerchant(gw);
      await waitFor(async () => (await gw.db('chain_cursors').first()) !== undefined, 20_000);
      await stopChild(gw.workers[0]); // the worker dyno is down
      const payments = [];
      for (let i = 0; i < 6; i++) payments.push(await createPayment(gw, m.api_key, { amount: '1.5', currency: 'USDC' }));
      for (const [i, p] of payments.entries()) {
        await chain.mine(7);
        await chain.sendUsdc(1 + (i % 3), p.address, 1_500_000n);
      }
      await chain.mine(30); // ~80 blocks behind
      const cursorBefore = Number((await gw.db('chain_cursors').first()).next_block);
      expect(await chain.head()).to.be.greaterThan(cursorBefore + 60);

      await gw.startWorker();
      await waitAllStatus(gw, m.api_key, payments.map((p) => p.id), 'confirmed');
      expect(proxy.stats.rangeRefusals).to.be.greaterThan(0);
      expect(Math.max(...proxy.stats.getLogsRanges)).to.be.at.most(25);
      const transfers = await gw.db('transfers').whereIn('payment_id', payments.map((p) => p.id));
      expect(transfers).to.have.length(6);
      // Every block from the first scanned one to the tip was recorded once, as one chain.
      const blocks = await gw.db('chain_blocks').orderBy('number');
      for (let i = 1; i < blocks.length; i++) {
        expect(Number(blocks[i].number)).to.equal(Number(blocks[i - 1].number) + 1);
        expect(blocks[i].parent_hash).to.equal(blocks[i - 1].hash);
      }
      await expectEventsOnce(gw, payments.map((p) => p.id), ['payment.created', 'payment.confirming', 'payment.confirmed']);
    });
  });

  describe('RPC faults', () => {
    let gw: Gateway;
    let proxy: FaultProxy;
    after(async () => {
      await gw?.stop();
      await proxy?.close();
    });

    it('drops, delays, 5xx, 429 and truncated JSON are retried; every payment still confirms exactly once', async () => {
      gw = await startGateway({
        confirmations: 2,
        wrapRpc: async (url) =>
          (proxy = await startFaultProxy(url, { drop: 0.08, delay: 0.08, delayMs: 1200, error5xx: 0.08, rateLimit: 0.05, truncate: 0.08 })).url,
      });
      const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
      const m = await createTestMerchant(gw);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const p = await createPayment(gw, m.api_key, i % 2 ? { amount: '0.01', currency: 'ETH' } : { amount: '4', currency: 'USDC' });
        ids.push(p.id);
        if (i % 2) await chain.sendEth(1, p.address, ETH(10));
        else await chain.sendUsdc(2, p.address, 4_000_000n);
      }
      await chain.mine(2);
      await waitAllStatus(gw, m.api_key, ids, 'confirmed', 90_000);
      // The scanner keeps polling through the proxy, so every kind of fault is soon drawn at least once.
      await waitFor(async () => ['drop', 'delay', 'error5xx', 'rateLimit', 'truncate'].every((k) => (proxy.stats.faults[k] ?? 0) > 0), 30_000, () => JSON.stringify(proxy.stats.faults));
      const transfers = await gw.db('transfers').whereIn('payment_id', ids);
      expect(transfers).to.have.length(6);
      await expectEventsOnce(gw, ids, ['payment.created', 'payment.confirming', 'payment.confirmed']);
    });
  });

  describe('three worker processes', () => {
    let gw: Gateway;
    after(async () => gw?.stop());

    it('record every transfer once and every transition and event once, and keep up with the chain', async () => {
      gw = await startGateway({ confirmations: 2, workers: 3 });
      const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
      const m = await createTestMerchant(gw);
      const payments = await Promise.all(
        Array.from({ length: 24 }, (_, i) => createPayment(gw, m.api_key, i % 2 ? { amount: '0.002', currency: 'ETH' } : { amount: '1', currency: 'USDC' })),
      );
      for (const [i, p] of payments.entries()) {
        if (i % 2) await chain.sendEth(1 + (i % 4), p.address, ETH(2));
        else await chain.sendUsdc(1 + (i % 4), p.address, 1_000_000n);
      }
      await chain.mine(2);
      const ids = payments.map((p) => p.id);
      await waitAllStatus(gw, m.api_key, ids, 'confirmed', 90_000);
      expect(await gw.db('transfers').whereIn('payment_id', ids)).to.have.length(24);
      await expectEventsOnce(gw, ids, ['payment.created', 'payment.confirming', 'payment.confirmed']);
      const head = await chain.head();
      await waitFor(async () => Number((await gw.db('chain_cursors').first()).next_block) === head + 1, 10_000);
      // All three processes stayed up the whole time.
      expect(gw.workers.every((w) => w.exitCode === null)).to.equal(true);
    });
  });
});
