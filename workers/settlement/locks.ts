import type { Db } from '../../shared/db.js';

/**
 * Postgres session advisory locks, held on one pooled connection for the duration of a settlement step:
 *  - one per payment (try-lock): a single worker advances a given sweep at a time, the others skip it;
 *  - one per chain's gas tank (blocking): the tank's nonces are assigned, stored and broadcast in order by one
 *    worker at a time, whatever the number of worker processes.
 * Taken in that order only (payment, then tank), so they cannot deadlock. A killed worker's connection closes and
 * Postgres releases its locks at once. The sweep tables' unique constraints are the second line of defence: even
 * a lost lock cannot store two different transactions for one nonce.
 */
const SWEEP_LOCK_SPACE = 0x5eed;
const GAS_TANK_LOCK_SPACE = 0x6a57;

interface PgConnection {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface SweepLock {
  /** Runs `fn` holding the chain's gas-tank lock (waits for it). */
  withGasTank<T>(chainId: number, fn: () => Promise<T>): Promise<T>;
}

/** Runs `fn` holding the payment's sweep lock; returns `busy` when another worker holds it. */
export async function withSweepLock<T>(db: Db, paymentId: string, fn: (lock: SweepLock) => Promise<T>): Promise<T | 'busy'> {
  const client = db.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<void> };
  const conn = await client.acquireConnection();
  try {
    const { rows } = await conn.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [SWEEP_LOCK_SPACE, paymentId]);
    if (!rows[0].locked) return 'busy';
    try {
      return await fn({
        async withGasTank(chainId, inner) {
          await conn.query('SELECT pg_advisory_lock($1, $2)', [GAS_TANK_LOCK_SPACE, chainId]);
          try {
            return await inner();
          } finally {
            await conn.query('SELECT pg_advisory_unlock($1, $2)', [GAS_TANK_LOCK_SPACE, chainId]);
          }
        },
      });
    } finally {
      await conn.query('SELECT pg_advisory_unlock_all()');
    }
  } finally {
    await client.releaseConnection(conn);
  }
}
