import type { Config } from '../../shared/config.js';
import type { Db, Tx } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { enqueueInTx } from '../../shared/outbox/enqueue.js';
import { QUEUES } from '../../shared/queues/names.js';
import { webhookHeaders } from '../../shared/webhooks/signature.js';
import { disableEndpointInTx, signingSecrets, type WebhookEndpointRow } from '../../shared/webhooks/endpoints.js';
import type { WebhookDeliveryRow } from '../../shared/webhooks/deliveries.js';
import { decideRetry, isSuccessStatus, parseRetryAfter } from '../../shared/webhooks/retryPolicy.js';
import { createWebhookPoster, WebhookTransportError, type WebhookPoster } from './postWebhook.js';

export type DeliveryOutcome = 'succeeded' | 'retrying' | 'failed' | 'skipped' | 'deferred';

export type DeliverConfig = Pick<
  Config,
  'webhookTimeoutMs' | 'webhookRetrySchedule' | 'allowPrivateWebhookUrls' | 'webhookEndpointConcurrency' | 'webhookDisableAfterDays'
>;

export interface DeliverDeps {
  db: Db;
  config: DeliverConfig;
  log: Logger;
  /** Sends the request; default: the SSRF-filtering poster built from the config. */
  post?: WebhookPoster;
  onAttempt?: (outcome: DeliveryOutcome, seconds: number) => void;
  /** X-Request-Id of the API call that caused the event: retry jobs carry it on, so every attempt logs with it. */
  requestId?: string;
}

/** How long past its timeout an attempt still counts as in flight (slow commits, GC pauses). */
const IN_FLIGHT_MARGIN_MS = 2000;
/**
 * A deferred delivery is normally woken by the attempt that frees a slot; this is its fallback timer, for when
 * that wake-up is lost (a worker died mid-attempt). Spread over a second timeout so the deferred deliveries of a
 * dead endpoint do not all wake at once.
 */
const deferFallbackMs = (timeoutMs: number) => timeoutMs + IN_FLIGHT_MARGIN_MS + Math.floor(Math.random() * timeoutMs);

const posters = new WeakMap<object, WebhookPoster>();
function posterFor(config: DeliverConfig): WebhookPoster {
  let post = posters.get(config);
  if (!post) {
    post = createWebhookPoster({ allowPrivate: config.allowPrivateWebhookUrls, timeoutMs: config.webhookTimeoutMs });
    posters.set(config, post);
  }
  return post;
}

interface EventRow {
  id: string;
  type: string;
  created_at: Date;
  data: unknown;
}

type Lease =
  | { kind: 'skipped' | 'deferred' | 'failed' }
  | { kind: 'leased'; delivery: WebhookDeliveryRow; endpoint: WebhookEndpointRow; event: EventRow };

/**
 * One delivery attempt of one event to one endpoint. Postgres holds the delivery's state; the BullMQ job only
 * says "try now", so duplicate or stale jobs are harmless: each first takes a lease, conditional on the delivery
 * being pending and due.
 *
 * Fairness: an endpoint has at most WEBHOOK_ENDPOINT_CONCURRENCY attempts in flight across all workers. A job
 * that finds its endpoint's slots full does not wait (that would hold a worker slot); it marks the delivery
 * deferred and returns at once. The attempt that frees a slot wakes the oldest deferred delivery of its
 * endpoint. So a hanging endpoint ties up at most that many worker slots, and every other endpoint's deliveries
 * keep flowing.
 */
export async function deliverWebhook(deps: DeliverDeps, deliveryId: string): Promise<DeliveryOutcome> {
  const { db, config, log } = deps;
  const lease = await leaseDelivery(db, config, deliveryId);
  if (lease.kind !== 'leased') return lease.kind;
  const { delivery, endpoint, event } = lease;

  const body = JSON.stringify({ id: event.id, type: event.type, created_at: event.created_at.toISOString(), data: event.data });
  const attempt = delivery.attempts + 1;
  const startedAt = new Date();
  const started = performance.now();
  let statusCode: number | null = null;
  let retryAfter: string | undefined;
  let error: string | null = null;
  let snippet: string | null = null;
  try {
    const headers = webhookHeaders(signingSecrets(endpoint, startedAt), event.id, Math.floor(startedAt.getTime() / 1000), body);
    const res = await (deps.post ?? posterFor(config))(endpoint.url, headers, body);
    statusCode = res.statusCode;
    retryAfter = res.retryAfter;
    snippet = res.snippet;
  } catch (err) {
    error = err instanceof WebhookTransportError ? err.message : `request failed: ${(err as Error).message}`;
  }
  const durationMs = Math.round(performance.now() - started);
  const ok = isSuccessStatus(statusCode);
  if (!ok && !error) error = `HTTP ${statusCode}`;

  const outcome = await db.transaction(async (trx): Promise<DeliveryOutcome> => {
    const now = new Date();
    await trx('webhook_attempts').insert({ delivery_id: deliveryId, attempt, status_code: statusCode, duration_ms: durationMs, error, response_snippet: snippet });
    // The endpoint row lock orders this with leases and other outcomes of the same endpoint.
    const current: WebhookEndpointRow = await trx('webhook_endpoints').where({ id: endpoint.id }).forUpdate().first();
    const finish = (status: 'pending' | 'succeeded' | 'failed', nextAttemptAt: Date) =>
      trx('webhook_deliveries').where({ id: deliveryId }).update({
        status,
        attempts: attempt,
        last_status_code: statusCode,
        last_error: ok ? null : error,
        next_attempt_at: nextAttemptAt,
        in_flight_until: null,
        updated_at: now,
      });

    if (ok) {
      await finish('succeeded', now);
      if (current.failing_since) await trx('webhook_endpoints').where({ id: endpoint.id }).update({ failing_since: null });
      await wakeDeferredDelivery(trx, endpoint.id);
      return 'succeeded';
    }
    if (statusCode === 410) {
      await finish('failed', now);
      if (await disableEndpointInTx(trx, endpoint.id, 'gone', 'the endpoint answered 410 Gone')) {
        log.warn({ endpointId: endpoint.id, deliveryId }, 'webhook endpoint answered 410 Gone: disabled');
      }
      return 'failed';
    }
    const failingSince = current.failing_since ?? now;
    if (!current.failing_since) await trx('webhook_endpoints').where({ id: endpoint.id }).update({ failing_since: now });
    if (current.enabled && now.getTime() - failingSince.getTime() >= config.webhookDisableAfterDays * 86_400_000) {
      await finish('failed', now);
      const detail = `every attempt failed since ${failingSince.toISOString()}`;
      if (await disableEndpointInTx(trx, endpoint.id, 'failing', detail)) {
        log.warn({ endpointId: endpoint.id, failingSince, days: config.webhookDisableAfterDays }, 'webhook endpoint only failed for too long: disabled');
      }
      return 'failed';
    }
    const decision = decideRetry({
      attemptInRound: attempt - delivery.schedule_offset,
      schedule: config.webhookRetrySchedule,
      statusCode,
      retryAfterSeconds: parseRetryAfter(retryAfter, now),
    });
    if (!decision.retry) {
      await finish('failed', now);
      await wakeDeferredDelivery(trx, endpoint.id);
      return 'failed';
    }
    const nextAttemptAt = new Date(now.getTime() + decision.delaySeconds * 1000);
    await finish('pending', nextAttemptAt);
    await enqueueInTx(trx, [
      {
        queue: QUEUES.webhooks,
        name: 'deliver',
        jobId: `${deliveryId}-${attempt}`,
        payload: { deliveryId, ...(deps.requestId ? { requestId: deps.requestId } : {}) },
        runAt: nextAttemptAt,
      },
    ]);
    await wakeDeferredDelivery(trx, endpoint.id);
    return 'retrying';
  });
  deps.onAttempt?.(outcome, durationMs / 1000);
  log[ok ? 'debug' : 'info']({ deliveryId, eventId: event.id, endpointId: endpoint.id, attempt, statusCode, error, durationMs, outcome }, 'webhook attempt');
  return outcome;
}

/**
 * Takes the delivery's lease, or says why not. One short transaction under the endpoint's row lock, so the
 * in-flight count and the lease cannot race with another worker's.
 */
async function leaseDelivery(db: Db, config: DeliverConfig, deliveryId: string): Promise<Lease> {
  return db.transaction(async (trx): Promise<Lease> => {
    const now = new Date();
    const dueBy = new Date(now.getTime() + 1000);
    const found: WebhookDeliveryRow | undefined = await trx('webhook_deliveries').where({ id: deliveryId }).first();
    // Done, failed, leased by another attempt, or this job is stale (the delivery's next attempt is later).
    if (!found || found.status !== 'pending' || found.next_attempt_at > dueBy) return { kind: 'skipped' };

    const endpoint: WebhookEndpointRow | undefined = await trx('webhook_endpoints').where({ id: found.endpoint_id }).forUpdate().first();
    if (!endpoint || endpoint.deleted_at || !endpoint.enabled) {
      await trx('webhook_deliveries')
        .where({ id: deliveryId, status: 'pending' })
        .update({ status: 'failed', last_error: 'endpoint disabled or deleted', in_flight_until: null, deferred_at: null, updated_at: now });
      return { kind: 'failed' };
    }

    const [{ count }] = await trx('webhook_deliveries')
      .where({ endpoint_id: endpoint.id })
      .where('in_flight_until', '>', now)
      .count<{ count: string }[]>('* as count');
    if (Number(count) >= config.webhookEndpointConcurrency) {
      const wakeAt = new Date(now.getTime() + deferFallbackMs(config.webhookTimeoutMs));
      const deferred = await trx('webhook_deliveries')
        .where({ id: deliveryId, status: 'pending' })
        .where('next_attempt_at', '<=', dueBy)
        .update({ next_attempt_at: wakeAt, deferred_at: trx.raw('coalesce(deferred_at, ?)', [now]), updated_at: now });
      if (deferred > 0) {
        await enqueueInTx(trx, [
          { queue: QUEUES.webhooks, name: 'deliver', jobId: `${deliveryId}-${found.attempts}-d${wakeAt.getTime()}`, payload: { deliveryId }, runAt: wakeAt },
        ]);
      }
      return { kind: 'deferred' };
    }

    const inFlightUntil = new Date(now.getTime() + config.webhookTimeoutMs + IN_FLIGHT_MARGIN_MS);
    const [delivery]: WebhookDeliveryRow[] = await trx('webhook_deliveries')
      .where({ id: deliveryId, status: 'pending' })
      .where('next_attempt_at', '<=', dueBy)
      // next_attempt_at moves past the attempt too, so a re-queued duplicate job skips it meanwhile.
      .update({ next_attempt_at: new Date(inFlightUntil.getTime() + 30_000), in_flight_until: inFlightUntil, deferred_at: null, updated_at: now })
      .returning('*');
    if (!delivery) return { kind: 'skipped' };
    const event: EventRow = await trx('events').where({ id: delivery.event_id }).first();
    return { kind: 'leased', delivery, endpoint, event };
  });
}

/** A slot of the endpoint just freed: the delivery that has waited longest for one goes now. */
async function wakeDeferredDelivery(trx: Tx, endpointId: string): Promise<void> {
  const now = new Date();
  const [next]: { id: string; attempts: number }[] = await trx('webhook_deliveries')
    .where({ endpoint_id: endpointId, status: 'pending' })
    .whereNotNull('deferred_at')
    .whereNull('in_flight_until')
    // Still waiting on its fallback timer, i.e. not already woken by another finishing attempt.
    .where('next_attempt_at', '>', now)
    .orderBy('deferred_at')
    .limit(1)
    .forUpdate()
    .skipLocked()
    .select('id', 'attempts');
  if (!next) return;
  await trx('webhook_deliveries').where({ id: next.id }).update({ next_attempt_at: now, updated_at: now });
  await enqueueInTx(trx, [
    { queue: QUEUES.webhooks, name: 'deliver', jobId: `${next.id}-${next.attempts}-w${now.getTime()}`, payload: { deliveryId: next.id } },
  ]);
}
