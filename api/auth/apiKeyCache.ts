import type { Db } from '../../shared/db.js';
import { findActiveApiKey, hashApiKey, type AuthenticatedKey } from '../../shared/merchants/apiKeys.js';

/**
 * A short-lived, in-process cache of verified API keys, so a hot key does not cost a Postgres query per request.
 * Only hits are cached (a key created a moment ago works at once), by the key's hash (the key itself is never
 * kept), for `ttlMs`: a key revoked by another API process stops working within that time; this process forgets it
 * at once (`forget`). JWTs are checked against the key that issued them through `isActive`, cached the same way.
 */
export interface ApiKeyCache {
  findActive(apiKey: string): Promise<AuthenticatedKey | null>;
  /** Whether the key with this id is still active (for JWTs issued from it). */
  isActive(keyId: string): Promise<boolean>;
  /** The key, if this exact credential is an API key this process verified within the cache TTL (no I/O). */
  knownActive(apiKey: string): AuthenticatedKey | undefined;
  /** Drops a key from this process's cache (after a revocation here). */
  forget(keyId: string): void;
}

const MAX_ENTRIES = 10_000;

export function createApiKeyCache(db: Db, ttlMs: number): ApiKeyCache {
  const byHash = new Map<string, { key: AuthenticatedKey; until: number }>();
  const activeById = new Map<string, number>();
  const remember = <K, V>(map: Map<K, V>, k: K, v: V) => {
    if (map.size >= MAX_ENTRIES) map.clear(); // crude but bounded: a flood of distinct keys cannot grow memory
    map.set(k, v);
  };
  return {
    async findActive(apiKey) {
      const hash = hashApiKey(apiKey);
      const hit = byHash.get(hash);
      if (hit && hit.until > Date.now()) return hit.key;
      const key = await findActiveApiKey(db, apiKey);
      if (!key) {
        byHash.delete(hash);
        return null;
      }
      if (ttlMs > 0) {
        remember(byHash, hash, { key, until: Date.now() + ttlMs });
        remember(activeById, key.keyId, Date.now() + ttlMs);
      }
      return key;
    },
    async isActive(keyId) {
      const until = activeById.get(keyId);
      if (until && until > Date.now()) return true;
      const row = await db('api_keys').select('id').where({ id: keyId }).whereNull('revoked_at').first();
      if (!row) {
        activeById.delete(keyId);
        return false;
      }
      if (ttlMs > 0) remember(activeById, keyId, Date.now() + ttlMs);
      return true;
    },
    knownActive(apiKey) {
      const hit = byHash.get(hashApiKey(apiKey));
      return hit !== undefined && hit.until > Date.now() ? hit.key : undefined;
    },
    forget(keyId) {
      activeById.delete(keyId);
      for (const [hash, entry] of byHash) if (entry.key.keyId === keyId) byHash.delete(hash);
    },
  };
}
