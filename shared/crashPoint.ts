/**
 * Test-only crash points. With PAYFLOW_CRASH_AT=<point> the process kills itself with SIGKILL when it reaches that
 * point, so the crash tests can prove that a restart loses nothing and does nothing twice. Ignored when
 * NODE_ENV=production.
 *
 * A settlement worker (test/integration/settlementCrash.test.ts: never sweeps a deposit twice):
 *   after_sign       a transaction is signed but not yet stored
 *   after_store      stored in Postgres, not yet broadcast
 *   after_broadcast  broadcast, not yet marked as broadcast
 *   before_receipt   mined with enough confirmations, before the receipt and the settlement are recorded
 * The API (test/integration/webhooks.test.ts: a payment.created webhook still arrives):
 *   before_first_attempts  payments and their webhook deliveries committed, not yet handed to the workers
 * A worker (the same test):
 *   after_first_attempts_taken  handed-over first attempts taken from Redis, their jobs not yet added to BullMQ
 */
export type CrashPoint = 'after_sign' | 'after_store' | 'after_broadcast' | 'before_receipt' | 'before_first_attempts' | 'after_first_attempts_taken';

// Read once: one of the points sits on payment creation's path, where reading process.env per batch is waste.
const crashAt = process.env.NODE_ENV === 'production' ? undefined : process.env.PAYFLOW_CRASH_AT;

export function crashPoint(point: CrashPoint): void {
  if (crashAt === point) {
    process.stderr.write(`payflow: PAYFLOW_CRASH_AT=${point}: killing this process (test crash point)\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
