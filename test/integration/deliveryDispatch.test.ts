import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createDb, migrateLatest, type Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { metricsRegistry } from '../../shared/metrics.js';
import { closeQueues, createQueues, createRedis, type Queues } from '../../shared/queues/redis.js';
import { createDeliveryDispatcher, type NewDelivery } from '../../shared/webhooks/dispatchDeliveries.js';
import { relayOutboxBatch } from '../../workers/outbox/relayOutbox.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { createTestDatabase, getTestStack } from '../support/stack.js';

/**
 * The first attempts of new payments' webhook deliveries, sent by the API after commit (no outbox row), against a
 * real Postgres and Redis, and against ports where nothing listens for the failures.
 */
describe('webhooks.dispatchDeliveries', function () {
  this.timeout(60_000);
  let db: Db;
  let redis: ReturnType<typeof createRedis>;
  let queues: Queues;
  let prefix: string;
  const opened: { quit(): Promise<unknown> }[] = [];

  before(async () => {
    const stack = await getTestStack();
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
  /** Queues on a port where nothing listens: every command is refused at once (the producer does not queue). */
  const deadQueues = async () => {
    const dead = createRedis(`redis://127.0.0.1:${await freePort()}`, 'producer');
    opened.push(dead);
    const refused = createQueues(dead, prefix);
    for (const q of Object.values(refused)) q.on('error', () => {}); // refused connections, as intended
    return refused;
  };
  const firstAttempts = async (via: string) => {
    const metric = await metricsRegistry.getSingleMetric('payflow_webhook_first_attempts_total')!.get();
    return metric.values.find((v) => v.labels.via === via)?.value ?? 0;
  };
  const outboxJobs = async () => (await db('outbox').select('queue', 'job_name', 'job_id', 'payload').orderBy('job_id')) as Record<string, unknown>[];

  it('sends each delivery as its first attempt, the job the outbox would have made, and writes no outbox row', async () => {
    const { log, lines } = recordingLog();
    const dispatcher = createDeliveryDispatcher({ db, queues, log });
    const before = await firstAttempts('redis');
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
    expect((await firstAttempts('redis')) - before).to.equal(2);
    expect(lines).to.deep.equal([]);
  });

  it('coalesces: deliveries handed over while a send is in flight go out together in the next one', async () => {
    const sizes: number[] = [];
    const counting = { ...queues, webhooks: Object.create(queues.webhooks) as Queues['webhooks'] };
    counting.webhooks.addBulk = (jobs) => {
      sizes.push(jobs.length);
      return queues.webhooks.addBulk(jobs);
    };
    const coalescing = createDeliveryDispatcher({ db, queues: counting, log: recordingLog().log });
    const deliveries: NewDelivery[] = Array.from({ length: 100 }, (_, i) => [`whd_c${i}`, null]);
    for (const d of deliveries) coalescing.dispatch([d]);
    await coalescing.drain();
    expect(sizes).to.deep.equal([1, 99]);
    const found = await Promise.all(deliveries.map(([id]) => queues.webhooks.getJob(`${id}-0`)));
    expect(found.filter(Boolean)).to.have.length(100);
  });

  it('Redis refusing: the jobs go into the outbox (one warning, then straight there for a while); the relay sends them later', async () => {
    const { log, lines } = recordingLog();
    const dispatcher = createDeliveryDispatcher({ db, queues: await deadQueues(), log, addTimeoutMs: 500 });
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
      const dispatcher = createDeliveryDispatcher({ db: deadDb, queues: await deadQueues(), log, addTimeoutMs: 500 });
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
