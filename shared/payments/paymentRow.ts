import type { SettlementRecord } from '../settlement/presentSettlement.js';
import type { PaymentException, PaymentStatus } from './stateMachine.js';

/** A payments row as Postgres returns it (numeric columns arrive as strings). */
export interface PaymentRow {
  seq: number;
  id: string;
  merchant_id: string;
  status: PaymentStatus;
  exception: PaymentException | null;
  chain_id: number;
  currency: string;
  token_address: string | null;
  decimals: number;
  amount: string;
  amount_received: string;
  underpaid_tolerance: string;
  resolution?: 'accept' | 'refund' | null;
  refund_address?: string | null;
  resolved_at?: Date | null;
  /** Settlement (migration 20261126040000): whose key holds the deposit, and where the funds went. */
  custody?: 'custodial' | 'non_custodial';
  settlement?: SettlementRecord | null;
  refund?: SettlementRecord | null;
  address: string;
  address_index: number;
  confirmations_required: number;
  finality_tag?: 'safe' | 'finalized' | null;
  order_id: string | null;
  metadata: Record<string, unknown>;
  checkout_url?: string | null;
  success_url?: string | null;
  cancel_url?: string | null;
  expires_at: Date;
  confirmed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface TransferRow {
  id: number;
  chain_id: number;
  tx_hash: string;
  log_index: number;
  block_number: number;
  block_hash: string;
  block_timestamp: Date;
  from_address: string;
  to_address: string;
  token_address: string | null;
  amount: string;
  counted: boolean;
  payment_id: string;
  orphaned_at: Date | null;
}
