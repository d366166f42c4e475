import type { Db, Tx } from '../db.js';
import { recordEvent } from '../events/recordEvent.js';
import { PAYMENT_EVENT_TYPES } from '../payments/stateMachine.js';

/** Events about webhook endpoints themselves, which an endpoint may subscribe to like payment events. */
export const WEBHOOK_ENDPOINT_EVENT_TYPES = ['webhook_endpoint.disabled'] as const;
/** Sent by POST /webhook-endpoints/:id/test to that endpoint only, whatever it subscribed to. */
export const WEBHOOK_TEST_EVENT_TYPE = 'webhook.test';
/** Every type an endpoint can list in `events` (besides `*`). */
export const SUBSCRIBABLE_EVENT_TYPES: readonly string[] = [...PAYMENT_EVENT_TYPES, ...WEBHOOK_ENDPOINT_EVENT_TYPES];

/** How long the previous secret keeps signing after a rotation. */
export const SECRET_ROTATION_GRACE_SECONDS = 24 * 3600;

export type EndpointDisabledReason = 'gone' | 'failing' | 'merchant';

export interface WebhookEndpointRow {
  seq: number;
  id: string;
  merchant_id: string;
  url: string;
  events: string[];
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  enabled: boolean;
  failing_since: Date | null;
  disabled_reason: EndpointDisabledReason | null;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/** The API's webhook endpoint object (the secret is shown only on creation and rotation). */
export const presentEndpoint = (r: WebhookEndpointRow) => ({
  id: r.id,
  object: 'webhook_endpoint' as const,
  url: r.url,
  events: r.events.length ? r.events : ['*'],
  enabled: r.enabled,
  disabled_reason: r.disabled_reason,
  disabled_at: r.disabled_at?.toISOString() ?? null,
  failing_since: r.failing_since?.toISOString() ?? null,
  created_at: r.created_at.toISOString(),
});

/**
 * The secrets that sign a delivery now: the current one and, during the grace period after a rotation, the
 * previous one, so a receiver still verifying with the old secret keeps accepting while it switches over.
 */
export function signingSecrets(endpoint: Pick<WebhookEndpointRow, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>, now: Date): string[] {
  const previousValid = endpoint.previous_secret && endpoint.previous_secret_expires_at && endpoint.previous_secret_expires_at > now;
  return previousValid ? [endpoint.secret, endpoint.previous_secret!] : [endpoint.secret];
}

/**
 * Disables an endpoint in the caller's transaction: its pending deliveries fail (nothing will be sent there until
 * the merchant re-enables it and, if they want, redelivers), and a `webhook_endpoint.disabled` event is recorded
 * (delivered to the merchant's other endpoints that subscribe to it). Conditional: returns false when the
 * endpoint was already disabled, so two workers seeing the same 410 record one event.
 */
export async function disableEndpointInTx(trx: Tx, endpointId: string, reason: EndpointDisabledReason, detail: string): Promise<boolean> {
  const [row]: WebhookEndpointRow[] = await trx('webhook_endpoints')
    .where({ id: endpointId, enabled: true })
    .update({ enabled: false, disabled_reason: reason, disabled_at: trx.fn.now(), updated_at: trx.fn.now() })
    .returning('*');
  if (!row) return false;
  await trx('webhook_deliveries')
    .where({ endpoint_id: endpointId, status: 'pending' })
    .update({ status: 'failed', last_error: `endpoint disabled: ${detail}`, in_flight_until: null, updated_at: trx.fn.now() });
  if (reason !== 'merchant') {
    await recordEvent(trx, {
      merchantId: row.merchant_id,
      type: 'webhook_endpoint.disabled',
      data: { ...presentEndpoint(row), reason: detail },
    });
  }
  return true;
}

/** Loads an endpoint that belongs to the merchant and is not deleted. */
export function findMerchantEndpoint(db: Db | Tx, merchantId: string, endpointId: string): Promise<WebhookEndpointRow | undefined> {
  return db('webhook_endpoints').where({ id: endpointId, merchant_id: merchantId }).whereNull('deleted_at').first();
}
