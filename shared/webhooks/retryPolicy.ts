/**
 * When to try a webhook delivery again. Pure: the worker feeds it the attempt's result and the configured
 * schedule (WEBHOOK_RETRY_SCHEDULE, seconds after each failed attempt; Standard Webhooks' example by default).
 */

/** The longest wait a receiver can ask for with `Retry-After`; a larger value is cut to this. */
export const RETRY_AFTER_MAX_SECONDS = 24 * 3600;

/**
 * Parses an HTTP `Retry-After` value: delay-seconds (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`).
 * Answers seconds from `now` (0 for a date in the past), capped at RETRY_AFTER_MAX_SECONDS, or null when the
 * header is absent or unreadable (then the normal schedule applies).
 */
export function parseRetryAfter(header: string | string[] | undefined, now: Date): number | null {
  const raw = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!raw) return null;
  let seconds: number;
  if (/^\d+$/.test(raw)) {
    seconds = Number(raw);
  } else {
    // Only the IMF-fixdate / RFC 850 / asctime forms RFC 9110 allows contain a weekday or month name; Date.parse
    // would also accept "1" or "2026", which are not dates a receiver meant.
    if (!/[A-Za-z]{3}/.test(raw)) return null;
    const at = Date.parse(raw);
    if (Number.isNaN(at)) return null;
    seconds = Math.max(0, Math.ceil((at - now.getTime()) / 1000));
  }
  return Math.min(seconds, RETRY_AFTER_MAX_SECONDS);
}

export type RetryDecision = { retry: true; delaySeconds: number } | { retry: false };

/**
 * After a failed attempt: retry, and after how long, or give up. `attemptInRound` counts attempts since the
 * delivery's current round began (1 for the first); a round has 1 + schedule.length attempts. A `429` or `503`
 * with a readable `Retry-After` replaces the schedule's wait with the receiver's, but still uses up one attempt,
 * so a receiver cannot keep a delivery alive forever.
 */
export function decideRetry(opts: {
  attemptInRound: number;
  schedule: readonly number[];
  statusCode: number | null;
  retryAfterSeconds: number | null;
}): RetryDecision {
  const { attemptInRound, schedule, statusCode, retryAfterSeconds } = opts;
  if (attemptInRound > schedule.length) return { retry: false };
  const honoursRetryAfter = (statusCode === 429 || statusCode === 503) && retryAfterSeconds !== null;
  return { retry: true, delaySeconds: honoursRetryAfter ? retryAfterSeconds : schedule[attemptInRound - 1] };
}

/** 2xx is success; anything else (3xx included: redirects are not followed) is a failed attempt. */
export const isSuccessStatus = (statusCode: number | null): boolean => statusCode !== null && statusCode >= 200 && statusCode < 300;
