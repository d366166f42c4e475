import { expect } from 'chai';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';

const CONFIRMATIONS = 3;

/**
 * Real reorgs on the dev chain: evm_snapshot before the payment, pay, mine, evm_revert, then mine a longer chain
 * without the transaction (and, in a variant, re-broadcast the same signed transaction into a different block).
 * The scanner must notice that the block it holds is no longer canonical, orphan the transfer, and tell the merchant.
 */
describe('chain correctness: reorgs', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  let merchant: { id: string; api_key: string };

  before(async () => {
    gw = await startGateway({ confirmations: CONFIRMATIONS });
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    merchant = await createTestMerchant(gw);
  });
  after(async () => gw?.stop());

  const get = async (id: string) => (await call(gw, 'GET', `/api/v1/payments/${id}`, { auth: merchant.api_key })).body;
  const waitUntil = (id: string, pred: (p: any) => boolean) =>
    waitFor(async () => {
      const p = await get(id);
      return pred(p) && p;
    }, 20_000, () => gw.logs());
  const eventTypes = async (paymentId: string) => (await gw.db('events').where({ payment_id: paymentId }).orderBy('seq')).map((e) => e.type);
  const signedPayment = async (from: number, to: string, value: bigint) => {
    const wallet = chain.accounts[from];
    const nonce = await chain.provider.getTransactionCount(wallet.address, 'pending');
    const fee = await chain.provider.getFeeData();
    return wallet.signTransaction({
      to, value, nonce, chainId: 31337, gasLimit: 21_000n, type: 2,
      maxFeePerGas: fee.maxFeePerGas! * 2n, maxPriorityFeePerGas: fee.maxPriorityFeePerGas ?? 1n,
    });
  };
  const scannedThrough = async (block: number) =>
    waitFor(async () => {
      const c = await gw.db('chain_cursors').first();
      return c && Number(c.next_block) > block;
    }, 20_000, () => gw.logs());

  for (let depth = 1; depth <= CONFIRMATIONS - 1; depth++) {
    it(`depth ${depth}: the transfer vanishes, the payment goes back to pending and is never confirmed`, async () => {
      const p = (await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.02', currency: 'ETH' } })).body;
      const snapshot = await chain.rpc<string>('evm_snapshot');
      const forkPoint = await chain.head();
      await chain.rpc('eth_sendRawTransaction', [await signedPayment(1, p.address, 20_000_000_000_000_000n)]); // block forkPoint+1
      await chain.mine(depth - 1); // the transfer now has `depth` confirmations, one short of final at most
      // The scanner may report confirming after the first block, before it has scanned the next ones.
      const confirming = await waitUntil(p.id, (x) => x.status === 'confirming' && x.transfers[0]?.confirmations >= depth);
      expect(confirming.transfers[0].confirmations).to.equal(depth);

      expect(await chain.rpc('evm_revert', [snapshot])).to.equal(true);
      await chain.mine(depth + 1); // a longer chain without the transaction
      const back = await waitUntil(p.id, (x) => x.status === 'pending');
      expect(back).to.include({ amount_received: '0' });
      expect(back.transfers).to.deep.equal([]);
      await scannedThrough(forkPoint + depth + 1);
      expect(await eventTypes(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.reorged']);
      const rows = await gw.db('transfers').where({ payment_id: p.id });
      expect(rows).to.have.length(1);
      expect(rows[0].orphaned_at).to.be.instanceOf(Date);
      // The blocks the scanner holds are the canonical ones again.
      const held = await gw.db('chain_blocks').where('number', '>', forkPoint).orderBy('number');
      for (const b of held) expect(b.hash).to.equal((await chain.provider.getBlock(Number(b.number)))!.hash);
    });
  }

  it('the same transaction re-included in a different block counts once, and confirms there', async () => {
    const p = (await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.03', currency: 'ETH' } })).body;
    const raw = await signedPayment(2, p.address, 30_000_000_000_000_000n);
    const snapshot = await chain.rpc<string>('evm_snapshot');
    const txHash = await chain.rpc<string>('eth_sendRawTransaction', [raw]);
    const firstBlock = (await chain.provider.getTransactionReceipt(txHash))!.blockNumber;
    await chain.mine(1);
    await waitUntil(p.id, (x) => x.status === 'confirming');

    await chain.rpc('evm_revert', [snapshot]);
    await chain.mine(3); // longer chain without it
    await waitUntil(p.id, (x) => x.status === 'pending');
    expect(await chain.rpc<string>('eth_sendRawTransaction', [raw])).to.equal(txHash); // the very same signed transaction
    const secondBlock = (await chain.provider.getTransactionReceipt(txHash))!.blockNumber;
    expect(secondBlock).to.not.equal(firstBlock);
    await chain.mine(CONFIRMATIONS - 1);
    const confirmed = await waitUntil(p.id, (x) => x.status === 'confirmed');
    expect(confirmed.amount_received).to.equal('0.03');
    expect(confirmed.transfers).to.have.length(1);
    expect(confirmed.transfers[0]).to.include({ tx_hash: txHash, block_number: secondBlock });
    const rows = await gw.db('transfers').where({ payment_id: p.id }).orderBy('id');
    expect(rows.map((r) => [r.tx_hash, Number(r.block_number), r.orphaned_at === null])).to.deep.equal([
      [txHash, firstBlock, false],
      [txHash, secondBlock, true],
    ]);
    expect(await eventTypes(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.reorged', 'payment.confirming', 'payment.confirmed']);
  });

  it('a reorg onto a shorter chain is noticed before any new block arrives above the old tip', async () => {
    const p = (await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.01', currency: 'ETH' } })).body;
    const snapshot = await chain.rpc<string>('evm_snapshot');
    await chain.rpc('eth_sendRawTransaction', [await signedPayment(3, p.address, 10_000_000_000_000_000n)]);
    await chain.mine(1);
    await waitUntil(p.id, (x) => x.status === 'confirming');
    await chain.rpc('evm_revert', [snapshot]);
    await chain.mine(1); // the new chain is one block shorter than the one the scanner holds
    const back = await waitUntil(p.id, (x) => x.status === 'pending');
    expect(back.amount_received).to.equal('0');
  });
});
