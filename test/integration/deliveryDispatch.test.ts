import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createDb, migrateLatest, type Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { metricsRegistry } from '../../shared/metrics.js';
import { closeQueues, createQueues, createRedis, type Queues } from '../../shared/queues/redis.js';
import { createDeliveryDispatcher, viaHandoff, viaQueue, type NewDelivery } from '../../shared/webhooks/dispatchDeliveries.js';
import { handOver, handoffKey } from '../../shared/webhooks/firstAttemptHandoff.js';
import { startFirstAttemptRelay } from '../../workers/webhooks/relayFirstAttempts.js';
import { relayOutboxBatch } from '../../workers/outbox/relayOutbox.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { createTestDatabase, getTestStack } from '../support/stack.js';

/**
 * The first attempts of new payments' webhook deliveries, handed over by the API after commit (no outbox row) and
 * made BullMQ jobs by the workers, against a real Postgres and Redis, and against ports where nothing listens for
 * the failures.
 */
describe('webhooks.dispatchDeliveries', function () {
  this.timeout(60_000);
  let db: Db;
  let redis: ReturnType<typeof createRedis>;
  let queues: Queues;
  let prefix: string;
  let stack: Awaited<ReturnType<typeof getTestStack>>;
  const opened: { quit(): Promise<unknown> }[] = [];

  before(async () => {
    stack = await getTestStack();
    prefix = `dd_${randomBytes(4).toString('hex')}`;
    db = createDb(await createTestDatabase(stack, prefix), 4);
    await migrateLatest(db);
    redis = createRedis(stack.redisUrl, 'producer');
    queues = createQueues(redis, prefix);
  });
  after(async () => {
    await closeQueues(queues);
    await redis.quit();
    await Promise.all(opened.map((c) => c.quit().catch(() => {})));
    await db.destroy();
  });
  afterEach(() => db('outbox').del());

  /** A logger that keeps what it was told. */
  const recordingLog = () => {
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
    return { lines, log: { warn: at('warn'), error: at('error'), info: at('info'), debug: at('debug') } as unknown as Logger };
  };
  /** A producer on a port where nothing listens: every command is refused at once (the producer does not queue). */
  const deadRedis = async () => {
    const dead = createRedis(`redis://127.0.0.1:${await freePort()}`, 'producer');
    opened.push(dead);
    return dead;
  };
  const deadQueues = async () => {
    const refused = createQueues(await deadRedis(), prefix);
    for (const q of Object.values(refused)) q.on('error', () => {}); // refused connections, as intended
    return refused;
  };
  const firstAttempts = async (via: string) => {
    const metric = await metricsRegistry.getSingleMetric('payflow_webhook_first_attempts_total')!.get();
    return metric.values.find((v) => v.labels.via === via)?.value ?? 0;
  };
  const outboxJobs = async () => (await db('outbox').select('queue', 'job_name', 'job_id', 'payload').orderBy('job_id')) as Record<string, unknown>[];

  it('a worker sends each delivery as its first attempt, the job the outbox would have made, and writes no outbox row', async () => {
    const { log, lines } = recordingLog();
    const dispatcher = createDeliveryDispatcher({ db, transport: viaQueue(queues), log });
    const before = await firstAttempts('queue');
    dispatcher.dispatch([
      ['whd_a1', 'req-1'],
      ['whd_a2', null],
    ]);
    await dispatcher.drain();
    const a1 = await queues.webhooks.getJob('whd_a1-0');
    const a2 = await queues.webhooks.getJob('whd_a2-0');
    expect([a1?.name, a1?.data]).to.deep.equal(['deliver', { deliveryId: 'whd_a1', requestId: 'req-1' }]);
    expect([a2?.name, a2?.data]).to.deep.equal(['deliver', { deliveryId: 'whd_a2' }]);
    expect(a1!.opts.attempts).to.equal(8); // the queue's defaults, as for a relayed job
    expect(await outboxJobs()).to.deep.equal([]);
    expect((await firstAttempts('queue')) - before).to.equal(2);
    expect(lines).to.deep.equal([]);
  });

  it('the API hands deliveries over on a Redis list, and the workers make each one job exactly once', async () => {
    const { log, lines } = recordingLog();
    const api = createDeliveryDispatcher({ db, transport: viaHandoff(redis, prefix), log });
    const handedBefore = await firstAttempts('handoff');
    const queuedBefore = await firstAttempts('queue');
    const deliveries: NewDelivery[] = Array.from({ length: 300 }, (_, i) => [`whd_h${i}`, i % 2 ? `req-h${i}` : null]);
    for (const d of deliveries) api.dispatch([d]);
    await api.drain();
    expect(await redis.llen(handoffKey(prefix))).to.equal(300); // no worker yet: they wait in Redis
    expect(await queues.webhooks.getJob('whd_h0-0')).to.equal(undefined);
    expect((await firstAttempts('handoff')) - handedBefore).to.equal(300);

    // Two worker processes' relays compete for the list.
    const relays = [1, 2].map(() => startFirstAttemptRelay({ db, queues, redisUrl: stack.redisUrl, queuePrefix: prefix, log }));
    try {
      const deadline = Date.now() + 10_000;
      while ((await redis.llen(handoffKey(prefix))) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
    }
    expect((await firstAttempts('queue')) - queuedBefore).to.equal(300); // each entry taken by one relay, once
    const jobs = await Promise.all(deliveries.map(([id]) => queues.webhooks.getJob(`${id}-0`)));
    expect(jobs.map((j) => [j?.name, j?.data])).to.deep.equal(
      deliveries.map(([deliveryId, requestId]) => ['deliver', requestId === null ? { deliveryId } : { deliveryId, requestId }]),
    );
    expect(await outboxJobs()).to.deep.equal([]);
    expect(lines).to.deep.equal([]);
  });

  it('a relay stops within its wait even while nothing is handed over, and a later one takes what came meanwhile', async () => {
    const relay = startFirstAttemptRelay({ db, queues, redisUrl: stack.redisUrl, queuePrefix: prefix, log: recordingLog().log });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await relay.stop();
    expect(Date.now() - started).to.be.below(2500);
    await handOver(redis, prefix, [['whd_late', 'req-late']]);
    const next = startFirstAttemptRelay({ db, queues, redisUrl: stack.redisUrl, queuePrefix: prefix, log: recordingLog().log });
    try {
      const deadline = Date.now() + 10_000;
      while (!(await queues.webhooks.getJob('whd_late-0')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await next.stop();
    }
    expect((await queues.webhooks.getJob('whd_late-0'))?.data).to.deep.equal({ deliveryId: 'whd_late', requestId: 'req-late' });
  });

  it('coalesces: deliveries handed over while a send is in flight go out together in the next one', async () => {
    const sizes: number[] = [];
    const counting = { ...queues, webhooks: Object.create(queues.webhooks) as Queues['webhooks'] };
    counting.webhooks.addBulk = (jobs) => {
      sizes.push(jobs.length);
      return queues.webhooks.addBulk(jobs);
    };
    const coalescing = createDeliveryDispatcher({ db, transport: viaQueue(counting), log: recordingLog().log });
    const deliveries: NewDelivery[] = Array.from({ length: 100 }, (_, i) => [`whd_c${i}`, null]);
    for (const d of deliveries) coalescing.dispatch([d]);
    await coalescing.drain();
    expect(sizes).to.deep.equal([1, 99]);
    const found = await Promise.all(deliveries.map(([id]) => queues.webhooks.getJob(`${id}-0`)));
    expect(found.filter(Boolean)).to.have.length(100);
  });

  it('Redis refusing the hand-over: the jobs go into the outbox (one warning, then straight there for a while); the relay sends them later', async () => {
    const { log, lines } = recordingLog();
    const dispatcher = createDeliveryDispatcher({ db, transport: viaHandoff(await deadRedis(), prefix), log, addTimeoutMs: 500 });
    const before = await firstAttempts('outbox');
    dispatcher.dispatch([['whd_r1', 'req-r1']]);
    await dispatcher.drain();
    dispatcher.dispatch([['whd_r2', null]]);
    await dispatcher.drain();
    expect(await outboxJobs()).to.deep.equal([
      { queue: 'webhooks', job_name: 'deliver', job_id: 'whd_r1-0', payload: { deliveryId: 'whd_r1', requestId: 'req-r1' } },
      { queue: 'webhooks', job_name: 'deliver', job_id: 'whd_r2-0', payload: { deliveryId: 'whd_r2' } },
    ]);
    expect((await firstAttempts('outbox')) - before).to.equal(2);
    expect(lines.map((l) => l.level)).to.deep.equal(['warn']);
    expect(lines[0].msg).to.match(/go through the outbox/);

    expect((await relayOutboxBatch(db, queues)).relayed).to.equal(2);
    expect((await queues.webhooks.getJob('whd_r1-0'))?.data).to.deep.equal({ deliveryId: 'whd_r1', requestId: 'req-r1' });
    expect((await queues.webhooks.getJob('whd_r2-0'))?.data).to.deep.equal({ deliveryId: 'whd_r2' });
  });

  it('neither Redis nor Postgres answering: nothing is thrown, the ids are logged and left to the maintenance pass', async () => {
    const { log, lines } = recordingLog();
    const deadDb = createDb(`postgres://payflow:x@127.0.0.1:${await freePort()}/none`, 1);
    try {
      const dispatcher = createDeliveryDispatcher({ db: deadDb, transport: viaQueue(await deadQueues()), log, addTimeoutMs: 500 });
      const before = await firstAttempts('maintenance');
      dispatcher.dispatch([['whd_m1', null], ['whd_m2', null]]);
      await dispatcher.drain();
      expect((await firstAttempts('maintenance')) - before).to.equal(2);
      const error = lines.find((l) => l.level === 'error');
      expect(error?.obj.deliveryIds).to.deep.equal(['whd_m1', 'whd_m2']);
      expect(error?.msg).to.match(/maintenance pass re-queues them/);
    } finally {
      await deadDb.destroy();
    }
  });
});
