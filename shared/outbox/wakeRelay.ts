import type { Db } from '../db.js';

/**
 * Wakes the outbox relays (NOTIFY payflow_outbox) after a commit, at most one NOTIFY in flight per process.
 *
 * A NOTIFY inside a transaction is delivered at commit, but Postgres serialises the commits of all notifying
 * transactions behind one lock: with many payments created at once, their commits (WAL flush included) queued one
 * by one (bench: POST /api/v1/payments with a webhook endpoint fell from 0.49× to 0.16× of its baseline). The hot
 * write path therefore commits without NOTIFY and calls this instead: the wake-up is a hint sent after the rows
 * are visible, coalesced while one is on its way; a lost one only means the relay finds the rows at its next poll
 * (OUTBOX_POLL_INTERVAL_MS). Low-rate writers (scans, settlement) keep their transactional NOTIFY (enqueueInTx).
 */
export function createRelayWaker(db: Db): () => void {
  let inFlight = false;
  let again = false;
  const send = () => {
    inFlight = true;
    again = false;
    db.raw(`SELECT pg_notify('payflow_outbox', '')`)
      .catch(() => {})
      .finally(() => {
        inFlight = false;
        if (again) send();
      });
  };
  return () => {
    if (inFlight) again = true;
    else send();
  };
}
