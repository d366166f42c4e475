import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { freePort } from '../../scripts/devstack/ports.js';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';

/**
 * The per-endpoint cap under load: the lease (webhook_lease_delivery) and the outcome (webhook_record_success) each
 * take the endpoint's slots lock inside one Postgres call. Two worker processes with 6 job slots each race for one
 * endpoint capped at 2 attempts in flight; the receiver holds every request a moment and records how many it had
 * open at once. Every delivery must arrive, be logged once and end succeeded, and the receiver must never see more
 * than 2 at a time.
 */
describe('webhooks: the per-endpoint cap holds under concurrent workers (API + worker processes)', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let server: Server;
  let url: string;
  let open = 0;
  let maxOpen = 0;
  const received: string[] = [];

  before(async () => {
    gw = await startGateway({
      workers: 2,
      // A deferred delivery's fallback timer is at least WEBHOOK_TIMEOUT_MS away: at 60 s, every delivery arriving within
      // the waits below was woken by a finishing attempt, so a lost wake-up fails the test instead of merely slowing it.
      env: { WORKER_CONCURRENCY: '6', WEBHOOK_ENDPOINT_CONCURRENCY: '2', WEBHOOK_RETRY_SCHEDULE: '0.2,0.2,0.2', WEBHOOK_TIMEOUT_MS: '60000' },
    });
    server = createServer((req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['webhook-id']));
        setTimeout(() => {
          open--;
          res.writeHead(200).end('ok');
        }, 30);
      });
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    url = `http://127.0.0.1:${port}/hooks`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await gw?.stop();
  });

  it('never has more than WEBHOOK_ENDPOINT_CONCURRENCY attempts open at the receiver; every delivery succeeds, logged once', async () => {
    const m = await createTestMerchant(gw);
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url } });
    expect(ep.status).to.equal(201);
    const deliveries: string[] = [];
    const events: string[] = [];
    for (let i = 0; i < 30; i++) {
      const sent = await call(gw, 'POST', `/api/v1/webhook-endpoints/${ep.body.id}/test`, { auth: m.api_key });
      expect(sent.status).to.equal(202);
      deliveries.push(sent.body.delivery_id);
      events.push(sent.body.event_id);
    }

    await waitFor(async () => {
      const done = await gw.db('webhook_deliveries').whereIn('id', deliveries).where({ status: 'succeeded' }).count('* as n').first();
      return Number(done!.n) === deliveries.length;
    }, 45_000, () => gw.logs());

    expect(maxOpen).to.be.at.most(2);
    expect(maxOpen).to.equal(2); // the cap was reached, so it was what held them back
    expect([...received].sort()).to.deep.equal([...events].sort()); // each once
    const rows = await gw.db('webhook_deliveries').whereIn('id', deliveries);
    for (const d of rows) {
      expect(d).to.include({ status: 'succeeded', attempts: 1, last_status_code: 200, in_flight_until: null, deferred_at: null });
    }
    const attempts = await gw.db('webhook_attempts').whereIn('delivery_id', deliveries).orderBy('delivery_id');
    expect(attempts.map((a) => a.delivery_id)).to.deep.equal([...deliveries].sort());
    expect(attempts.every((a) => a.attempt === 1 && a.status_code === 200 && a.error === null && a.response_snippet === 'ok')).to.equal(true);
  });

  // Disabling takes the endpoint's row and then fails its pending deliveries; leases and outcomes lock a delivery
  // and then the endpoint's slots. Both must be able to run at once without a deadlock or a delivery left pending.
  // (A behaviour check under load: a deadlock needs an unlucky interleaving, so a run without one proves little.)
  it('disabling the endpoint while its deliveries are leased and finishing answers 200, and no delivery is left pending', async () => {
    const m = await createTestMerchant(gw);
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url } });
    expect(ep.status).to.equal(201);
    const sends = await Promise.all(Array.from({ length: 40 }, () => call(gw, 'POST', `/api/v1/webhook-endpoints/${ep.body.id}/test`, { auth: m.api_key })));
    expect(sends.map((s) => s.status)).to.deep.equal(sends.map(() => 202));
    const ours = new Set(sends.map((s) => s.body.event_id as string));
    await waitFor(async () => received.filter((id) => ours.has(id)).length >= 4, 30_000, () => gw.logs());
    const disabled = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${ep.body.id}`, { auth: m.api_key, body: { enabled: false } });
    expect(disabled.status).to.equal(200);
    expect(disabled.body.enabled).to.equal(false);
    const deliveries = sends.map((s) => s.body.delivery_id as string);
    // Every delivery ends: succeeded if its attempt was under way, else failed by the disabling.
    await waitFor(async () => {
      const left = await gw.db('webhook_deliveries').whereIn('id', deliveries).where({ status: 'pending' }).count('* as n').first();
      return Number(left!.n) === 0;
    }, 30_000, () => gw.logs());
    const statuses = await gw.db('webhook_deliveries').whereIn('id', deliveries).select('status');
    expect(statuses.some((d) => d.status === 'failed')).to.equal(true);
    expect(gw.logs()).to.not.match(/deadlock/i);
  });
});
