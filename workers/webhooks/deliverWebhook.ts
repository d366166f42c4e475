import type { Config } from '../../shared/config.js';
import type { Db, Tx } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { enqueueInTx } from '../../shared/outbox/enqueue.js';
import { queryPrepared } from '../../shared/preparedQuery.js';
import { QUEUES } from '../../shared/queues/names.js';
import { webhookHeaders } from '../../shared/webhooks/signature.js';
import { disableEndpointInTx, signingSecrets, type WebhookEndpointRow } from '../../shared/webhooks/endpoints.js';
import { decideRetry, isSuccessStatus, parseRetryAfter } from '../../shared/webhooks/retryPolicy.js';
import { SealedSecretError, type WebhookSecretBox } from '../../shared/webhooks/secretSealing.js';
import { createWebhookPoster, WebhookTransportError, type WebhookPoster } from './postWebhook.js';

export type DeliveryOutcome = 'succeeded' | 'retrying' | 'failed' | 'skipped' | 'deferred';

export type DeliverConfig = Pick<
  Config,
  'webhookTimeoutMs' | 'webhookRetrySchedule' | 'allowPrivateWebhookUrls' | 'webhookEndpointConcurrency' | 'webhookDisableAfterDays'
>;

export interface DeliverDeps {
  db: Db;
  config: DeliverConfig;
  /** Opens the endpoint's stored (sealed) signing secrets. */
  secrets: WebhookSecretBox;
  log: Logger;
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

/** What an attempt needs, as webhook_lease_delivery returns it when it takes the lease. */
interface LeasedDelivery {
  attempts: number;
  schedule_offset: number;
  endpoint_id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  event_id: string;
  event_type: string;
  event_created_at: Date;
  event_data: unknown;
}

type Lease = { kind: 'skipped' | 'deferred' | 'failed' } | { kind: 'leased'; delivery: LeasedDelivery };

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
  const { delivery } = lease;
  const endpoint = { id: delivery.endpoint_id, url: delivery.url };
  const event = { id: delivery.event_id, type: delivery.event_type };

  const body = JSON.stringify({ id: event.id, type: event.type, created_at: delivery.event_created_at.toISOString(), data: delivery.event_data });
  const attempt = delivery.attempts + 1;
  const startedAt = new Date();
  const started = performance.now();
  let statusCode: number | null = null;
  let retryAfter: string | undefined;
  let error: string | null = null;
  let snippet: string | null = null;
  try {
    const secrets = signingSecrets(delivery, startedAt).map((stored) => deps.secrets.open(endpoint.id, stored));
    const headers = webhookHeaders(secrets, event.id, Math.floor(startedAt.getTime() / 1000), body);
    const res = await posterFor(config)(endpoint.url, headers, body);
    statusCode = res.statusCode;
    retryAfter = res.retryAfter;
    snippet = res.snippet;
  } catch (err) {
    if (err instanceof SealedSecretError) {
      // Nothing was sent: an unsigned or wrongly signed delivery is worse than a late one. Retried like any failure.
      // The merchant sees the attempt; which key is missing is for the operator's log.
      error = 'not sent: the signing secret could not be read (server configuration); retrying';
      log.error({ deliveryId, endpointId: endpoint.id, err: err.message }, 'webhook signing secret does not open');
    } else {
      error = err instanceof WebhookTransportError ? err.message : `request failed: ${(err as Error).message}`;
    }
  }
  const durationMs = Math.round(performance.now() - started);
  const ok = isSuccessStatus(statusCode);
  if (!ok && !error) error = `HTTP ${statusCode}`;

  const outcome: DeliveryOutcome = ok
    ? await recordSuccess(db, { deliveryId, endpointId: endpoint.id, attempt, statusCode: statusCode!, durationMs, snippet })
    : await recordFailure(deps, { deliveryId, endpointId: endpoint.id, attempt, scheduleOffset: delivery.schedule_offset, statusCode, retryAfter, error, durationMs, snippet });
  deps.onAttempt?.(outcome, durationMs / 1000);
  log[ok ? 'debug' : 'info']({ deliveryId, eventId: event.id, endpointId: endpoint.id, attempt, statusCode, error, durationMs, outcome }, 'webhook attempt');
  return outcome;
}

/**
 * A 2xx: one call of webhook_record_success (migrations/20261126070000_webhook_endpoint_slots_lock.ts), which
 * clears the endpoint's failing_since, logs the attempt, marks the delivery succeeded and then, under the
 * endpoint's slots lock, wakes a deferred delivery, in one round trip.
 */
async function recordSuccess(
  db: Db,
  a: { deliveryId: string; endpointId: string; attempt: number; statusCode: number; durationMs: number; snippet: string | null },
): Promise<'succeeded'> {
  await queryPrepared(db, 'webhook_record_success', 'SELECT webhook_record_success($1, $2, $3, $4, $5, $6, $7, $8)', [
    a.deliveryId,
    a.endpointId,
    a.attempt,
    a.statusCode,
    a.durationMs,
    a.snippet,
    new Date(),
    QUEUES.webhooks,
  ]);
  return 'succeeded';
}

/** Anything but a 2xx: log the attempt, then retry, give up, or disable the endpoint (410, or failing too long). */
async function recordFailure(
  deps: DeliverDeps,
  a: {
    deliveryId: string;
    endpointId: string;
    attempt: number;
    scheduleOffset: number;
    statusCode: number | null;
    retryAfter: string | undefined;
    error: string | null;
    durationMs: number;
    snippet: string | null;
  },
): Promise<DeliveryOutcome> {
  const { db, config, log } = deps;
  const { deliveryId, attempt, statusCode, error, durationMs, snippet } = a;
  const endpoint = { id: a.endpointId };
  return db.transaction(async (trx): Promise<DeliveryOutcome> => {
    const now = new Date();
    await trx('webhook_attempts').insert({ delivery_id: deliveryId, attempt, status_code: statusCode, duration_ms: durationMs, error, response_snippet: snippet });
    // The endpoint's row lock orders this with the other outcomes that move its failure clock or disable it. (Leases
    // and wake-ups are ordered by the endpoint's slots lock, taken last, in webhook_wake_deferred.) NO KEY UPDATE,
    // as an UPDATE of the row takes: FOR UPDATE would also block the foreign-key check of every delivery inserted
    // for the endpoint meanwhile, so each failed attempt stalled the merchant's payment creation, and with it every
    // payment batched in the same statement (createPayment.ts).
    const current: WebhookEndpointRow = await trx('webhook_endpoints').where({ id: endpoint.id }).forNoKeyUpdate().first();
    const finish = (status: 'pending' | 'failed', nextAttemptAt: Date) =>
      trx('webhook_deliveries').where({ id: deliveryId }).update({
        status,
        attempts: attempt,
        last_status_code: statusCode,
        last_error: error,
        next_attempt_at: nextAttemptAt,
        in_flight_until: null,
        updated_at: now,
      });
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
      attemptInRound: attempt - a.scheduleOffset,
      schedule: config.webhookRetrySchedule,
      statusCode,
      retryAfterSeconds: parseRetryAfter(a.retryAfter, now),
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
}

/**
 * Takes the delivery's lease, or says why not: one call of webhook_lease_delivery
 * (migrations/20261126070000_webhook_endpoint_slots_lock.ts), which skips a delivery no longer pending and due,
 * locks it, reads its endpoint, then takes the endpoint's slots lock, counts the attempts in flight against
 * WEBHOOK_ENDPOINT_CONCURRENCY, and leases or defers the delivery with one update. Under that lock, held to commit,
 * the count cannot race with another worker's lease or outcome.
 */
async function leaseDelivery(db: Db, config: DeliverConfig, deliveryId: string): Promise<Lease> {
  const now = new Date();
  // A job may run a little before its delivery's next_attempt_at (clocks of the relaying and running processes).
  const dueBy = new Date(now.getTime() + 1000);
  const inFlightUntil = new Date(now.getTime() + config.webhookTimeoutMs + IN_FLIGHT_MARGIN_MS);
  const rows = await queryPrepared<LeasedDelivery & { outcome: Lease['kind'] }>(
    db,
    'webhook_lease_delivery',
    'SELECT * FROM webhook_lease_delivery($1, $2, $3, $4, $5, $6, $7, $8)',
    [
      deliveryId,
      now,
      dueBy,
      config.webhookEndpointConcurrency,
      inFlightUntil,
      new Date(inFlightUntil.getTime() + 30_000),
      new Date(now.getTime() + deferFallbackMs(config.webhookTimeoutMs)),
      QUEUES.webhooks,
    ],
  );
  const [row] = rows;
  if (!row) throw new Error(`webhook delivery ${deliveryId}: leased without its event`); // events are referenced by a foreign key
  return row.outcome === 'leased' ? { kind: 'leased', delivery: row } : { kind: row.outcome };
}

/** A slot of the endpoint just freed: the delivery that has waited longest goes now (under the endpoint's slots lock). */
async function wakeDeferredDelivery(trx: Tx, endpointId: string): Promise<void> {
  await trx.raw('SELECT webhook_wake_deferred(?, ?, ?)', [endpointId, new Date(), QUEUES.webhooks]);
}
