import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import pino from 'pino';
import { createRateLimitStore, type RateLimitStore } from '../../api/middleware/rateLimitStore.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { getTestStack } from '../support/stack.js';

const log = pino({ level: 'silent' });
const WINDOW = 60_000;

/** The rate limit store on a real Redis: local counting, shared totals, the sliding window, Redis down. */
describe('rate limit store (koa-ratelimit driver): counted locally, shared through Redis', function () {
  this.timeout(30_000);
  let redis: Redis;
  const stores: RateLimitStore[] = [];
  const store = (r: Redis = redis) => {
    const s = createRateLimitStore(r, log, 60_000); // flushed by hand below, not by the timer
    stores.push(s);
    return s;
  };
  const key = () => `test:rl:${randomBytes(4).toString('hex')}`;
  const t0 = Math.floor(Date.now() / WINDOW) * WINDOW; // the start of the current bucket

  before(async () => {
    redis = new Redis((await getTestStack()).redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(() => {
    for (const s of stores) s.close();
    redis.disconnect();
  });

  it('alone, it is exact: remaining counts down to 0, then refuses without counting', async () => {
    const s = store();
    const k = key();
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) seen.push((await s.ratelimiter(k, t0 + 1000 + i, WINDOW, 5, '0'))[0]);
    expect(seen).to.deep.equal([5, 4, 3, 2, 1, 0, 0]);
    await s.flush();
    expect(await redis.get(`${k}:${t0 / WINDOW}`)).to.equal('5');
  });

  it('processes share the budget: a new one starts from the shared count, the others learn it at their next flush', async () => {
    const a = store();
    const b = store();
    const k = key();
    for (let i = 0; i < 6; i++) expect((await a.ratelimiter(k, t0 + 1000, WINDOW, 10, '0'))[0]).to.equal(10 - i);
    await a.flush();
    // b reads Redis before its first answer: 6 used elsewhere.
    expect((await b.ratelimiter(k, t0 + 1000, WINDOW, 10, '0'))[0]).to.equal(4);
    for (let i = 0; i < 3; i++) await b.ratelimiter(k, t0 + 1000, WINDOW, 10, '0');
    expect((await b.ratelimiter(k, t0 + 1000, WINDOW, 10, '0'))[0]).to.equal(0);
    await b.flush();
    await a.flush(); // a was idle since its last flush: its next answer reads Redis first
    expect((await a.ratelimiter(k, t0 + 1000, WINDOW, 10, '0'))[0]).to.equal(0);
    expect(await redis.get(`${k}:${t0 / WINDOW}`)).to.equal('10');
  });

  it('slides: the previous bucket counts by how much of it the window still covers', async () => {
    const s = store();
    const k = key();
    for (let i = 0; i < 10; i++) await s.ratelimiter(k, t0 + 59_000, WINDOW, 10, '0');
    const [remaining, reset] = await s.ratelimiter(k, t0 + 59_000, WINDOW, 10, '0');
    expect(remaining).to.equal(0);
    expect(reset * 1000).to.be.within(t0 + WINDOW, t0 + 2 * WINDOW); // a slot frees up once the bucket slides
    await s.flush();
    // A quarter into the next bucket, three quarters of the previous one still count: 7.5 of 10 used.
    expect((await s.ratelimiter(k, t0 + WINDOW + 15_000, WINDOW, 10, '0'))[0]).to.equal(3);
    await s.flush();
    // Two buckets later nothing of it is left.
    expect((await s.ratelimiter(k, t0 + 3 * WINDOW + 1000, WINDOW, 10, '0'))[0]).to.equal(10);
  });

  it('with Redis unreachable it limits by its own counts, and keeps them through a failed flush', async () => {
    const dead = new Redis(await freePort(), '127.0.0.1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const s = store(dead);
    const k = key();
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) seen.push((await s.ratelimiter(k, t0 + 1000, WINDOW, 3, '0'))[0]);
    expect(seen).to.deep.equal([3, 2, 1, 0]);
    await s.flush(); // fails quietly; the counts stay pending
    expect((await s.ratelimiter(k, t0 + 1000, WINDOW, 3, '0'))[0]).to.equal(0);
    dead.disconnect();
  });
});
