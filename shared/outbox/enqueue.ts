import type { Tx } from '../db.js';
import type { QueueName } from '../queues/names.js';

export interface OutboxJob {
  queue: QueueName;
  name: string;
  /** BullMQ job id: makes relaying the same row twice harmless. No ':' (BullMQ reserves it). */
  jobId: string;
  payload: Record<string, unknown>;
  /** When the job should run; default now. */
  runAt?: Date;
}

/**
 * Writes jobs into the outbox inside the caller's transaction: they exist if and only if the change that causes
 * them commits. NOTIFY (delivered at commit) wakes the relay at once instead of at its next poll.
 */
export async function enqueueInTx(trx: Tx, jobs: OutboxJob[]): Promise<void> {
  if (jobs.length === 0) return;
  await trx('outbox').insert(
    jobs.map((j) => ({
      queue: j.queue,
      job_name: j.name,
      job_id: j.jobId,
      payload: JSON.stringify(j.payload),
      run_at: j.runAt ?? new Date(),
    })),
  );
  await trx.raw(`NOTIFY payflow_outbox`);
}
