import { expect } from 'chai';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookTarget } from '../support/webhookTarget.js';

/**
 * One hanging endpoint must not delay the others. Two worker processes have 3 job slots each
 * (WORKER_CONCURRENCY=3) and the per-endpoint cap is 1 (WEBHOOK_ENDPOINT_CONCURRENCY=1, counted across
 * processes); the hanging endpoint's attempts would time out only after 60 s. Without the cap its 6 deliveries
 * fill all 6 slots and the healthy endpoint gets nothing until they time out; with it, the healthy endpoint gets
 * every event while the other still hangs.
 */
describe('webhooks: a hanging endpoint never delays the others (API + worker processes)', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let hanging: Awaited<ReturnType<typeof startWebhookTarget>>;
  let healthy: Awaited<ReturnType<typeof startWebhookTarget>>;

  before(async () => {
    gw = await startGateway({
      workers: 2,
      env: { WORKER_CONCURRENCY: '3', WEBHOOK_ENDPOINT_CONCURRENCY: '1', WEBHOOK_TIMEOUT_MS: '60000', WEBHOOK_RETRY_SCHEDULE: '0.2,0.2,0.2' },
    });
    hanging = await startWebhookTarget(() => 'hang');
    healthy = await startWebhookTarget();
  });
  after(async () => {
    await hanging?.close();
    await healthy?.close();
    await gw?.stop();
  });

  it('the answering endpoint gets all its events while the other hangs; the hung ones follow once it answers', async () => {
    const m = await createTestMerchant(gw);
    const epHanging = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url: hanging.url } });
    await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url: healthy.url } });
    const payments: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: `0.0${i + 1}`, currency: 'ETH' } });
      expect(res.status).to.equal(201);
      payments.push(res.body.id);
    }

    const createdFor = (t: typeof healthy) => new Set(t.requests.filter((r) => r.event.type === 'payment.created').map((r) => r.event.data.id));
    await waitFor(async () => createdFor(healthy).size === 6 && hanging.requests.length > 0, 30_000, () => gw.logs());

    // Meanwhile the hanging endpoint holds exactly one attempt, no attempt of it has finished, and its other
    // deliveries wait for its slot without holding a worker.
    const hangingDeliveries = await waitFor(async () => {
      const rows = await gw.db('webhook_deliveries').where({ endpoint_id: epHanging.body.id });
      return rows.filter((d) => d.deferred_at !== null).length === 5 && rows;
    }, 10_000, () => gw.logs());
    expect(hanging.requests).to.have.length(1);
    expect(hangingDeliveries).to.have.length(6);
    expect(hangingDeliveries.filter((d) => d.in_flight_until !== null)).to.have.length(1);
    expect(await gw.db('webhook_attempts').whereIn('delivery_id', hangingDeliveries.map((d) => d.id)).count('* as n').first()).to.deep.equal({ n: 0 });

    // Once it answers, each finished attempt hands its slot to the next waiting delivery.
    hanging.release(200);
    await waitFor(async () => {
      const rows = await gw.db('webhook_deliveries').where({ endpoint_id: epHanging.body.id, status: 'succeeded' });
      return rows.length === 6;
    }, 40_000, () => gw.logs());
    expect(createdFor(hanging)).to.deep.equal(new Set(payments));
  });
});
