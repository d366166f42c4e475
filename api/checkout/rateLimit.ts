/**
 * Per-client-IP fixed-window counter for the public checkout routes, kept in this process's memory.
 *
 * Why not Redis: the checkout page is public and unauthenticated, so the limit only has to blunt scraping and
 * id-guessing floods, not be exact. In memory it costs nothing per request and keeps the page up when Redis is
 * down. With N API processes a client can make up to N × limit requests per window; size the limit for that.
 */
export interface FixedWindowLimiter {
  /** Counts one request; answers whether it is allowed and, if not, how many seconds until the window resets. */
  hit(key: string, now?: number): { allowed: boolean; remaining: number; retryAfterSeconds: number };
}

/** Bounds memory under a flood of distinct addresses: past this many clients in a window, new ones share one slot. */
const MAX_TRACKED_CLIENTS = 100_000;

export function createFixedWindowLimiter(limit: number, windowMs = 60_000): FixedWindowLimiter {
  let windowStart = 0;
  let counts = new Map<string, number>();
  return {
    hit(key, now = Date.now()) {
      const start = now - (now % windowMs);
      if (start !== windowStart) {
        windowStart = start;
        counts = new Map(); // the whole previous window is forgotten at once: no per-key timers
      }
      const slot = counts.has(key) || counts.size < MAX_TRACKED_CLIENTS ? key : '\0overflow';
      const count = (counts.get(slot) ?? 0) + 1;
      counts.set(slot, count);
      return {
        allowed: count <= limit,
        remaining: Math.max(0, limit - count),
        retryAfterSeconds: Math.max(1, Math.ceil((start + windowMs - now) / 1000)),
      };
    },
  };
}
