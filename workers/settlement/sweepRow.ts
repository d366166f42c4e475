/** A sweeps row: the decision to move one payment's deposit to one destination (migration 20261126040000). */
export interface SweepRow {
  seq: number;
  id: string;
  payment_id: string;
  merchant_id: string;
  chain_id: number;
  purpose: 'settlement' | 'refund';
  token_address: string | null;
  deposit_address: string;
  to_address: string;
  status: 'pending' | 'confirmed' | 'skipped' | 'failed';
  tx_hash: string | null;
  amount: string | null;
  fee: string | null;
  network_fee: string | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  confirmed_at: Date | null;
}
