import { expect } from 'chai';
import { Queue } from 'bullmq';
import { Wallet, parseEther } from 'ethers';
import { Redis } from 'ioredis';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { createPayment, ledgerSums, sentTransactions } from '../support/settlement.js';

/**
 * Three worker processes settle several payments that confirm in the same block. Token sweeps all need the gas
 * tank at once: its nonces must never collide (a Postgres lock per chain serialises them across processes).
 */
describe('settlement: several payments settled concurrently by 3 worker processes', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;

  before(async () => {
    // Three worker processes; two start once the API is up, so four processes do not compile at once on a busy box.
    gw = await startGateway({ confirmations: 2, workers: 1 });
    await Promise.all([gw.startWorker(), gw.startWorker()]);
    // Pay only once all three consume the settlement queue, so the work really is shared.
    const queue = new Queue('settlement', { connection: new Redis(gw.env.REDIS_URL, { maxRetriesPerRequest: null }), prefix: gw.env.QUEUE_PREFIX });
    try {
      await waitFor(async () => (await queue.getWorkers()).length >= 3, 90_000, () => gw.logs().slice(-3000));
    } finally {
      await queue.close();
      await (queue.opts.connection as Redis).quit();
    }
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
  });
  after(async () => {
    await gw?.stop();
  });

  it('settles every payment exactly once, with distinct gas-tank nonces and a balanced ledger', async () => {
    const to = Wallet.createRandom().address;
    const merchant = await createTestMerchant(gw, 'Busy Shop', { settlement_address: to });
    const usdc = await Promise.all([1, 2, 3, 4, 5].map((i) => createPayment(gw, merchant.api_key, { amount: `${i}.25`, currency: 'USDC' })));
    const eth = await Promise.all([1, 2, 3].map((i) => createPayment(gw, merchant.api_key, { amount: `0.00${i}`, currency: 'ETH' })));
    // Hold the blocks back so every payment is paid in one block and confirms in the same scan.
    await chain.rpc('evm_setAutomine', [false]);
    try {
      for (const [i, p] of usdc.entries()) await chain.sendUsdc(1 + (i % 4), p.address, BigInt(i + 1) * 1_000_000n + 250_000n);
      for (const [i, p] of eth.entries()) await chain.sendEth(5 + i, p.address, BigInt(i + 1) * 1_000_000_000_000_000n);
      await chain.mine(1);
    } finally {
      await chain.rpc('evm_setAutomine', [true]);
    }
    await chain.mine(1);

    const all = [...usdc, ...eth];
    await waitFor(
      async () => {
        const statuses = await gw.db('payments').whereIn('id', all.map((p) => p.id)).pluck('status');
        if (statuses.every((s) => s === 'settled')) return true;
        await chain.mine(1);
        await new Promise((r) => setTimeout(r, 200));
        return false;
      },
      120_000,
      () => gw.logs().slice(-5000),
    );

    for (const p of all) expect(await sentTransactions(chain, p.address), p.id).to.equal(1);
    expect(await chain.usdcBalance(to)).to.equal(1_250_000n + 2_250_000n + 3_250_000n + 4_250_000n + 5_250_000n);

    const tank = new Wallet(gw.env.GAS_TANK_PRIVATE_KEY).address;
    const funding = await gw.db('sweep_transactions').where({ from_address: tank });
    const nonces = funding.map((f) => Number(f.nonce));
    expect(new Set(nonces).size).to.equal(nonces.length);
    expect(funding.every((f) => f.mined_block !== null && f.receipt_status === 1)).to.equal(true);
    expect(await sentTransactions(chain, tank)).to.equal(funding.length);
    expect(funding.length).to.be.at.least(usdc.length);

    expect(await ledgerSums(gw, merchant.id)).to.deep.equal({ ETH: 0n, USDC: 0n });
    const balance = (await call(gw, 'GET', '/api/v1/balance', { auth: merchant.api_key })).body.data;
    const ethBalance = balance.find((b: { currency: string }) => b.currency === 'ETH');
    expect(await chain.provider.getBalance(to)).to.equal(parseEther(ethBalance.settled));
    expect(parseEther(ethBalance.settled) + parseEther(ethBalance.network_fees)).to.equal(6_000_000_000_000_000n);
  });
});
