import type { Db } from '../db.js';

export interface MerchantSettings {
  xpub: string | null;
  /** As Postgres prints numeric(5,2), e.g. "0.50". */
  underpaidTolerancePercent: string;
}

const MAX_ENTRIES = 10_000;

/**
 * The merchant settings payment creation needs, cached per process with no expiry: the one-statement create
 * (createPayment.ts) inserts only while the merchant row still holds the cached values, and drops the entry
 * (`forget`) when it does not, so a stale entry costs one retry, never a wrong payment.
 */
export function createMerchantSettingsCache(db: Db) {
  const cache = new Map<string, MerchantSettings>();
  return {
    async get(merchantId: string): Promise<MerchantSettings | undefined> {
      const hit = cache.get(merchantId);
      if (hit) return hit;
      const row: { xpub: string | null; underpaid_tolerance_percent: string } | undefined = await db('merchants')
        .select('xpub', 'underpaid_tolerance_percent')
        .where({ id: merchantId })
        .first();
      if (!row) return undefined;
      if (cache.size >= MAX_ENTRIES) cache.clear(); // bounded: many merchants cost reloads, not memory
      const settings = { xpub: row.xpub, underpaidTolerancePercent: String(row.underpaid_tolerance_percent) };
      cache.set(merchantId, settings);
      return settings;
    },
    forget(merchantId: string): void {
      cache.delete(merchantId);
    },
  };
}

export type MerchantSettingsCache = ReturnType<typeof createMerchantSettingsCache>;
