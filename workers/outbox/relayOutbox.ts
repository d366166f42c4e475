import pg from 'pg';
import type { Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import type { Queues } from '../../shared/queues/redis.js';
import type { QueueName } from '../../shared/queues/names.js';
import { withTimeout } from '../../shared/withTimeout.js';

interface OutboxRow {
  id: number;
  queue: QueueName;
  job_name: string;
  job_id: string;
  payload: Record<string, unknown>;
  run_at: Date;
  created_at: Date;
}

const RELAY_BATCH = 500;
const RELAY_COALESCE_MS = 10;

/**
 * Moves committed outbox rows into BullMQ. Rows are claimed with SKIP LOCKED, so many relays run at once without
 * sending a row twice at the same time; a row is deleted only in the transaction that saw BullMQ accept it. If
 * the process dies between BullMQ accepting and the commit, the row is relayed again with the same job id,
 * which BullMQ ignores while the first job exists, and every job handler is idempotent besides.
 */
export async function relayOutboxBatch(
  db: Db,
  queues: Queues,
  batch = RELAY_BATCH,
  addTimeoutMs = 5000,
): Promise<{ relayed: number; oldestLagSeconds: number }> {
  return db.transaction(async (trx) => {
    // Claimed and deleted in one statement; the delete only commits once BullMQ has accepted the jobs.
    const { rows } = (await trx.raw(
      `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING *`,
      [batch],
    )) as { rows: OutboxRow[] };
    if (rows.length === 0) return { relayed: 0, oldestLagSeconds: 0 };
    rows.sort((a, b) => a.id - b.id);
    const byQueue = new Map<QueueName, OutboxRow[]>();
    for (const r of rows) {
      const list = byQueue.get(r.queue);
      if (list) list.push(r);
      else byQueue.set(r.queue, [r]);
    }
    const now = Date.now();
    // A Redis that is down makes BullMQ wait for a connection; bound the wait so the transaction (and the row
    // locks it holds) ends, and the rows are retried by the next pass.
    await withTimeout(
      Promise.all(
        [...byQueue].map(([queue, list]) =>
          queues[queue].addBulk(
            list.map((r) => ({
              name: r.job_name,
              data: r.payload,
              opts: { jobId: r.job_id, delay: Math.max(0, r.run_at.getTime() - now) },
            })),
          ),
        ),
      ),
      addTimeoutMs,
      `Redis did not accept the jobs within ${addTimeoutMs} ms`,
    );
    return { relayed: rows.length, oldestLagSeconds: (now - rows[0].created_at.getTime()) / 1000 };
  });
}

export interface OutboxRelay {
  stop(): Promise<void>;
}

/** Runs the relay: woken by NOTIFY at commit, with a poll as a safety net; backs off while Redis is down. */
export function startOutboxRelay(opts: {
  db: Db;
  databaseUrl: string;
  queues: Queues;
  log: Logger;
  pollIntervalMs: number;
  onBatch?: (r: { relayed: number; oldestLagSeconds: number }) => void;
}): OutboxRelay {
  const { db, queues, log } = opts;
  let stopped = false;
  let wake: (() => void) | null = null;
  let listener: pg.Client | null = null;
  let failures = 0;

  const connectListener = async () => {
    try {
      const client = new pg.Client({ connectionString: opts.databaseUrl, application_name: 'payflow-outbox-listen' });
      client.on('error', () => {
        listener = null; // reconnect on the next loop turn; the poll covers the gap
      });
      client.on('notification', () => wake?.());
      await client.connect();
      await client.query('LISTEN payflow_outbox');
      listener = client;
    } catch (err) {
      log.debug({ err }, 'outbox listener not connected');
    }
  };

  const loop = (async () => {
    while (!stopped) {
      if (!listener) await connectListener();
      let relayed = 0;
      try {
        const r = await relayOutboxBatch(db, queues);
        relayed = r.relayed;
        if (r.relayed > 0) opts.onBatch?.(r);
        failures = 0;
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 30 === 0) log.warn({ err: (err as Error).message }, 'outbox relay failed; retrying');
      }
      if (stopped) break;
      if (relayed >= RELAY_BATCH) continue; // a backlog: drain without waiting
      if (relayed > 0) {
        // Under a steady stream of commits, pause a moment so the next pass carries many rows instead of one:
        // a pass is a transaction and a Redis call whatever its size. An isolated event waits no longer than before.
        await new Promise((resolve) => setTimeout(resolve, RELAY_COALESCE_MS));
        continue;
      }
      const waitMs = failures > 0 ? Math.min(5000, 100 * 2 ** failures) : opts.pollIntervalMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  })();

  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      await listener?.end().catch(() => {});
    },
  };
}
