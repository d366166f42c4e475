import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { HDNodeWallet, Mnemonic, Wallet, parseEther } from 'ethers';
import { rpcCall, devAccounts } from '../../scripts/devstack/chain.js';
import { xpubAddressAt } from '../../shared/settlement/depositAddress.js';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { createPayment, ledgerSums, sentTransactions, waitForStatus } from '../support/settlement.js';

/**
 * Where the money goes, and when it waits: merchant settings (PATCH /api/v1/merchant, admin PATCH), a merchant
 * without a settlement address, an empty gas tank, non-custodial merchants (xpub, no keys, no sweep) and refunds.
 * This gateway starts with an EMPTY gas tank.
 */
describe('settlement: merchant settings, waiting, non-custodial mode and refunds', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  const emptyTank = Wallet.createRandom();

  before(async () => {
    gw = await startGateway({ confirmations: 2, env: { GAS_TANK_PRIVATE_KEY: emptyTank.privateKey } });
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
  });
  after(async () => {
    await gw?.stop();
  });

  it('PATCH /api/v1/merchant validates and changes the settlement address and custody', async () => {
    const m = await createTestMerchant(gw, 'Settings Shop');
    const bad = await call(gw, 'PATCH', '/api/v1/merchant', { auth: m.api_key, body: { settlement_address: '0x1234' } });
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.include({ type: 'invalid_request_error', param: 'settlement_address' });
    const unknown = await call(gw, 'PATCH', '/api/v1/merchant', { auth: m.api_key, body: { settlement: 'x' } });
    expect(unknown.status).to.equal(400);
    const xprv = HDNodeFromSeed().extendedKey;
    const priv = await call(gw, 'PATCH', '/api/v1/merchant', { auth: m.api_key, body: { xpub: xprv } });
    expect(priv.status).to.equal(400);
    expect(priv.body.error).to.include({ code: 'xpub_invalid', param: 'xpub' });
    expect(JSON.stringify(priv.body)).to.not.include(xprv);

    const to = Wallet.createRandom().address;
    const ok = await call(gw, 'PATCH', '/api/v1/merchant', { auth: m.api_key, body: { settlement_address: to.toLowerCase() } });
    expect(ok.status).to.equal(200);
    expect(ok.body).to.include({ object: 'merchant', settlement_address: to, custody: 'custodial', xpub: null });
    expect((await call(gw, 'GET', '/api/v1/merchant', { auth: m.api_key })).body.settlement_address).to.equal(to);
    const noAdmin = await call(gw, 'PATCH', `/admin/v1/merchants/${m.id}`, { auth: m.api_key, body: { settlement_address: null } });
    expect(noAdmin.status).to.equal(401);
    const admin = await call(gw, 'PATCH', `/admin/v1/merchants/${m.id}`, { auth: gw.adminToken, body: { settlement_address: null } });
    expect(admin.status).to.equal(200);
    expect(admin.body.settlement_address).to.equal(null);
    expect((await call(gw, 'PATCH', '/admin/v1/merchants/mer_doesnotexist000000000', { auth: gw.adminToken, body: {} })).status).to.equal(404);
  });

  it('waits without a settlement address, and settles once the merchant sets one', async () => {
    const m = await createTestMerchant(gw, 'Late Settings Shop');
    const p = await createPayment(gw, m.api_key, { amount: '0.02', currency: 'ETH' });
    await chain.sendEth(1, p.address, 20_000_000_000_000_000n);
    await waitForStatus(gw, chain, m.api_key, p.id, 'confirmed');
    // Several reconciler passes (every 300 ms) find nothing to do for it: no sweep, nothing sent.
    await chain.mine(3);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await gw.db('sweeps').where({ payment_id: p.id }).first()).to.equal(undefined);
    expect((await call(gw, 'GET', `/api/v1/payments/${p.id}`, { auth: m.api_key })).body.status).to.equal('confirmed');

    const to = Wallet.createRandom().address;
    await call(gw, 'PATCH', '/api/v1/merchant', { auth: m.api_key, body: { settlement_address: to } });
    const settled = await waitForStatus(gw, chain, m.api_key, p.id, 'settled');
    expect(settled.settlement.to).to.equal(to);
    expect(await chain.provider.getBalance(to)).to.equal(parseEther(settled.settlement.amount));
  });

  it('a token settlement waits while the gas tank is empty, and goes through once it is refilled', async () => {
    const to = Wallet.createRandom().address;
    const m = await createTestMerchant(gw, 'Token Shop', { settlement_address: to });
    const p = await createPayment(gw, m.api_key, { amount: '7', currency: 'USDC' });
    await chain.sendUsdc(1, p.address, 7_000_000n);
    await waitForStatus(gw, chain, m.api_key, p.id, 'confirmed');
    const waiting = await waitFor(async () => {
      const sweep = await gw.db('sweeps').where({ payment_id: p.id }).first();
      return sweep?.last_error?.includes('gas tank') && sweep;
    }, 30_000, () => gw.logs().slice(-3000));
    expect(waiting.status).to.equal('pending');
    expect(await gw.db('sweep_transactions').where({ sweep_id: waiting.id })).to.have.length(0);
    expect(gw.logs()).to.match(/gas tank balance is low/);

    await rpcCall(gw.stack.rpcUrl, 'eth_sendTransaction', [{ from: devAccounts(1)[0].address, to: emptyTank.address, value: '0xde0b6b3a7640000' }]);
    const settled = await waitForStatus(gw, chain, m.api_key, p.id, 'settled');
    expect(settled.settlement).to.include({ amount: '7', fee: '0', to });
    expect(await chain.usdcBalance(to)).to.equal(7_000_000n);
  });

  it('non-custodial: addresses come from the merchant xpub; confirmed payments are settled without any sweep', async () => {
    const m = await createTestMerchant(gw, 'Own Keys Shop');
    const merchantWallet = HDNodeFromSeed();
    const xpub = merchantWallet.neuter().extendedKey;
    const set = await call(gw, 'PATCH', `/admin/v1/merchants/${m.id}`, { auth: gw.adminToken, body: { xpub } });
    expect(set.status).to.equal(200);
    expect(set.body).to.include({ custody: 'non_custodial', xpub });

    const p1 = await createPayment(gw, m.api_key, { amount: '0.03', currency: 'ETH' });
    const p2 = await createPayment(gw, m.api_key, { amount: '0.01', currency: 'ETH' });
    expect(p1.address).to.equal(xpubAddressAt(xpub, 0));
    expect(p2.address).to.equal(xpubAddressAt(xpub, 1));
    expect(p1.address).to.equal(merchantWallet.deriveChild(0).deriveChild(0).address);

    await chain.sendEth(2, p1.address, 30_000_000_000_000_000n);
    const settled = await waitForStatus(gw, chain, m.api_key, p1.id, 'settled');
    expect(settled.custody).to.equal('non_custodial');
    expect(settled.settlement).to.include({ tx_hash: null, amount: '0.03', fee: '0', to: p1.address });
    expect(await gw.db('sweeps').where({ payment_id: p1.id })).to.have.length(0);
    // The funds stay where the merchant's own key controls them.
    expect(await chain.provider.getBalance(p1.address)).to.equal(30_000_000_000_000_000n);
    expect(await sentTransactions(chain, p1.address)).to.equal(0);
    const types = (await gw.db('ledger_entries').where({ payment_id: p1.id }).orderBy('seq')).map((e) => [e.type, e.amount]);
    expect(types).to.deep.equal([['deposit_received', '30000000000000000'], ['settlement_out', '-30000000000000000']]);
    const events = await gw.db('events').where({ payment_id: p1.id }).pluck('type');
    expect(events).to.include('payment.settled');
  });

  it('refund: a late payment the merchant refunds goes back to the given address (or the first payer), payment.refunded', async () => {
    const m = await createTestMerchant(gw, 'Refunding Shop', { settlement_address: Wallet.createRandom().address });
    const refundTo = Wallet.createRandom().address;
    const cases = [
      { refund_address: refundTo, payer: 3 },
      { refund_address: undefined, payer: 4 },
    ];
    for (const c of cases) {
      const p = await createPayment(gw, m.api_key, { amount: '0.04', currency: 'ETH', expires_in: 60 });
      const created = (await call(gw, 'GET', `/api/v1/payments/${p.id}`, { auth: m.api_key })).body;
      await chain.passTime(created.expires_at);
      await waitForStatus(gw, chain, m.api_key, p.id, 'expired');
      const payer = chain.accounts[c.payer].address;
      await chain.sendEth(c.payer, p.address, 40_000_000_000_000_000n);
      await waitFor(async () => (await call(gw, 'GET', `/api/v1/payments/${p.id}`, { auth: m.api_key })).body.exception === 'paid_late' || undefined, 30_000, () => gw.logs().slice(-3000));
      const payerBefore = await chain.provider.getBalance(payer);
      const resolved = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, { auth: m.api_key, body: { action: 'refund', ...(c.refund_address ? { refund_address: c.refund_address } : {}) } });
      expect(resolved.status, JSON.stringify(resolved.body)).to.equal(200);
      const refunded = await waitForStatus(gw, chain, m.api_key, p.id, 'refunded');
      const expectedTo = c.refund_address ?? payer;
      expect(refunded.refund.to).to.equal(expectedTo);
      expect(refunded.settlement).to.equal(null);
      const refundWei = parseEther(refunded.refund.amount);
      expect(refundWei + parseEther(refunded.refund.fee)).to.equal(40_000_000_000_000_000n);
      if (c.refund_address) expect(await chain.provider.getBalance(refundTo)).to.equal(refundWei);
      else expect((await chain.provider.getBalance(payer)) - payerBefore).to.equal(refundWei);
      expect(await chain.provider.getBalance(p.address)).to.equal(0n);
      expect(await sentTransactions(chain, p.address)).to.equal(1);
      expect(await gw.db('events').where({ payment_id: p.id, type: 'payment.refunded' })).to.have.length(1);
    }
    expect(await ledgerSums(gw, m.id)).to.deep.equal({ ETH: 0n });
    const refunds = await gw.db('ledger_entries').where({ merchant_id: m.id, type: 'refund_out' });
    expect(refunds).to.have.length(2);
  });
});

/** A merchant's own wallet at account level (m/44'/60'/0'), as a hardware wallet exports it. */
function HDNodeFromSeed(): HDNodeWallet {
  return HDNodeWallet.fromPhrase(Mnemonic.fromEntropy(randomBytes(16)).phrase, undefined, "m/44'/60'/0'");
}
