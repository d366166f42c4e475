import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { freePort } from '../../scripts/devstack/ports.js';

/**
 * Dedicated dynos: a webhooks-only worker and a chain-only worker (WORKER_QUEUES), WORKER_CONCURRENCY, the Procfile,
 * and the request id of an API call following the work it causes into the worker's JSON log.
 */
describe('ops: Procfile dynos, WORKER_QUEUES / WORKER_CONCURRENCY, request ids in worker logs', function () {
  this.timeout(150_000);
  let gw: Gateway;
  let server: Server;
  let hooksUrl: string;
  const received: { type: string; data: { id: string; status: string } }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let failedOnce = false;

  before(async () => {
    server = createServer((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () =>
        setTimeout(() => {
          inFlight--;
          const event = JSON.parse(Buffer.concat(chunks).toString());
          // The first attempt for order "fail-first" fails, so its delivery is retried by a later job.
          if (event.data.order_id === 'fail-first' && !failedOnce) {
            failedOnce = true;
            return void res.writeHead(500).end();
          }
          received.push(event);
          res.writeHead(200).end();
        }, 200),
      );
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    hooksUrl = `http://127.0.0.1:${port}/hooks`;
    gw = await startGateway({ workers: 0, env: { LOG_LEVEL: 'debug' } });
  });
  after(async () => {
    await gw?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  it('the Procfile declares web, worker and release', () => {
    const procfile = readFileSync('Procfile', 'utf8');
    // The compiled build (npm run build); test/e2e/productionBuild.test.ts runs these very files.
    // With the heap flags README "Processes" documents and measured.
    expect(procfile).to.match(/^web: node --max-old-space-size=384 --max-semi-space-size=32 --no-allocation-site-pretenuring --no-memory-reducer dist\/api\/main\.js$/m);
    expect(procfile).to.match(/^worker: node --max-old-space-size=384 --max-semi-space-size=32 --no-allocation-site-pretenuring dist\/workers\/main\.js$/m);
    expect(procfile).to.match(/^release: node dist\/scripts\/migrate\.js$/m);
  });

  it('a webhooks-only worker delivers webhooks, one at a time with WORKER_CONCURRENCY=1, and never scans the chain', async () => {
    await gw.startWorker({ WORKER_QUEUES: 'webhooks', WORKER_CONCURRENCY: '1' });
    // Any worker records the chain's cursor at start; payments on a chain nobody has started on are refused.
    await waitFor(async () => (await gw.db('chain_cursors').where({ chain_id: 31337 }).first()) !== undefined, 30_000, () => gw.logs());
    const merchant = await createTestMerchant(gw);
    await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: hooksUrl } });
    const requestId = `ops-${randomBytes(6).toString('hex')}`;
    const payments: { id: string; address: string }[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await call(gw, 'POST', '/api/v1/payments', {
        auth: merchant.api_key,
        body: { amount: '0.01', currency: 'ETH', ...(i === 0 ? { order_id: 'fail-first' } : {}) },
        headers: i === 0 ? { 'x-request-id': requestId } : {},
      });
      expect(res.status).to.equal(201);
      payments.push(res.body);
    }
    expect((await call(gw, 'GET', `/api/v1/payments/${payments[0].id}`, { auth: merchant.api_key })).headers.get('x-request-id')).to.be.a('string');
    await waitFor(async () => received.filter((e) => e.type === 'payment.created').length === 4, 30_000, () => gw.logs().slice(-4000));
    expect(maxInFlight, 'WORKER_CONCURRENCY=1: one delivery at a time').to.equal(1);

    // The request id sent as X-Request-Id is on the worker's log lines for the webhook jobs that request caused,
    // the retry included.
    expect(failedOnce).to.equal(true);
    // The worker logs an attempt just after the receiver has answered it: wait for the lines, do not race them.
    const linesOfRequest = () =>
      gw
        .logs()
        .split('\n')
        .filter((l) => l.startsWith('{') && l.includes(requestId))
        .map((l) => JSON.parse(l) as { name: string; requestId?: string; msg: string; deliveryId?: string; attempt?: number })
        .filter((l) => l.name === 'worker' && l.requestId === requestId);
    const workerLines = await waitFor(async () => {
      const lines = linesOfRequest();
      const attempts = lines.filter((l) => l.msg === 'webhook attempt').map((l) => l.attempt);
      return attempts.includes(1) && attempts.includes(2) && lines.some((l) => l.msg === 'webhook job done') && lines;
    }, 15_000, () => JSON.stringify(linesOfRequest(), null, 1));
    expect(workerLines.map((l) => l.msg)).to.include.members(['webhook attempt', 'webhook job done']);
    expect(workerLines.filter((l) => l.msg === 'webhook attempt').map((l) => l.attempt)).to.include.members([1, 2]);

    // Paid, but nobody scans: it stays pending and the cursor does not move.
    const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    const cursorBefore = await gw.db('chain_cursors').first();
    await chain.sendEth(4, payments[0].address, 10_000_000_000_000_000n);
    await chain.mine(2);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await call(gw, 'GET', `/api/v1/payments/${payments[0].id}`, { auth: merchant.api_key })).body.status).to.equal('pending');
    expect((await gw.db('chain_cursors').first()).next_block).to.equal(cursorBefore.next_block);

    // A chain-only worker scans; its events reach the merchant through the webhooks-only worker.
    await gw.startWorker({ WORKER_QUEUES: 'chain' });
    await waitFor(async () => received.some((e) => e.type === 'payment.confirmed' && e.data.id === payments[0].id), 40_000, () => gw.logs().slice(-4000));
    expect(received.filter((e) => e.data.id === payments[0].id).map((e) => e.type).sort()).to.deep.equal(['payment.confirmed', 'payment.confirming', 'payment.created']);
  });
});
