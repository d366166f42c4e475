/**
 * Test-only crash points. With PAYFLOW_CRASH_AT=<point> the worker kills itself with SIGKILL when a settlement
 * reaches that point, so the crash tests (test/integration/settlementCrash.test.ts) can prove that a restart
 * never sweeps a deposit twice. Ignored when NODE_ENV=production.
 *
 *   after_sign       a transaction is signed but not yet stored
 *   after_store      stored in Postgres, not yet broadcast
 *   after_broadcast  broadcast, not yet marked as broadcast
 *   before_receipt   mined with enough confirmations, before the receipt and the settlement are recorded
 */
export type CrashPoint = 'after_sign' | 'after_store' | 'after_broadcast' | 'before_receipt';

export function crashPoint(point: CrashPoint): void {
  if (process.env.PAYFLOW_CRASH_AT === point && process.env.NODE_ENV !== 'production') {
    process.stderr.write(`payflow: PAYFLOW_CRASH_AT=${point}: killing this worker (test crash point)\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
