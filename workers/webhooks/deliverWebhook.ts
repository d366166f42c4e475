import type { Config } from '../../shared/config.js';
import type { Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { enqueueInTx } from '../../shared/outbox/enqueue.js';
import { QUEUES } from '../../shared/queues/names.js';
import { webhookHeaders } from '../../shared/webhooks/signature.js';

export type DeliveryOutcome = 'succeeded' | 'retrying' | 'failed' | 'skipped';

export interface DeliverDeps {
  db: Db;
  config: Pick<Config, 'webhookTimeoutMs' | 'webhookRetrySchedule'>;
  log: Logger;
  onAttempt?: (outcome: DeliveryOutcome, seconds: number) => void;
}

/**
 * One delivery attempt of one event to one endpoint. Postgres holds the delivery's state; the BullMQ job only
 * says "try now". Before the attempt the delivery is leased (next_attempt_at pushed past the timeout) so a
 * reconciler does not start a second attempt meanwhile; after it, the outcome and the next retry (as an outbox
 * job) are written in one transaction. The `webhook-id` is the event id, the same on every retry, so receivers
 * can de-duplicate.
 */
export async function deliverWebhook(deps: DeliverDeps, deliveryId: string): Promise<DeliveryOutcome> {
  const { db, config, log } = deps;
  const leaseUntil = new Date(Date.now() + config.webhookTimeoutMs + 30_000);
  const leased = await db('webhook_deliveries')
    .where({ id: deliveryId, status: 'pending' })
    .where('next_attempt_at', '<=', new Date(Date.now() + 1000))
    .update({ next_attempt_at: leaseUntil, updated_at: db.fn.now() })
    .returning('*');
  if (leased.length === 0) return 'skipped'; // done, failed, or another attempt holds the lease
  const delivery = leased[0];
  const endpoint = await db('webhook_endpoints').where({ id: delivery.endpoint_id }).first();
  const event = await db('events').where({ id: delivery.event_id }).first();
  if (!endpoint || endpoint.deleted_at || !endpoint.enabled) {
    await db('webhook_deliveries').where({ id: deliveryId }).update({ status: 'failed', last_error: 'endpoint disabled or deleted', updated_at: db.fn.now() });
    return 'failed';
  }

  const body = JSON.stringify({ id: event.id, type: event.type, created_at: (event.created_at as Date).toISOString(), data: event.data });
  const attempt = delivery.attempts + 1;
  const started = performance.now();
  let statusCode: number | null = null;
  let error: string | null = null;
  let snippet: string | null = null;
  try {
    const res = await fetch(endpoint.url, {
      method: 'POST',
      headers: webhookHeaders([endpoint.secret], event.id, Math.floor(Date.now() / 1000), body),
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(config.webhookTimeoutMs),
    });
    statusCode = res.status;
    snippet = (await res.text().catch(() => '')).slice(0, 512);
  } catch (err) {
    error = (err as Error).name === 'TimeoutError' ? `timeout after ${config.webhookTimeoutMs} ms` : (err as Error).message;
  }
  const durationMs = Math.round(performance.now() - started);
  const ok = statusCode !== null && statusCode >= 200 && statusCode < 300;
  if (!ok && !error) error = `HTTP ${statusCode}`;

  const schedule = config.webhookRetrySchedule;
  const outcome: DeliveryOutcome = ok ? 'succeeded' : attempt > schedule.length ? 'failed' : 'retrying';
  await db.transaction(async (trx) => {
    await trx('webhook_attempts').insert({ delivery_id: deliveryId, attempt, status_code: statusCode, duration_ms: durationMs, error, response_snippet: snippet });
    const nextAttemptAt = outcome === 'retrying' ? new Date(Date.now() + schedule[attempt - 1] * 1000) : new Date();
    await trx('webhook_deliveries').where({ id: deliveryId }).update({
      status: outcome === 'retrying' ? 'pending' : outcome,
      attempts: attempt,
      last_status_code: statusCode,
      last_error: ok ? null : error,
      next_attempt_at: nextAttemptAt,
      updated_at: trx.fn.now(),
    });
    if (outcome === 'retrying') {
      await enqueueInTx(trx, [
        { queue: QUEUES.webhooks, name: 'deliver', jobId: `${deliveryId}-${attempt}`, payload: { deliveryId }, runAt: nextAttemptAt },
      ]);
    }
  });
  deps.onAttempt?.(outcome, durationMs / 1000);
  log[ok ? 'debug' : 'info']({ deliveryId, eventId: event.id, attempt, statusCode, error, durationMs, outcome }, 'webhook attempt');
  return outcome;
}
