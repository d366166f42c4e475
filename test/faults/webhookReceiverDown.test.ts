import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { freePort } from '../../scripts/devstack/ports.js';
import { chainClient } from '../support/chain.js';
import { call, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { countByEventId, createPayments, FAULT_ENV, openShop, PAYMENT_WEI } from './faultKit.js';

const SCHEDULE = [0.2, 0.4, 0.8];

describe('fault: the webhook receiver is down for the whole retry schedule', function () {
  this.timeout(300_000);
  let gw: Gateway | undefined;
  let server: Server | undefined;
  after(async () => {
    await gw?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  it('deliveries end failed after the last retry, and are redelivered once the receiver is back', async () => {
    // Nothing listens on the endpoint's port yet: every attempt is refused.
    const port = await freePort();
    gw = await startGateway({ workers: 1, confirmations: 1, env: { ...FAULT_ENV, WEBHOOK_RETRY_SCHEDULE: SCHEDULE.join(',') } });
    const g = gw;
    const shop = await openShop(g, `http://127.0.0.1:${port}/hooks`);
    const chain = chainClient(g.stack.rpcUrl, g.stack.usdcAddress);
    const payments = await createPayments(g, shop, 3);
    for (const p of payments.slice(0, 2)) await chain.sendEth(1, p.address, PAYMENT_WEI);
    // created ×3, confirming ×2, confirmed ×2
    await waitFor(async () => {
      const rows: { status: string; attempts: number }[] = await g.db('webhook_deliveries').select('status', 'attempts');
      return rows.length === 7 && rows.every((r) => r.status === 'failed');
    }, 120_000, () => g.logs().slice(-3000));
    const failed: { id: string; attempts: number; event_id: string }[] = await g.db('webhook_deliveries').select('id', 'attempts', 'event_id');
    for (const d of failed) expect(d.attempts, 'one attempt plus every retry of the schedule').to.equal(SCHEDULE.length + 1);

    // The receiver comes back.
    const received: { headers: Record<string, unknown> }[] = [];
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push({ headers: req.headers });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));

    for (const d of failed) {
      const res = await call(g, 'POST', `/api/v1/webhook-deliveries/${d.id}/redeliver`, { auth: shop.apiKey });
      expect(res.status, `redeliver ${d.id}: ${JSON.stringify(res.body)}`).to.equal(202);
    }
    await waitFor(async () => {
      const rows: { status: string }[] = await g.db('webhook_deliveries').select('status');
      return rows.every((r) => r.status === 'succeeded');
    }, 60_000, () => g.logs().slice(-3000));
    const counts = countByEventId(received);
    for (const d of failed) expect(counts.get(d.event_id), `event ${d.event_id}`).to.equal(1);
    expect(received.length).to.equal(failed.length);
  });
});
