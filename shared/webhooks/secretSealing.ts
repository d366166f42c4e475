import { createHash, hkdfSync } from 'node:crypto';
import { openAesGcm, sealAesGcm } from '../aesGcm.js';
import type { Db, Tx } from '../db.js';

/**
 * Webhook signing secrets at rest. A signing secret cannot be hashed like an API key: every delivery needs it to
 * sign. So it is stored sealed (AES-256-GCM) under a key the database does not hold (WEBHOOK_SECRETS_KEY), bound
 * to its endpoint's id, and opened only by a worker, at the moment it signs. A copy of the database alone (a
 * backup, a read replica, an SQL injection) gives no way to forge a delivery.
 *
 * A stored value is `v1.<key id>.<base64url(iv ‖ tag ‖ ciphertext)>`. The key id says which configured key sealed
 * it, so keys can be rotated: values sealed under a key in WEBHOOK_SECRETS_KEY_PREVIOUS still open, and every
 * worker's maintenance pass re-seals them under the current key (resealWebhookSecrets). README "Webhooks", *Secrets
 * at rest*, has the steps.
 */

const VERSION = 'v1';
/** The HKDF label: the configured key is key material for this one purpose, never used as it is. */
const PURPOSE = 'payflow webhook signing secrets v1';

/** A stored signing secret that does not open: sealed under a key this process was not given, or altered. */
export class SealedSecretError extends Error {
  override name = 'SealedSecretError';
}

interface SealingKey {
  id: string;
  key: Buffer;
}

function sealingKey(material: string): SealingKey {
  const key = Buffer.from(hkdfSync('sha256', material, '', PURPOSE, 32));
  // A digest of the derived key names it in sealed values without telling anything about it.
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

export interface WebhookSecretBox {
  seal(endpointId: string, secret: string): string;
  /** The secret, from what is stored; throws SealedSecretError when it does not open. */
  open(endpointId: string, stored: string): string;
  /** What every value sealed under the current key starts with. */
  readonly currentPrefix: string;
}

/** `keys`: the current key first (it seals), then the previous ones (they only open). */
export function createWebhookSecretBox(keys: string[]): WebhookSecretBox {
  if (keys.length === 0) throw new Error('createWebhookSecretBox: no key');
  const [current, ...previous] = keys.map(sealingKey);
  const byId = new Map([current, ...previous].map((k) => [k.id, k]));
  const currentPrefix = `${VERSION}.${current.id}.`;
  return {
    currentPrefix,
    seal: (endpointId, secret) => currentPrefix + sealAesGcm(current.key, secret, endpointId).toString('base64url'),
    open(endpointId, stored) {
      // Written before secrets were sealed: readable until a worker's maintenance pass re-seals it.
      if (stored.startsWith('whsec_')) return stored;
      const [version, keyId, body] = stored.split('.');
      const k = version === VERSION ? byId.get(keyId) : undefined;
      if (!k || !body) {
        throw new SealedSecretError(
          `webhook endpoint ${endpointId}: its signing secret is sealed under a key that is neither WEBHOOK_SECRETS_KEY nor in WEBHOOK_SECRETS_KEY_PREVIOUS (key id ${keyId ?? 'none'})`,
        );
      }
      try {
        return openAesGcm(k.key, Buffer.from(body, 'base64url'), endpointId);
      } catch {
        throw new SealedSecretError(`webhook endpoint ${endpointId}: its sealed signing secret does not open (altered, or sealed for another endpoint)`);
      }
    },
  };
}

/**
 * Re-seals, under the current key, every stored signing secret that is not yet under it: values from before
 * sealing existed, and values sealed under a previous key. Each row is updated only if it still holds what was
 * read, so a rotation or another worker doing the same at the same moment wins and nothing is overwritten with a
 * stale secret. A value that does not open is left as it is (its deliveries fail until the key that sealed it is
 * configured again) and its endpoint is returned in `unreadable`.
 */
export async function resealWebhookSecrets(db: Db | Tx, box: WebhookSecretBox): Promise<{ resealed: number; unreadable: string[] }> {
  const sealedNow = `${box.currentPrefix}%`;
  const stale: { id: string; secret: string; previous_secret: string | null }[] = await db('webhook_endpoints')
    .select('id', 'secret', 'previous_secret')
    .whereNot('secret', 'like', sealedNow)
    .orWhere((q) => q.whereNotNull('previous_secret').whereNot('previous_secret', 'like', sealedNow));
  const reseal = (id: string, stored: string) => (stored.startsWith(box.currentPrefix) ? stored : box.seal(id, box.open(id, stored)));
  let resealed = 0;
  const unreadable: string[] = [];
  for (const row of stale) {
    let secret: string;
    let previous: string | null;
    try {
      secret = reseal(row.id, row.secret);
      previous = row.previous_secret === null ? null : reseal(row.id, row.previous_secret);
    } catch (err) {
      if (!(err instanceof SealedSecretError)) throw err;
      unreadable.push(row.id);
      continue;
    }
    resealed += await db('webhook_endpoints')
      .where({ id: row.id, secret: row.secret })
      .where((q) => (row.previous_secret === null ? q.whereNull('previous_secret') : q.where('previous_secret', row.previous_secret)))
      .update({ secret, previous_secret: previous });
  }
  return { resealed, unreadable };
}
