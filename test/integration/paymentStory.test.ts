import { expect } from 'chai';
import { Webhook } from 'standardwebhooks';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';

/**
 * The spine of the product, end to end on real parts: a merchant creates a payment, a customer pays it on a real
 * dev chain, the worker confirms it, and a signed webhook arrives that standardwebhooks verifies.
 */
describe('payment story (API + worker processes, Postgres, Redis, dev chain)', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  let merchant: { id: string; api_key: string };
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let secret: string;

  before(async () => {
    gw = await startGateway({ confirmations: 2 });
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    merchant = await createTestMerchant(gw);
    receiver = await startWebhookReceiver();
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } });
    expect(ep.status).to.equal(201);
    expect(ep.body.secret).to.match(/^whsec_/);
    secret = ep.body.secret;
  });
  after(async () => {
    await receiver?.close();
    await gw?.stop();
  });

  const getPayment = async (id: string) => (await call(gw, 'GET', `/api/v1/payments/${id}`, { auth: merchant.api_key })).body;
  const waitForStatus = (id: string, status: string, timeout = 20_000) =>
    waitFor(async () => {
      const p = await getPayment(id);
      return p.status === status && p;
    }, timeout, () => gw.logs());
  const eventTypesInOrder = async (paymentId: string) =>
    (await gw.db('events').where({ payment_id: paymentId }).orderBy('seq')).map((e) => e.type);
  const verifiedEventsFor = (paymentId: string) =>
    receiver.received
      .map((r) => new Webhook(secret).verify(r.body, r.headers as Record<string, string>) as { id: string; type: string; data: { id: string } })
      .filter((e) => e.data.id === paymentId);

  it('lists the configured chain with its assets', async () => {
    const res = await call(gw, 'GET', '/api/v1/chains', { auth: merchant.api_key });
    expect(res.status).to.equal(200);
    const [c] = res.body.data;
    expect(c).to.include({ chain_id: 31337, confirmations: 2 });
    expect(c.assets).to.deep.include({ currency: 'ETH', type: 'native', contract_address: null, decimals: 18 });
    expect(c.assets).to.deep.include({ currency: 'USDC', type: 'erc20', contract_address: gw.stack.usdcAddress, decimals: 6 });
  });

  it('ETH: pending → confirming → confirmed, with signed webhooks for each step', async () => {
    const created = await call(gw, 'POST', '/api/v1/payments', {
      auth: merchant.api_key,
      body: { amount: '0.05', currency: 'ETH', order_id: 'order-1', metadata: { cart: 'abc' } },
    });
    expect(created.status).to.equal(201);
    const p = created.body;
    expect(p).to.include({ object: 'payment', status: 'pending', amount: '0.05', currency: 'ETH', chain_id: 31337, amount_received: '0', confirmations_required: 2, order_id: 'order-1' });
    expect(p.id).to.match(/^pay_[A-Za-z0-9]{24}$/);
    expect(p.address).to.match(/^0x[0-9a-fA-F]{40}$/);
    expect(p.payment_uri).to.equal(`ethereum:${p.address}@31337?value=50000000000000000`);
    expect(new Date(p.expires_at).getTime() - new Date(p.created_at).getTime()).to.be.closeTo(900_000, 2000);

    const txHash = await chain.sendEth(1, p.address, 50_000_000_000_000_000n); // automine: one block, 1 confirmation
    const confirming = await waitForStatus(p.id, 'confirming');
    expect(confirming.amount_received).to.equal('0.05');
    expect(confirming.transfers).to.have.length(1);
    expect(confirming.transfers[0]).to.include({ tx_hash: txHash, amount: '0.05', confirmations: 1 });

    await chain.mine(1);
    const confirmed = await waitForStatus(p.id, 'confirmed');
    expect(confirmed.transfers[0].confirmations).to.be.at.least(2);
    expect(confirmed.confirmed_at).to.be.a('string');

    const events = await waitFor(async () => {
      const evs = verifiedEventsFor(p.id);
      return evs.length >= 3 && evs;
    }, 15_000, () => gw.logs());
    // Deliveries run in parallel, so a receiver may see them out of order (as with Stripe); the order they
    // happened in is the events' order in Postgres.
    expect(events.map((e) => e.type).sort()).to.deep.equal(['payment.confirmed', 'payment.confirming', 'payment.created']);
    expect(await eventTypesInOrder(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.confirmed']);
    const confirmedEvent = events.find((e) => e.type === 'payment.confirmed')!;
    expect(confirmedEvent.id).to.match(/^evt_/);
    expect(confirmedEvent.data).to.include({ id: p.id, status: 'confirmed', amount_received: '0.05' });
    const raw = receiver.received.find((r) => r.body.includes(confirmedEvent.id))!;
    expect(raw.headers['webhook-id']).to.equal(confirmedEvent.id);
  });

  it('USDC: an ERC-20 Transfer confirms a token payment', async () => {
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '25.5', currency: 'USDC' } });
    expect(created.status).to.equal(201);
    const p = created.body;
    expect(p.payment_uri).to.equal(`ethereum:${gw.stack.usdcAddress}@31337/transfer?address=${p.address}&uint256=25500000`);
    await chain.sendUsdc(2, p.address, 25_500_000n);
    await chain.mine(1);
    const confirmed = await waitForStatus(p.id, 'confirmed');
    expect(confirmed.amount_received).to.equal('25.5');
    expect(confirmed.transfers[0].log_index).to.be.a('number');
    const events = await waitFor(async () => {
      const evs = verifiedEventsFor(p.id);
      return evs.some((e) => e.type === 'payment.confirmed') && evs;
    }, 15_000);
    expect(events.map((e) => e.type).sort()).to.deep.equal(['payment.confirmed', 'payment.confirming', 'payment.created']);
    expect(await eventTypesInOrder(p.id)).to.deep.equal(['payment.created', 'payment.confirming', 'payment.confirmed']);
  });

  it('expires a payment once the chain passes expires_at with nothing received', async () => {
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '1', currency: 'ETH', expires_in: 60 } });
    expect(created.status).to.equal(201);
    await chain.mine(1);
    await new Promise((r) => setTimeout(r, 800));
    expect((await getPayment(created.body.id)).status).to.equal('pending');
    await chain.increaseTime(120); // the chain's clock passes expiry; PayFlow trusts the chain, not its own clock
    const expired = await waitForStatus(created.body.id, 'expired');
    expect(expired.exception).to.equal(null);
    await waitFor(async () => verifiedEventsFor(created.body.id).some((e) => e.type === 'payment.expired'), 15_000);
  });

  it('gives every payment its own deposit address', async () => {
    const ids = await Promise.all(
      Array.from({ length: 10 }, () => call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.01', currency: 'ETH' } })),
    );
    const addresses = new Set(ids.map((r) => r.body.address));
    expect(addresses.size).to.equal(10);
    const rows = await gw.db('payments').select('address_index');
    expect(new Set(rows.map((r) => r.address_index)).size).to.equal(rows.length);
  });

  it('lists payments with status filter and cursor pagination', async () => {
    const page1 = await call(gw, 'GET', '/api/v1/payments?limit=2', { auth: merchant.api_key });
    expect(page1.status).to.equal(200);
    expect(page1.body.data).to.have.length(2);
    expect(page1.body.has_more).to.equal(true);
    const page2 = await call(gw, 'GET', `/api/v1/payments?limit=2&starting_after=${page1.body.data[1].id}`, { auth: merchant.api_key });
    expect(page2.body.data[0].id).not.to.equal(page1.body.data[1].id);
    const confirmed = await call(gw, 'GET', '/api/v1/payments?status=confirmed&limit=100', { auth: merchant.api_key });
    expect(confirmed.body.data.length).to.equal(2);
    expect(confirmed.body.data.every((p: { status: string }) => p.status === 'confirmed')).to.equal(true);
  });
});
