import type { ChainConfig } from '../config.js';
import { findAsset } from '../config.js';
import type { Db } from '../db.js';
import { ApiError, AmountError, invalidRequest } from '../errors.js';
import { recordEvent } from '../events/recordEvent.js';
import { newId } from '../ids.js';
import { parseAmount } from '../money.js';
import { allocateDepositAddress } from '../settlement/depositAddress.js';
import type { DepositWallet } from '../wallet/hdWallet.js';
import type { PaymentRow } from './paymentRow.js';
import { presentPayment, type PaymentObject } from './present.js';

export interface CreatePaymentInput {
  amount: string;
  currency: string;
  chainId?: number;
  orderId?: string;
  metadata?: Record<string, unknown>;
  expiresIn?: number;
  confirmations?: number;
  /** Where the checkout page sends the customer once paid, and while pending offers to go back to. */
  successUrl?: string;
  cancelUrl?: string;
  /** Shortfall accepted as paid: a percentage of the amount ("0.5") and/or an amount in the asset's units. */
  underpaidTolerancePercent?: string;
  underpaidToleranceAmount?: string;
}

export interface CreatePaymentDeps {
  db: Db;
  chains: ChainConfig[];
  wallet: DepositWallet;
  defaultExpiresIn: number;
  /** PUBLIC_URL: the base of checkout_url. */
  publicUrl: string;
}

const scannedChains = new Set<number>();

/**
 * A chain's cursor is created by the first worker that starts on it, at the head at that moment. A payment created
 * before that could be paid in a block the scanner will never look at, so until the cursor exists we say
 * "not yet" instead of taking the payment. Once seen, a cursor never goes away: the answer is cached.
 */
async function assertChainScanned(db: Db, chainId: number): Promise<void> {
  if (scannedChains.has(chainId)) return;
  const cursor = await db('chain_cursors').where({ chain_id: chainId }).first('chain_id');
  if (!cursor) {
    throw new ApiError(503, 'service_unavailable_error', 'chain_not_ready', `Chain ${chainId} is not being scanned yet (no worker has started on it); retry shortly`);
  }
  scannedChains.add(chainId);
}

/** Picks the chain and asset a payment is for; a currency offered on several chains needs chain_id. */
export function resolveChainAsset(chains: ChainConfig[], currency: string, chainId?: number) {
  if (chainId !== undefined) {
    const chain = chains.find((c) => c.chainId === chainId);
    if (!chain) throw invalidRequest('chain_unsupported', `chain ${chainId} is not configured`, 'chain_id');
    const asset = findAsset(chain, currency);
    if (!asset) throw invalidRequest('currency_unsupported', `${currency} is not accepted on chain ${chainId}`, 'currency');
    return { chain, asset };
  }
  const offered = chains.filter((c) => findAsset(c, currency));
  if (offered.length === 0) throw invalidRequest('currency_unsupported', `currency ${currency} is not accepted`, 'currency');
  if (offered.length > 1) {
    throw invalidRequest('chain_required', `${currency} is accepted on several chains; give chain_id`, 'chain_id');
  }
  return { chain: offered[0], asset: findAsset(offered[0], currency)! };
}

/**
 * Creates a pending payment with its own deposit address. The address index comes from a Postgres sequence, so
 * no two payments ever share an address, whatever the number of API processes. The row and its
 * `payment.created` event commit together.
 */
export async function createPayment(
  deps: CreatePaymentDeps,
  merchantId: string,
  input: CreatePaymentInput,
  requestId?: string,
): Promise<PaymentObject> {
  const { chain, asset } = resolveChainAsset(deps.chains, input.currency, input.chainId);
  let amount: bigint;
  try {
    amount = parseAmount(input.amount, asset.decimals);
  } catch (err) {
    if (err instanceof AmountError) throw invalidRequest(err.code, err.message, 'amount');
    throw err;
  }
  const parseTolerance = (value: string, param: string) => {
    try {
      return parseAmount(value, asset.decimals);
    } catch (err) {
      if (err instanceof AmountError) throw invalidRequest(err.code, err.message, param);
      throw err;
    }
  };
  const toleranceAmount = input.underpaidToleranceAmount ? parseTolerance(input.underpaidToleranceAmount, 'underpaid_tolerance_amount') : 0n;
  if (toleranceAmount >= amount) throw invalidRequest('parameter_invalid', 'underpaid_tolerance_amount must be below amount', 'underpaid_tolerance_amount');
  const confirmations = input.confirmations ?? (typeof chain.confirmations === 'number' ? chain.confirmations : 0);
  const expiresIn = input.expiresIn ?? deps.defaultExpiresIn;

  await assertChainScanned(deps.db, chain.chainId);
  return deps.db.transaction(async (trx) => {
    // PayFlow's own seed, or the merchant's xpub in non-custodial mode (shared/settlement/depositAddress.ts).
    const deposit = await allocateDepositAddress(trx, merchantId, deps.wallet);
    // Tolerance is fixed at creation: the payment's own percent, else the merchant's; the larger of percent and amount.
    const merchant = await trx('merchants').select('underpaid_tolerance_percent').where({ id: merchantId }).first();
    const underpaidTolerance = toleranceFor(amount, input.underpaidTolerancePercent ?? String(merchant?.underpaid_tolerance_percent ?? '0'), toleranceAmount);
    const id = newId('pay');
    const [row]: PaymentRow[] = await trx('payments')
      .insert({
        id,
        merchant_id: merchantId,
        status: 'pending',
        chain_id: chain.chainId,
        currency: asset.symbol,
        token_address: asset.tokenAddress,
        decimals: asset.decimals,
        amount: amount.toString(),
        address: deposit.address,
        address_index: deposit.index,
        custody: deposit.custody,
        confirmations_required: confirmations,
        finality_tag: input.confirmations === undefined && typeof chain.confirmations === 'string' ? chain.confirmations : null,
        underpaid_tolerance: underpaidTolerance.toString(),
        order_id: input.orderId ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
        checkout_url: `${deps.publicUrl}/pay/${id}`,
        success_url: input.successUrl ?? null,
        cancel_url: input.cancelUrl ?? null,
        expires_at: trx.raw(`now() + make_interval(secs => ?)`, [expiresIn]),
      })
      .returning('*');
    const payment = presentPayment(row);
    await recordEvent(trx, { merchantId, type: 'payment.created', paymentId: id, data: payment, requestId });
    return payment;
  });
}

/** max(amount × percent / 100, absolute), in base units, rounded down so the tolerance never exceeds what was asked. */
export function toleranceFor(amount: bigint, percent: string, absolute: bigint): bigint {
  const [whole, fraction = ''] = percent.split('.');
  const hundredthsOfPercent = BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0').slice(0, 2) || '0');
  const byPercent = (amount * hundredthsOfPercent) / 10_000n;
  return byPercent > absolute ? byPercent : absolute;
}
