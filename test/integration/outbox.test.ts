import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createDb, migrateLatest, type Db } from '../../shared/db.js';
import { enqueueInTx } from '../../shared/outbox/enqueue.js';
import { QUEUES } from '../../shared/queues/names.js';
import { closeQueues, createQueues, createRedis, type Queues } from '../../shared/queues/redis.js';
import { relayOutboxBatch } from '../../workers/outbox/relayOutbox.js';
import { createTestDatabase, getTestStack } from '../support/stack.js';

/** The transactional outbox against a real Postgres and Redis: jobs exist iff their transaction commits. */
describe('outbox.relayOutboxBatch', function () {
  this.timeout(60_000);
  let db: Db;
  let queues: Queues;
  let redis: ReturnType<typeof createRedis>;

  before(async () => {
    const stack = await getTestStack();
    const name = `ob_${randomBytes(4).toString('hex')}`;
    db = createDb(await createTestDatabase(stack, name), 4);
    await migrateLatest(db);
    redis = createRedis(stack.redisUrl, 'producer');
    queues = createQueues(redis, name);
  });
  after(async () => {
    await closeQueues(queues);
    await redis.quit();
    await db.destroy();
  });

  const job = (jobId: string, runAt?: Date) => ({ queue: QUEUES.webhooks, name: 'deliver', jobId, payload: { deliveryId: jobId }, runAt });

  it('relays nothing from a rolled-back transaction', async () => {
    await db
      .transaction(async (trx) => {
        await enqueueInTx(trx, [job('rolled-back')]);
        throw new Error('roll back');
      })
      .catch((err: Error) => expect(err.message).to.equal('roll back'));
    expect(await relayOutboxBatch(db, queues)).to.deep.include({ relayed: 0 });
    expect(await queues.webhooks.getJob('rolled-back')).to.equal(undefined);
  });

  it('relays committed jobs with their ids and delays, then forgets the rows', async () => {
    await db.transaction((trx) => enqueueInTx(trx, [job('now-1'), job('later-1', new Date(Date.now() + 60_000))]));
    const r = await relayOutboxBatch(db, queues);
    expect(r.relayed).to.equal(2);
    expect(await db('outbox').count('* as n').first()).to.deep.equal({ n: 0 });
    const now = await queues.webhooks.getJob('now-1');
    expect(now?.data).to.deep.equal({ deliveryId: 'now-1' });
    const later = await queues.webhooks.getJob('later-1');
    expect(await later!.getState()).to.equal('delayed');
    expect(later!.opts.delay).to.be.within(55_000, 60_000);
  });

  it('relaying the same row twice (a crash between BullMQ and the commit) creates one job', async () => {
    await db.transaction((trx) => enqueueInTx(trx, [job('dup-1')]));
    const row = await db('outbox').first();
    await relayOutboxBatch(db, queues);
    await db('outbox').insert({ queue: row.queue, job_name: row.job_name, job_id: row.job_id, payload: JSON.stringify(row.payload) });
    await relayOutboxBatch(db, queues);
    const counts = await queues.webhooks.getJobCounts('waiting', 'delayed', 'active', 'completed');
    const ids = (await queues.webhooks.getJobs(['waiting', 'delayed'])).map((j) => j.id);
    expect(ids.filter((id) => id === 'dup-1')).to.have.length(1);
    expect(counts.waiting).to.equal(2); // now-1 and dup-1
  });

  it('keeps the rows when Redis refuses them, and relays them once Redis is back', async () => {
    const deadRedis = createRedis('redis://127.0.0.1:1', 'producer');
    const deadQueues = createQueues(deadRedis, 'dead');
    for (const q of Object.values(deadQueues)) q.on('error', () => {});
    await db.transaction((trx) => enqueueInTx(trx, [job('survivor')]));
    let failed = false;
    try {
      await relayOutboxBatch(db, deadQueues, 500, 1000);
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
    expect(await db('outbox').where({ job_id: 'survivor' })).to.have.length(1);
    await relayOutboxBatch(db, queues);
    expect(await queues.webhooks.getJob('survivor')).to.not.equal(undefined);
    deadRedis.disconnect();
  });

  it('two relays at once never send a row twice at the same time', async () => {
    await db.transaction((trx) => enqueueInTx(trx, Array.from({ length: 300 }, (_, i) => job(`par-${i}`))));
    const [a, b] = await Promise.all([relayOutboxBatch(db, queues, 200), relayOutboxBatch(db, queues, 200)]);
    const rest = await relayOutboxBatch(db, queues, 500);
    expect(a.relayed + b.relayed + rest.relayed).to.equal(300);
    expect(await db('outbox').count('* as n').first()).to.deep.equal({ n: 0 });
  });
});
