import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { Wallet, parseEther } from 'ethers';
import { createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { createPayment, ledgerSums, sentTransactions, waitForStatus } from '../support/settlement.js';

/**
 * Crash test: a settlement worker is killed with SIGKILL at each step of a settlement (PAYFLOW_CRASH_AT, a
 * test-only switch in shared/crashPoint.ts), then the next worker carries on. Whatever the crash point,
 * each deposit is swept exactly once on-chain, and the ledger balances.
 *
 * The gateway's own worker scans the chain but does not settle (WORKER_QUEUES without `settlement`); each round
 * starts a settlement-only worker that dies at its crash point.
 */
describe('settlement: exactly once through SIGKILL at every step', function () {
  this.timeout(300_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  let merchant: { id: string; api_key: string };
  const to = Wallet.createRandom().address;

  before(async () => {
    gw = await startGateway({ confirmations: 2, env: { WORKER_QUEUES: 'chain,payments,webhooks' } });
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    merchant = await createTestMerchant(gw, 'Crashing Shop', { settlement_address: to });
  });
  after(async () => {
    await gw?.stop();
  });

  /** Starts a settlement worker that kills itself at `point`; resolves once it died of SIGKILL. */
  async function crashAt(point: string): Promise<void> {
    const worker: ChildProcess = await gw.startWorker({ WORKER_QUEUES: 'settlement', PAYFLOW_CRASH_AT: point });
    await waitFor(
      async () => {
        if (worker.exitCode !== null || worker.signalCode !== null) return true;
        await chain.mine(1); // confirmations for the before_receipt point
        await new Promise((r) => setTimeout(r, 200));
        return false;
      },
      60_000,
      () => `worker did not crash at ${point}\n${gw.logs().slice(-3000)}`,
    );
    expect(worker.signalCode, `worker exit at ${point}`).to.equal('SIGKILL');
  }

  async function stopSettlementWorkers() {
    for (const w of gw.workers.slice(1)) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
    await waitFor(async () => gw.workers.slice(1).every((w) => w.exitCode !== null || w.signalCode !== null), 30_000);
  }

  const sweepTxs = async (paymentId: string) =>
    gw.db('sweep_transactions as t').join('sweeps as s', 's.id', 't.sweep_id').where('s.payment_id', paymentId).select('t.*').orderBy('t.id');

  it('ETH: crash after signing, after storing, after broadcasting, before recording the receipt; swept once', async () => {
    const p = await createPayment(gw, merchant.api_key, { amount: '0.07', currency: 'ETH' });
    await chain.sendEth(1, p.address, 70_000_000_000_000_000n);
    await waitForStatus(gw, chain, merchant.api_key, p.id, 'confirmed');

    await crashAt('after_sign');
    // Signed in memory only: nothing stored, nothing sent.
    expect(await sweepTxs(p.id)).to.have.length(0);
    expect(await sentTransactions(chain, p.address)).to.equal(0);

    await crashAt('after_store');
    const stored = await sweepTxs(p.id);
    expect(stored).to.have.length(1);
    expect(stored[0].broadcast_at).to.equal(null);
    expect(await sentTransactions(chain, p.address)).to.equal(0);

    await crashAt('after_broadcast');
    // The stored bytes went out (the dev chain mines at once); the row was not yet marked.
    expect(await sentTransactions(chain, p.address)).to.equal(1);
    const afterBroadcast = await sweepTxs(p.id);
    expect(afterBroadcast).to.have.length(1);
    expect(afterBroadcast[0].tx_hash).to.equal(stored[0].tx_hash);

    await crashAt('before_receipt');
    expect((await gw.db('payments').where({ id: p.id }).first()).status).to.equal('confirmed');

    await gw.startWorker({ WORKER_QUEUES: 'settlement' });
    const settled = await waitForStatus(gw, chain, merchant.api_key, p.id, 'settled');
    expect(settled.settlement.tx_hash).to.equal(stored[0].tx_hash);
    expect(await sweepTxs(p.id)).to.have.length(1);
    expect(await sentTransactions(chain, p.address)).to.equal(1);
    expect(await chain.provider.getBalance(p.address)).to.equal(0n);
    expect(await gw.db('events').where({ payment_id: p.id, type: 'payment.settled' })).to.have.length(1);
  });

  it('USDC: crashes at every step of the gas funding and of the token transfer; each transaction sent once', async () => {
    await stopSettlementWorkers(); // the previous test's must not settle this one

    const p = await createPayment(gw, merchant.api_key, { amount: '12.5', currency: 'USDC' });
    await chain.sendUsdc(2, p.address, 12_500_000n);
    await waitForStatus(gw, chain, merchant.api_key, p.id, 'confirmed');
    const tank = new Wallet(gw.env.GAS_TANK_PRIVATE_KEY).address;
    const tankNonceBefore = await sentTransactions(chain, tank);

    // Gas funding (from the tank), then the token transfer (from the deposit): each crashes at every step.
    for (const point of ['after_sign', 'after_store', 'after_broadcast', 'after_sign', 'after_store', 'after_broadcast', 'before_receipt']) {
      await crashAt(point);
    }
    const rows = await sweepTxs(p.id);
    expect(rows.map((r) => r.role)).to.deep.equal(['gas_funding', 'sweep']);
    expect((await gw.db('payments').where({ id: p.id }).first()).status).to.equal('confirmed');

    await gw.startWorker({ WORKER_QUEUES: 'settlement' });
    const settled = await waitForStatus(gw, chain, merchant.api_key, p.id, 'settled');
    expect(settled.settlement).to.include({ amount: '12.5', to, tx_hash: rows[1].tx_hash });
    expect(await chain.usdcBalance(to)).to.equal(12_500_000n);
    expect(await sentTransactions(chain, p.address)).to.equal(1);
    expect(await sentTransactions(chain, tank)).to.equal(tankNonceBefore + 1);
    expect(await sweepTxs(p.id)).to.have.length(2);
    expect(await ledgerSums(gw, merchant.id)).to.deep.equal({ ETH: 0n, USDC: 0n });
  });

  it('a sweep stuck in the mempool is replaced (same nonce, higher fee); every attempt is recorded and the one that mines settles', async () => {
    await stopSettlementWorkers();
    const p = await createPayment(gw, merchant.api_key, { amount: '0.03', currency: 'ETH' });
    await chain.sendEth(3, p.address, 30_000_000_000_000_000n);
    await waitForStatus(gw, chain, merchant.api_key, p.id, 'confirmed');
    const before = await chain.provider.getBalance(to);

    // Nothing mines while automine is off: the broadcast sweep waits in the mempool and gets replaced.
    await chain.rpc('evm_setAutomine', [false]);
    let attempts: Record<string, any>[] = [];
    try {
      await gw.startWorker({ WORKER_QUEUES: 'settlement', SETTLEMENT_REPLACE_AFTER_SECONDS: '1' });
      attempts = await waitFor(async () => {
        const rows = await sweepTxs(p.id);
        return rows.length >= 2 && rows.every((r) => r.broadcast_at !== null) && rows;
      }, 60_000, () => gw.logs().slice(-3000));
    } finally {
      await chain.rpc('evm_setAutomine', [true]);
    }
    expect(new Set(attempts.map((r) => Number(r.nonce))).size).to.equal(1);
    expect(attempts.map((r) => r.attempt)).to.deep.equal(attempts.map((_, i) => i));
    for (let i = 1; i < attempts.length; i++) {
      expect(BigInt(attempts[i].max_fee_per_gas) * 10n > BigInt(attempts[i - 1].max_fee_per_gas) * 11n).to.equal(true);
    }

    const settled = await waitForStatus(gw, chain, merchant.api_key, p.id, 'settled');
    const all = await sweepTxs(p.id);
    expect(all.map((r) => r.tx_hash)).to.include(settled.settlement.tx_hash);
    expect(all.filter((r) => r.mined_block !== null)).to.have.length(1);
    expect(await sentTransactions(chain, p.address)).to.equal(1);
    expect(await chain.provider.getBalance(p.address)).to.equal(0n);
    expect((await chain.provider.getBalance(to)) - before).to.equal(parseEther(settled.settlement.amount));
    expect(parseEther(settled.settlement.amount) + parseEther(settled.settlement.fee)).to.equal(30_000_000_000_000_000n);
    expect(await ledgerSums(gw, merchant.id)).to.deep.equal({ ETH: 0n, USDC: 0n });
  });

  it('a stuck token sweep is replaced after the gas tank tops the deposit up for the higher fee', async () => {
    await stopSettlementWorkers();
    const p = await createPayment(gw, merchant.api_key, { amount: '4', currency: 'USDC' });
    await chain.sendUsdc(4, p.address, 4_000_000n);
    await waitForStatus(gw, chain, merchant.api_key, p.id, 'confirmed');
    const before = await chain.usdcBalance(to);
    const rows = () => sweepTxs(p.id);
    const broadcast = (role: string, n: number) => async () => {
      const r = (await rows()).filter((t) => t.role === role && t.broadcast_at !== null);
      return r.length >= n && r;
    };

    await chain.rpc('evm_setAutomine', [false]);
    try {
      await gw.startWorker({ WORKER_QUEUES: 'settlement', SETTLEMENT_REPLACE_AFTER_SECONDS: '1' });
      await waitFor(broadcast('gas_funding', 1), 60_000, () => gw.logs().slice(-3000));
      await chain.mine(1); // the first top-up lands; the token transfer is signed and broadcast next
      const [first] = await waitFor(broadcast('sweep', 1), 60_000, () => gw.logs().slice(-3000));
      // Not mined within SETTLEMENT_REPLACE_AFTER_SECONDS: the higher fee needs more gas money first.
      await waitFor(broadcast('gas_funding', 2), 60_000, () => gw.logs().slice(-3000));
      // The node lost the original (a dropped transaction); only the top-up is mined.
      await chain.rpc('hardhat_dropTransaction', [first.tx_hash]);
      await chain.mine(1);
      await waitFor(broadcast('sweep', 2), 60_000, () => gw.logs().slice(-3000));
    } finally {
      await chain.rpc('evm_setAutomine', [true]);
    }
    const settled = await waitForStatus(gw, chain, merchant.api_key, p.id, 'settled');
    const all = await rows();
    const sweeps = all.filter((t) => t.role === 'sweep');
    expect(sweeps.map((t) => t.attempt)).to.deep.equal([0, 1]);
    expect(sweeps[0].nonce).to.equal(sweeps[1].nonce);
    expect(settled.settlement.tx_hash).to.equal(sweeps[1].tx_hash);
    expect(settled.settlement).to.include({ amount: '4', fee: '0' });
    expect((await chain.usdcBalance(to)) - before).to.equal(4_000_000n);
    expect(await sentTransactions(chain, p.address)).to.equal(1);
    expect((await ledgerSums(gw, merchant.id)).USDC).to.equal(0n);
  });
});
