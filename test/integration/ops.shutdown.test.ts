import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { freePort } from '../../scripts/devstack/ports.js';

/** A webhook endpoint that answers after `delayMs` (or never), recording each event id it was sent. */
async function slowReceiver(delayMs: number | 'never') {
  const seen: string[] = [];
  let inFlight = 0;
  const server: Server = createServer((req, res) => {
    inFlight++;
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (delayMs === 'never') return;
      setTimeout(() => {
        seen.push(String(req.headers['webhook-id']));
        inFlight--;
        res.writeHead(200).end('ok');
      }, delayMs);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    seen,
    inFlight: () => inFlight,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

describe('ops: SIGTERM under load (API and worker processes)', function () {
  this.timeout(180_000);
  let gw: Gateway;
  const receivers: Awaited<ReturnType<typeof slowReceiver>>[] = [];

  before(async () => {
    gw = await startGateway({
      workers: 0,
      // Generous limits: this test is about shutdown, not rate limiting.
      env: { LOG_LEVEL: 'info', WORKER_CONCURRENCY: '8', RATE_LIMIT_WRITE: '1000000', RATE_LIMIT_READ: '1000000', RATE_LIMIT_PER_IP: '1000000' },
    });
  });
  after(async () => {
    for (const r of receivers) await r.close();
    await gw?.stop();
  });

  it('a worker whose jobs outlive WORKER_SHUTDOWN_GRACE_MS releases them and still exits 0', async () => {
    const hanging = await slowReceiver('never');
    receivers.push(hanging);
    const merchant = await createTestMerchant(gw, 'Hanging Shop');
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: hanging.url } });
    expect(ep.status).to.equal(201);
    const worker = await gw.startWorker({ WORKER_SHUTDOWN_GRACE_MS: '300', WORKER_QUEUES: 'webhooks' });
    // Any worker records the chain's cursor at start; payments on a chain nobody has started on are refused.
    await waitFor(async () => (await gw.db('chain_cursors').where({ chain_id: 31337 }).first()) !== undefined, 30_000, () => gw.logs());
    const payment = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '1', currency: 'ETH' } });
    expect(payment.status, JSON.stringify(payment.body)).to.equal(201);
    await waitFor(async () => hanging.inFlight() > 0, 20_000, () => gw.logs());
    worker.kill('SIGTERM');
    expect(await exitOf(worker)).to.equal(0);
    expect(gw.logs()).to.include('active jobs did not finish within the grace; releasing them');
    // Released, not stuck in `active` until a stall check: the delivery's job waits for the next worker.
    const delivery = await gw.db('webhook_deliveries').where({ endpoint_id: ep.body.id }).first();
    const connection = new Redis(gw.stack.redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('webhooks', { connection, prefix: gw.env.QUEUE_PREFIX });
    try {
      const waiting = await queue.getWaiting();
      expect(waiting.map((j) => j.data.deliveryId)).to.include(delivery.id);
      expect((await queue.getActive()).map((j) => j.data.deliveryId)).to.not.include(delivery.id);
    } finally {
      await queue.close();
      connection.disconnect();
    }
    await call(gw, 'DELETE', `/api/v1/webhook-endpoints/${ep.body.id}`, { auth: merchant.api_key });
  });

  it('no request PayFlow read is cut off (no reset on a kept-alive connection), every request completes, every webhook is delivered exactly once, both exit 0', async () => {
    const receiver = await slowReceiver(150);
    receivers.push(receiver);
    const merchant = await createTestMerchant(gw, 'Busy Shop');
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } });
    expect(ep.status).to.equal(201);

    // A second API process, as a load balancer would have: clients move to it when the first refuses connections.
    const api2Url = `http://127.0.0.1:${(await gw.startApi()).port}`;
    const worker1 = await gw.startWorker();

    const statuses: number[] = [];
    const answered = new Map<string, string>(); // order_id → which API answered 201
    const failures: string[] = [];
    let refused = 0;
    const resetBeforeRequest: string[] = [];
    let stopLoad = false;
    let api1Down = false;
    /** POST over node:http with a keep-alive agent: `reusedSocket` tells a keep-alive race from a refused connection. */
    const post = (target: string, agent: Agent, body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const url = new URL(`${target}/api/v1/payments`);
        const req = httpRequest(
          { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { authorization: `Bearer ${merchant.api_key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, text }));
            res.on('error', reject);
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
        req.end(body);
      });
    const client = async (n: number) => {
      const agents = new Map([[gw.apiUrl, new Agent({ keepAlive: true, maxSockets: 1 })], [api2Url, new Agent({ keepAlive: true, maxSockets: 1 })]]);
      for (let i = 0; !stopLoad; i++) {
        const target = api1Down ? api2Url : gw.apiUrl;
        try {
          const res = await post(target, agents.get(target)!, JSON.stringify({ amount: '0.001', currency: 'ETH', order_id: `load-${n}-${i}` }));
          statuses.push(res.status);
          if (res.status === 201) answered.set(`load-${n}-${i}`, `${target === gw.apiUrl ? 'api1' : 'api2'} ${JSON.parse(res.text).id}`);
        } catch (err) {
          const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
          if (target === gw.apiUrl && !e.reusedSocket && (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET')) {
            // A NEW connection to a closed listener: refused, or reset by the kernel when it was still in the accept
            // queue. No request was read; a load balancer retries it elsewhere. Checked below: it had no effect.
            if (e.code === 'ECONNREFUSED') refused++;
            else resetBeforeRequest.push(`load-${n}-${i}`);
            api1Down = true;
          } else failures.push(`${target}: ${e.code ?? e.message}${e.reusedSocket ? ' (on a reused keep-alive connection)' : ''}`);
        }
      }
      for (const a of agents.values()) a.destroy();
    };
    const load = Promise.all(Array.from({ length: 12 }, (_, n) => client(n)));
    await waitFor(async () => statuses.length >= 60, 60_000);
    gw.api.kill('SIGTERM');
    const apiExit = exitOf(gw.api);
    // Deliveries are running on worker1 now: stop it mid-flight.
    await waitFor(async () => receiver.inFlight() > 0, 30_000, () => gw.logs());
    worker1.kill('SIGTERM');
    expect(await exitOf(worker1), 'worker exit code').to.equal(0);
    expect(await apiExit, 'api exit code').to.equal(0);
    await waitFor(async () => statuses.length >= 200 || failures.length > 0, 60_000);
    stopLoad = true;
    await load;

    expect(failures, 'errors other than a refused new connection').to.deep.equal([]);
    expect(new Set(statuses)).to.deep.equal(new Set([201]));
    const created = await gw.db('payments').where({ merchant_id: merchant.id }).select('id', 'order_id');
    const stored = new Set(created.map((p) => p.order_id));
    expect(resetBeforeRequest.filter((orderId) => stored.has(orderId)), 'a reset after PayFlow handled the request').to.deep.equal([]);
    const missing = [...answered].filter(([orderId]) => !stored.has(orderId));
    expect(missing, 'answered 201 but not in Postgres').to.deep.equal([]);
    expect(created.length, 'every 201 is a payment, and only those').to.equal(statuses.length);
    expect(new Set(created.map((p) => p.order_id)).size).to.equal(created.length);

    // Another worker picks up what is left; each payment.created arrives exactly once.
    await gw.startWorker();
    const expected = await gw.db('events').where({ merchant_id: merchant.id, type: 'payment.created' }).pluck('id');
    expect(expected.length).to.equal(created.length); // one event per payment, none doubled
    await waitFor(async () => new Set(receiver.seen).size >= expected.length, 90_000, () => `${receiver.seen.length}/${expected.length}\n${gw.logs().slice(-3000)}`);
    expect(receiver.seen.length, 'no webhook delivered twice').to.equal(expected.length);
    expect(new Set(receiver.seen)).to.deep.equal(new Set(expected));
    // Each attempt row is committed just after the receiver answered: wait for them, then check there is no extra.
    const attemptCount = async () =>
      Number(
        (
          await gw.db('webhook_attempts')
            .join('webhook_deliveries', 'webhook_deliveries.id', 'webhook_attempts.delivery_id')
            .where('webhook_deliveries.endpoint_id', ep.body.id)
            .count<{ n: string }[]>({ n: '*' })
        )[0].n,
      );
    await waitFor(async () => (await attemptCount()) >= expected.length, 20_000);
    expect(await attemptCount()).to.equal(expected.length);
    console.log(`      (${statuses.length} requests, ${refused} refused and ${resetBeforeRequest.length} reset-before-read connections after SIGTERM, ${expected.length} webhooks)`);
  });
});
