import { expect } from 'chai';
import { Wallet } from 'ethers';
import { call, createTestMerchant, startGateway, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { createPayment, ledgerSums, payAndSettle, sentTransactions } from '../support/settlement.js';

/**
 * Settlement on a real dev chain with real API and worker processes: confirmed payments are swept to the
 * merchant's settlement address (ETH: amount − fee, leaving the deposit at 0 wei; USDC: the full amount, gas from
 * the gas tank), the ledger records every movement and balances to zero per asset once everything is settled.
 */
describe('settlement: ETH and USDC sweeps to the settlement address, with a ledger', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  let merchant: { id: string; api_key: string };
  const settlementAddress = Wallet.createRandom().address;

  before(async () => {
    gw = await startGateway({ confirmations: 2 });
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    merchant = await createTestMerchant(gw, 'Settling Shop', { settlement_address: settlementAddress });
  });
  after(async () => {
    await gw?.stop();
  });

  it('ETH: settled with the settlement address up by exactly amount − fee, and the deposit emptied to 0 wei', async () => {
    const p = await createPayment(gw, merchant.api_key, { amount: '0.05', currency: 'ETH' });
    const before = await chain.provider.getBalance(settlementAddress);
    const settled = await payAndSettle(gw, chain, merchant.api_key, p, 50_000_000_000_000_000n);

    expect(settled.settlement).to.include({ to: settlementAddress });
    expect(settled.settlement.tx_hash).to.match(/^0x[0-9a-f]{64}$/);
    const receipt = await chain.provider.getTransactionReceipt(settled.settlement.tx_hash);
    const feeWei = receipt!.gasUsed * receipt!.gasPrice;
    const amountWei = 50_000_000_000_000_000n - feeWei;
    expect(settled.settlement.fee).to.equal(formatWei(feeWei));
    expect(settled.settlement.amount).to.equal(formatWei(amountWei));
    expect(settled.settlement.settled_at).to.be.a('string');
    expect((await chain.provider.getBalance(settlementAddress)) - before).to.equal(amountWei);
    expect(await chain.provider.getBalance(p.address)).to.equal(0n);
    expect(await sentTransactions(chain, p.address)).to.equal(1);

    const events = await gw.db('events').where({ payment_id: p.id }).orderBy('seq').pluck('type');
    expect(events).to.include.members(['payment.confirmed', 'payment.settled']);
    expect(events.indexOf('payment.settled')).to.be.greaterThan(events.indexOf('payment.confirmed'));
  });

  it('USDC: settled with the full amount; the gas tank paid the gas', async () => {
    const p = await createPayment(gw, merchant.api_key, { amount: '25.5', currency: 'USDC' });
    const settled = await payAndSettle(gw, chain, merchant.api_key, p, 25_500_000n);
    expect(settled.settlement).to.include({ amount: '25.5', fee: '0', to: settlementAddress });
    expect(await chain.usdcBalance(settlementAddress)).to.equal(25_500_000n);
    expect(await chain.usdcBalance(p.address)).to.equal(0n);
    expect(await sentTransactions(chain, p.address)).to.equal(1);
    const funding = await gw.db('sweep_transactions as t').join('sweeps as s', 's.id', 't.sweep_id').where({ 's.payment_id': p.id, 't.role': 'gas_funding' });
    expect(funding).to.have.length(1);
    // The tank's ETH top-up reached the deposit as a transfer of another asset, but it is ours: no merchant event.
    const events = await gw.db('events').where({ payment_id: p.id }).pluck('type');
    expect(events).to.not.include('payment.unexpected_asset');
    expect(events).to.include('payment.settled');
  });

  it('an overpaid payment is settled in full', async () => {
    const p = await createPayment(gw, merchant.api_key, { amount: '0.01', currency: 'ETH' });
    const settled = await payAndSettle(gw, chain, merchant.api_key, p, 12_000_000_000_000_000n);
    expect(settled.exception).to.equal('overpaid');
    const total = parseWei(settled.settlement.amount) + parseWei(settled.settlement.fee);
    expect(total).to.equal(12_000_000_000_000_000n);
    expect(await chain.provider.getBalance(p.address)).to.equal(0n);
  });

  it('the ledger balances: per asset the entries sum to zero, and GET /balance and /ledger agree with the chain', async () => {
    const sums = await ledgerSums(gw, merchant.id);
    expect(sums).to.deep.equal({ ETH: 0n, USDC: 0n });

    const balance = await call(gw, 'GET', '/api/v1/balance', { auth: merchant.api_key });
    expect(balance.status).to.equal(200);
    const eth = balance.body.data.find((b: { currency: string }) => b.currency === 'ETH');
    const usdc = balance.body.data.find((b: { currency: string }) => b.currency === 'USDC');
    expect(usdc).to.include({ pending: '0', received: '25.5', settled: '25.5', network_fees: '0', refunded: '0' });
    expect(eth).to.include({ pending: '0', received: '0.062' });
    // What was settled in ETH is exactly what the settlement address received.
    expect(parseWei(eth.settled) + parseWei(eth.network_fees)).to.equal(62_000_000_000_000_000n);
    expect(parseWei(eth.settled)).to.equal(await chain.provider.getBalance(settlementAddress));

    // Cursor pagination over the ledger: pages of 2 cover every row once, newest first.
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await call(gw, 'GET', `/api/v1/ledger?limit=2${cursor ? `&starting_after=${cursor}` : ''}`, { auth: merchant.api_key });
      expect(page.status).to.equal(200);
      seen.push(...page.body.data.map((e: { id: string }) => e.id));
      if (!page.body.has_more) break;
      cursor = page.body.data[page.body.data.length - 1].id;
    }
    const total = await gw.db('ledger_entries').where({ merchant_id: merchant.id }).count<{ count: string }[]>('* as count');
    expect(seen).to.have.length(Number(total[0].count));
    expect(new Set(seen).size).to.equal(seen.length);
    const types = (await call(gw, 'GET', '/api/v1/ledger?limit=100&currency=ETH', { auth: merchant.api_key })).body.data.map((e: { type: string }) => e.type);
    expect(types.filter((t: string) => t === 'deposit_received')).to.have.length(2);
    expect(types.filter((t: string) => t === 'network_fee')).to.have.length(2);
    expect(types.filter((t: string) => t === 'settlement_out')).to.have.length(2);
  });

  it('the ledger is append-only: Postgres refuses UPDATE and DELETE', async () => {
    let error: Error | undefined;
    try {
      await gw.db('ledger_entries').where({ merchant_id: merchant.id }).update({ amount: '1' });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/append-only/);
    error = undefined;
    try {
      await gw.db('ledger_entries').where({ merchant_id: merchant.id }).delete();
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/append-only/);
  });
});

function formatWei(wei: bigint): string {
  const whole = wei / 10n ** 18n;
  const frac = (wei % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

function parseWei(s: string): bigint {
  const [w, f = ''] = s.split('.');
  return BigInt(w) * 10n ** 18n + BigInt(f.padEnd(18, '0'));
}
