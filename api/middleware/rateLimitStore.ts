import type { Logger } from '../../shared/logger.js';
import type { RedisConnection } from '../../shared/queues/redis.js';

/**
 * The store behind koa-ratelimit's `redis` driver, counting locally and settling with Redis in batches.
 *
 * koa-ratelimit's own store runs a Lua script (a sorted set per client, one member per request) on every request:
 * a Redis round trip on the hot path, which capped GET /api/v1/payments/:id at about half of what it reaches
 * without one (bench, README "Performance"). This store answers from memory and, every `flushIntervalMs`, adds what
 * this process counted to Redis and reads back the totals of every process in one script call. The window slides
 * the usual cheap way: two fixed buckets, the previous one weighted by how much of it still overlaps the window.
 *
 * What it costs in exactness: another process's requests are seen here up to one flush interval late, so across
 * N API processes a client can get up to (N − 1) × its rate × the interval above its budget. A client this process
 * has not seen in this bucket, or not since its last flush, is read from Redis before its next answer, so a new or
 * idle process starts from the shared count, not from what it last knew. One process alone is exact. When Redis is unreachable it keeps counting locally (a limit
 * per process instead of a shared one) and settles the backlog once Redis is back.
 *
 * It implements the one call koa-ratelimit's limiter makes (async-ratelimiter's `ratelimiter` command):
 * (key, now in ms, window in ms, max, peek) → [remaining before this request, reset in Unix seconds, max].
 */
export interface RateLimitStore {
  defineCommand(): void;
  ratelimiter(key: string, nowMs: number, windowMs: number, max: number, peek: string): Promise<[number, number, number]>;
  /** Settles the local counts with Redis now (also runs on its own timer). */
  flush(): Promise<void>;
  close(): void;
}

interface Counter {
  windowMs: number;
  bucket: number;
  /** Totals of every process as Redis last told us, for this bucket and the one before. */
  shared: number;
  sharedPrevious: number;
  /** Counted here and not yet added to Redis. */
  pending: number;
  touched: boolean;
  lastUsedMs: number;
  /** The bucket whose shared count was last read from Redis; another bucket is read before answering. */
  syncedBucket?: number;
  /** That read, while in flight: a burst of first requests waits for one read. */
  syncing?: Promise<void>;
}

// KEYS: pairs (current bucket, previous bucket); ARGV: increments (one per pair), then the TTL in ms.
// Returns the pairs' totals after the increments, flattened.
const FLUSH_SCRIPT = `
local ttl = tonumber(ARGV[#ARGV])
local out = {}
for i = 1, #KEYS, 2 do
  local add = tonumber(ARGV[(i + 1) / 2])
  local current
  if add > 0 then
    current = redis.call('INCRBY', KEYS[i], add)
    redis.call('PEXPIRE', KEYS[i], ttl)
  else
    current = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  out[#out + 1] = current
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
end
return out
`;

type FlushingRedis = RedisConnection & { payflowRateLimitFlush(numKeys: number, ...args: (string | number)[]): Promise<number[]> };

export function createRateLimitStore(redis: RedisConnection, log: Logger, flushIntervalMs = 100): RateLimitStore {
  const counters = new Map<string, Counter>();
  const client = redis as FlushingRedis;
  if (!client.payflowRateLimitFlush) redis.defineCommand('payflowRateLimitFlush', { lua: FLUSH_SCRIPT });
  let lastWarning = 0;
  const warn = (err: unknown) => {
    if (Date.now() - lastWarning < 10_000) return;
    lastWarning = Date.now();
    log.warn({ err: (err as Error).message }, 'rate limit store cannot reach Redis; counting per process until it is back');
  };

  const bucketKey = (key: string, bucket: number) => `${key}:${bucket}`;
  const roll = (c: Counter, bucket: number) => {
    if (bucket === c.bucket) return;
    // The old current bucket becomes the previous one (or nothing, after a gap of more than one bucket). Requests
    // still pending go to Redis under the new bucket: counted as a little more recent than they were, which can
    // only make the limit stricter, by at most one flush interval's worth.
    c.sharedPrevious = bucket === c.bucket + 1 ? c.shared : 0;
    c.shared = 0;
    c.bucket = bucket;
  };

  let flushing: Promise<void> | undefined;
  async function settle(entries: [string, Counter][]): Promise<void> {
    const keys: string[] = [];
    const adds: number[] = [];
    const snapshot = entries.map(([key, c]) => {
      keys.push(bucketKey(key, c.bucket), bucketKey(key, c.bucket - 1));
      adds.push(c.pending);
      return { c, bucket: c.bucket, added: c.pending };
    });
    const ttl = Math.max(...entries.map(([, c]) => c.windowMs)) * 2;
    const totals = await client.payflowRateLimitFlush(keys.length, ...keys, ...adds, ttl);
    snapshot.forEach(({ c, bucket, added }, i) => {
      c.pending -= added;
      if (c.bucket !== bucket) return; // rolled over while the script ran: the next flush reads the new bucket
      c.shared = Number(totals[2 * i]);
      c.sharedPrevious = Number(totals[2 * i + 1]);
      c.syncedBucket = bucket;
    });
  }

  async function flush(): Promise<void> {
    const now = Date.now();
    const due: [string, Counter][] = [];
    for (const [key, c] of counters) {
      if (c.pending > 0 || c.touched) due.push([key, c]);
      else if (now - c.lastUsedMs > 2 * c.windowMs) counters.delete(key);
      // Idle since the last flush, so not refreshed by this one: its next request reads Redis before answering.
      else c.syncedBucket = undefined;
      c.touched = false;
    }
    if (due.length === 0) return;
    try {
      // Bounded script calls: a flood of distinct clients is settled in slices.
      for (let i = 0; i < due.length; i += 500) await settle(due.slice(i, i + 500));
    } catch (err) {
      for (const [, c] of due) c.touched = true;
      warn(err);
    }
  }
  const runFlush = () => (flushing ??= flush().finally(() => (flushing = undefined)));
  const timer = setInterval(() => void runFlush(), flushIntervalMs);
  timer.unref();

  return {
    defineCommand() {},
    async ratelimiter(key, nowMs, windowMs, max, peek) {
      const bucket = Math.floor(nowMs / windowMs);
      let c = counters.get(key);
      if (!c) {
        c = { windowMs, bucket, shared: 0, sharedPrevious: 0, pending: 0, touched: false, lastUsedMs: nowMs };
        counters.set(key, c);
      }
      roll(c, bucket);
      if (c.syncedBucket !== bucket) {
        const counter = c;
        counter.syncing ??= settle([[key, counter]])
          .catch((err) => {
            counter.syncedBucket = bucket; // answer from local counts; the timer settles once Redis is back
            warn(err);
          })
          .finally(() => (counter.syncing = undefined));
        await counter.syncing;
        roll(c, bucket);
      }
      c.lastUsedMs = nowMs;
      c.touched = true;
      const elapsed = (nowMs - c.bucket * windowMs) / windowMs;
      const current = c.shared + c.pending;
      const used = Math.floor(current + c.sharedPrevious * (1 - elapsed));
      const resetMs = resetAt(c, windowMs, max, current);
      if (used >= max) return [0, Math.ceil(resetMs / 1000), max];
      if (peek !== '1') c.pending += 1;
      return [max - used, Math.ceil(resetMs / 1000), max];
    },
    flush: runFlush,
    close() {
      clearInterval(timer);
    },
  };
}

/**
 * When a slot frees up: the previous bucket's weight falls as the window slides, so with the current bucket under
 * the budget a slot frees once cur + prev × (1 − t) < max; with the current bucket alone at the budget, once it has
 * become the previous bucket and slid far enough.
 */
function resetAt(c: Counter, windowMs: number, max: number, current: number): number {
  const start = c.bucket * windowMs;
  if (current < max) {
    if (c.sharedPrevious === 0) return start + windowMs;
    const t = Math.max(0, 1 - (max - current) / c.sharedPrevious);
    return start + Math.min(1, t) * windowMs;
  }
  return start + windowMs + Math.min(1, Math.max(0, 1 - max / current)) * windowMs;
}
