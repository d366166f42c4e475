import { expect } from 'chai';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';

/**
 * What the merchant is told about how much arrived, and when: several transfers, under-, over- and late
 * payments, tolerance, the resolve action, and the wrong asset — each on a real dev chain.
 */
describe('chain correctness: amounts, expiry and resolution', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  let merchant: { id: string; api_key: string };
  const ETH = (decimal: string) => BigInt(Math.round(Number(decimal) * 1e6)) * 10n ** 12n; // test amounts have ≤ 6 decimals

  before(async () => {
    gw = await startGateway({ confirmations: 2 });
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    merchant = await createTestMerchant(gw);
  });
  after(async () => gw?.stop());

  const create = async (body: Record<string, unknown>, key = merchant.api_key) => {
    const res = await call(gw, 'POST', '/api/v1/payments', { auth: key, body });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body;
  };
  const get = async (id: string, key = merchant.api_key) => (await call(gw, 'GET', `/api/v1/payments/${id}`, { auth: key })).body;
  const waitUntil = (id: string, pred: (p: any) => boolean, key = merchant.api_key) =>
    waitFor(async () => {
      const p = await get(id, key);
      return pred(p) && p;
    }, 20_000, () => gw.logs());
  const eventTypes = async (paymentId: string) => (await gw.db('events').where({ payment_id: paymentId }).orderBy('seq')).map((e) => e.type);

  it('adds up several transfers to one address', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH' });
    await chain.sendEth(1, p.address, ETH('0.006'));
    const partial = await waitUntil(p.id, (x) => x.amount_received === '0.006');
    expect(partial).to.include({ status: 'confirming', amount_due: '0.004' });
    await chain.sendEth(2, p.address, ETH('0.004'));
    await chain.mine(1);
    const done = await waitUntil(p.id, (x) => x.status === 'confirmed');
    expect(done).to.include({ amount_received: '0.01', amount_due: '0', exception: null });
    expect(done.transfers).to.have.length(2);
    expect(await eventTypes(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.confirmed']);
  });

  it('underpaid: expires with exception underpaid and the amount still due', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH', expires_in: 600 });
    await chain.sendEth(1, p.address, ETH('0.004'));
    await waitUntil(p.id, (x) => x.status === 'confirming');
    await chain.passTime(p.expires_at);
    const expired = await waitUntil(p.id, (x) => x.status === 'expired');
    expect(expired).to.include({ exception: 'underpaid', amount_received: '0.004', amount_due: '0.006' });
    expect(await eventTypes(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.expired', 'payment.underpaid']);
  });

  it('a shortfall within the tolerance (merchant percent, or per payment) confirms', async () => {
    const tolerant = await call(gw, 'POST', '/admin/v1/merchants', { auth: gw.adminToken, body: { name: 'Tolerant', underpaid_tolerance_percent: '1' } });
    expect(tolerant.status).to.equal(201);
    const p1 = await create({ amount: '1', currency: 'USDC' }, tolerant.body.api_key);
    expect(p1.underpaid_tolerance).to.equal('0.01');
    await chain.sendUsdc(1, p1.address, 990_000n); // 0.99 USDC: 1 % short
    await chain.mine(1);
    const ok = await waitUntil(p1.id, (x) => x.status === 'confirmed', tolerant.body.api_key);
    expect(ok).to.include({ amount_received: '0.99', exception: null });

    const p2 = await create({ amount: '1', currency: 'USDC', underpaid_tolerance_amount: '0.05' });
    expect(p2.underpaid_tolerance).to.equal('0.05');
    await chain.sendUsdc(1, p2.address, 940_000n); // 0.06 short: outside the tolerance
    await chain.mine(1);
    await waitUntil(p2.id, (x) => x.status === 'confirming' && x.amount_received === '0.94');
    await new Promise((r) => setTimeout(r, 600));
    expect((await get(p2.id)).status).to.equal('confirming');
  });

  it('overpaid: confirmed with exception overpaid and the excess visible', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH' });
    await chain.sendEth(1, p.address, ETH('0.015'));
    await chain.mine(1);
    const done = await waitUntil(p.id, (x) => x.status === 'confirmed');
    expect(done).to.include({ exception: 'overpaid', amount_received: '0.015', amount: '0.01' });
    expect(await eventTypes(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.confirmed', 'payment.overpaid']);
  });

  it('late: funds after expiry make it paid_late; the merchant accepts it once final', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH', expires_in: 60 });
    await chain.passTime(p.expires_at);
    await waitUntil(p.id, (x) => x.status === 'expired');
    await chain.sendEth(1, p.address, ETH('0.01'));
    const late = await waitUntil(p.id, (x) => x.exception === 'paid_late');
    expect(late).to.include({ status: 'expired', amount_received: '0.01' });
    expect(await eventTypes(p.id)).to.deep.equal(['payment.created', 'payment.expired', 'payment.late']);

    const tooEarly = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, { auth: merchant.api_key, body: { action: 'accept' } });
    expect(tooEarly.status).to.equal(409);
    expect(tooEarly.body.error.code).to.equal('transfers_not_final');
    await chain.mine(1);
    const accepted = await waitFor(async () => {
      const r = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, { auth: merchant.api_key, body: { action: 'accept' } });
      return r.status === 200 && r.body;
    }, 10_000);
    expect(accepted).to.include({ status: 'confirmed', resolution: 'accept', exception: 'paid_late' });
    expect((await eventTypes(p.id)).at(-1)).to.equal('payment.confirmed');
    const again = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, { auth: merchant.api_key, body: { action: 'refund' } });
    expect(again.status).to.equal(409);
  });

  it('late: the merchant can ask for a refund instead, recorded for settlement', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH', expires_in: 60 });
    await chain.passTime(p.expires_at);
    await waitUntil(p.id, (x) => x.status === 'expired');
    await chain.sendEth(3, p.address, ETH('0.01'));
    await waitUntil(p.id, (x) => x.exception === 'paid_late');
    const bad = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, { auth: merchant.api_key, body: { action: 'refund', refund_address: 'nope' } });
    expect(bad.status).to.equal(400);
    expect(bad.body.error.param).to.equal('refund_address');
    const refund = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, {
      auth: merchant.api_key,
      body: { action: 'refund', refund_address: chain.accounts[3].address },
    });
    expect(refund.status).to.equal(200);
    expect(refund.body).to.include({ status: 'expired', resolution: 'refund' });
    const row = await gw.db('payments').where({ id: p.id }).first();
    expect(row.refund_address).to.equal(chain.accounts[3].address);
  });

  it('a pending payment cannot be resolved', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH' });
    const r = await call(gw, 'POST', `/api/v1/payments/${p.id}/resolve`, { auth: merchant.api_key, body: { action: 'accept' } });
    expect(r.status).to.equal(409);
    expect(r.body.error.code).to.equal('payment_not_resolvable');
  });

  it('the wrong asset is recorded and reported, never counted', async () => {
    const p = await create({ amount: '0.01', currency: 'ETH' });
    await chain.sendUsdc(1, p.address, 5_000_000n);
    await waitFor(async () => (await eventTypes(p.id)).includes('payment.unexpected_asset'), 20_000, () => gw.logs());
    const after = await get(p.id);
    expect(after).to.include({ status: 'pending', amount_received: '0' });
    expect(after.transfers).to.have.length(1);
    expect(after.transfers[0]).to.include({ counted: false, asset: gw.stack.usdcAddress });
    const event = await gw.db('events').where({ payment_id: p.id, type: 'payment.unexpected_asset' }).first();
    expect(event.data.unexpected_transfer).to.include({ asset: gw.stack.usdcAddress, amount: '5000000' });
  });
});
