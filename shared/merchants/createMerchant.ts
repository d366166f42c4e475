import type { Db } from '../db.js';
import { newId } from '../ids.js';
import { insertApiKey } from './apiKeys.js';

export interface NewMerchant {
  id: string;
  name: string;
  settlement_address: string | null;
  api_key: string;
  created_at: string;
}

/** Creates a merchant and its first API key (returned once; only its hash is stored). */
export async function createMerchant(
  db: Db,
  input: {
    name: string;
    settlementAddress?: string | null;
    mode: 'live' | 'test';
    apiKey?: string;
    underpaidTolerancePercent?: string;
    latePaymentWindowSeconds?: number;
  },
): Promise<NewMerchant> {
  return db.transaction(async (trx) => {
    const id = newId('mer');
    const [row] = await trx('merchants')
      .insert({
        id,
        name: input.name,
        settlement_address: input.settlementAddress ?? null,
        underpaid_tolerance_percent: input.underpaidTolerancePercent ?? '0',
        late_payment_window_seconds: input.latePaymentWindowSeconds ?? 86400,
      })
      .returning('*');
    const { key } = await insertApiKey(trx, id, { mode: input.mode, key: input.apiKey });
    return { id, name: row.name, settlement_address: row.settlement_address, api_key: key, created_at: row.created_at.toISOString() };
  });
}
