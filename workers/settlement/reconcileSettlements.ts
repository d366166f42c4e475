import type { Db } from '../../shared/db.js';
import { observeGasTank } from './gasTank.js';
import { settlePayment, type SettlementDeps } from './settlePayment.js';

/**
 * The settlement reconciler: Postgres, not Redis, says what is left to settle. Every worker process that consumes
 * the `settlement` queue runs it on a timer (SETTLEMENT_INTERVAL_MS), so settlements continue after Redis lost its
 * jobs, after a worker was killed mid-job, and while sweeps wait for confirmations. Workers skip payments another
 * worker is advancing (advisory try-lock), so several reconcilers share the work instead of repeating it.
 */
export async function findPaymentsToSettle(db: Db, limit = 100): Promise<string[]> {
  const { rows } = await db.raw(
    `SELECT p.id FROM payments p JOIN merchants m ON m.id = p.merchant_id
      WHERE ((p.status = 'confirmed' AND (p.custody = 'non_custodial' OR m.settlement_address IS NOT NULL))
          OR (p.status = 'expired' AND p.resolution = 'refund' AND p.custody = 'custodial' AND p.amount_received > 0))
        AND NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.payment_id = p.id AND s.status <> 'pending')
      ORDER BY p.seq
      LIMIT ?`,
    [limit],
  );
  return rows.map((r: { id: string }) => r.id);
}

export async function reconcileSettlements(deps: SettlementDeps): Promise<{ advanced: number; done: number }> {
  let done = 0;
  const ids = await findPaymentsToSettle(deps.db);
  // Start at a random place so concurrent reconcilers begin on different payments.
  const offset = ids.length ? Math.floor(Math.random() * ids.length) : 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[(i + offset) % ids.length];
    try {
      if ((await settlePayment(deps, id)) === 'done') done++;
    } catch (err) {
      deps.log.warn({ paymentId: id, err: (err as Error).message }, 'settlement step failed; will retry');
    }
  }
  return { advanced: ids.length, done };
}

/** Runs the reconciler every `intervalMs` (never two passes at once in one process) and samples the gas tanks. */
export function startSettlementReconciler(deps: SettlementDeps, intervalMs: number) {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const pass = async () => {
    try {
      await reconcileSettlements(deps);
      if (deps.gasTank) {
        for (const chain of deps.config.chains) {
          const rpc = deps.rpcFor(chain.chainId);
          if (rpc) await observeGasTank(rpc, chain.chainId, deps.gasTank, deps.config.gasTankLowBalanceWei, deps.log, deps.observer);
        }
      }
    } catch (err) {
      deps.log.warn({ err: (err as Error).message }, 'settlement reconciler pass failed; will retry');
    }
  };
  void (async () => {
    while (!stopped) {
      running = pass();
      await running;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
    },
  };
}
