import type { ChainConfig } from '../config.js';
import { findAsset } from '../config.js';
import type { Db } from '../db.js';
import { ApiError, AmountError, invalidRequest, unauthorized } from '../errors.js';
import { FAN_OUT_DELIVERIES, fanOutDeliveryCtes } from '../events/fanOut.js';
import { recordEvent } from '../events/recordEvent.js';
import type { MerchantSettingsCache } from '../merchants/settingsCache.js';
import { countPaymentEventOnCommit } from '../metrics.js';
import { BATCHING, createBatcher } from '../batching.js';
import { queryPrepared } from '../preparedQuery.js';
import { serializeOnce } from '../serializedJson.js';
import type { AddressSource } from '../wallet/addressPool.js';
import { newId } from '../ids.js';
import { parseAmount } from '../money.js';
import { allocateDepositAddress } from '../settlement/depositAddress.js';
import type { DepositWallet } from '../wallet/hdWallet.js';
import type { DeliveryDispatcher, NewDelivery } from '../webhooks/dispatchDeliveries.js';
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
  /**
   * Pre-derived custodial addresses, cached merchant settings and the batched statement that sends its webhook
   * deliveries' first attempts after commit: with them, the one-statement path below.
   */
  fastPath?: { addresses: AddressSource; merchants: MerchantSettingsCache; insert: CustodialInserter };
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
 * `payment.created` event (with its webhook deliveries and jobs) commit together, on either path below.
 */
export async function createPayment(
  deps: CreatePaymentDeps,
  merchantId: string,
  input: CreatePaymentInput,
  requestId?: string,
): Promise<PaymentObject> {
  const { chain, asset } = resolveChainAsset(deps.chains, input.currency, input.chainId);
  const parseParam = (value: string, param: string) => {
    try {
      return parseAmount(value, asset.decimals);
    } catch (err) {
      if (err instanceof AmountError) throw invalidRequest(err.code, err.message, param);
      throw err;
    }
  };
  const amount = parseParam(input.amount, 'amount');
  const toleranceAmount = input.underpaidToleranceAmount ? parseParam(input.underpaidToleranceAmount, 'underpaid_tolerance_amount') : 0n;
  if (toleranceAmount >= amount) throw invalidRequest('parameter_invalid', 'underpaid_tolerance_amount must be below amount', 'underpaid_tolerance_amount');
  const confirmations = input.confirmations ?? (typeof chain.confirmations === 'number' ? chain.confirmations : 0);
  const expiresIn = input.expiresIn ?? deps.defaultExpiresIn;

  await assertChainScanned(deps.db, chain.chainId);
  const prepared: PreparedPayment = { chain, asset, amount, toleranceAmount, confirmations, expiresIn };
  if (deps.fastPath) {
    const created = await createCustodialInOneStatement(deps, deps.fastPath, merchantId, input, prepared, requestId);
    if (created) return created;
  }
  return createInTransaction(deps, merchantId, input, prepared, requestId);
}

interface PreparedPayment {
  chain: ChainConfig;
  asset: NonNullable<ReturnType<typeof findAsset>>;
  amount: bigint;
  toleranceAmount: bigint;
  confirmations: number;
  expiresIn: number;
}

const finalityTagOf = (input: CreatePaymentInput, chain: ChainConfig) =>
  input.confirmations === undefined && typeof chain.confirmations === 'string' ? chain.confirmations : null;

/**
 * The general path, for any merchant: address (own seed or the merchant's xpub), settings, row and event in one
 * transaction, several statements.
 */
async function createInTransaction(
  deps: CreatePaymentDeps,
  merchantId: string,
  input: CreatePaymentInput,
  { chain, asset, amount, toleranceAmount, confirmations, expiresIn }: PreparedPayment,
  requestId?: string,
): Promise<PaymentObject> {
  return deps.db.transaction(async (trx) => {
    const merchant: { xpub: string | null; underpaid_tolerance_percent: string } | undefined = await trx('merchants')
      .select('xpub', 'underpaid_tolerance_percent')
      .where({ id: merchantId })
      .first();
    // No foreign key checks payments.merchant_id (migration 20261127000001): a merchant that is not there gets no row.
    if (!merchant) throw unauthorized('No such merchant');
    // PayFlow's own seed, or the merchant's xpub in non-custodial mode (shared/settlement/depositAddress.ts).
    const deposit = await allocateDepositAddress(trx, merchant.xpub, deps.wallet);
    // Tolerance is fixed at creation: the payment's own percent, else the merchant's; the larger of percent and amount.
    const underpaidTolerance = toleranceFor(amount, input.underpaidTolerancePercent ?? String(merchant.underpaid_tolerance_percent), toleranceAmount);
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
        finality_tag: finalityTagOf(input, chain),
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

/**
 * Creating a payment is the hottest write, so for the common case (a custodial merchant) it is one statement: the
 * payment row, its `payment.created` event and its webhook deliveries (fanOut.ts), atomically, in one round trip
 * with no transaction held open across round trips. The deliveries' first jobs are not written to the outbox: the
 * statement returns the deliveries and this process hands them to the workers once it has committed
 * (shared/webhooks/dispatchDeliveries.ts says why that loses nothing). Nor is there a NOTIFY in it: Postgres
 * serialises the commits of all notifying transactions behind one lock, and with many payments created at once
 * their commits queued one by one (bench: 0.49× → 0.16× of the baseline when it had one).
 * Payments created at the same moment share the statement (batching.ts), one row each in the arrays below; each
 * row stands alone: one that is not inserted does not stop the others.
 *
 * The address comes pre-derived from the pool (addressPool.ts); the merchant's settings come from a cache, and a
 * row is inserted only while the merchant row still has exactly the cached settings, so a settings change made a
 * moment ago (by any process) is never missed. A row not inserted (settings changed, or a unique conflict such as
 * a repeated order_id) goes to the general path, which reads fresh settings or answers the conflict.
 * The row is built here (times from this process's clock) so the event and the answer need no second read.
 */
const CREATE_CUSTODIAL_SQL = `
  WITH r AS (
    SELECT r.*, $15::jsonb -> (r.ord::int - 1) AS metadata, $22::jsonb -> (r.ord::int - 1) AS event_data
      FROM unnest($1::text[], $2::numeric[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::int[], $8::numeric[],
                  $9::text[], $10::bigint[], $11::int[], $12::text[], $13::numeric[], $14::text[], $16::text[],
                  $17::text[], $18::text[], $19::timestamptz[], $20::timestamptz[], $21::text[], $23::text[])
      WITH ORDINALITY AS r(merchant_id, tolerance_percent, id, chain_id, currency, token_address, decimals, amount,
           address, address_index, confirmations_required, finality_tag, underpaid_tolerance, order_id, checkout_url,
           success_url, cancel_url, expires_at, created_at, event_id, request_id, ord)
  ),
  p AS (
    INSERT INTO payments (id, merchant_id, status, chain_id, currency, token_address, decimals, amount, address, address_index,
                          custody, confirmations_required, finality_tag, underpaid_tolerance, order_id, metadata, checkout_url,
                          success_url, cancel_url, expires_at, created_at, updated_at)
    SELECT r.id, r.merchant_id, 'pending', r.chain_id, r.currency, r.token_address, r.decimals, r.amount, r.address, r.address_index,
           'custodial', r.confirmations_required, r.finality_tag, r.underpaid_tolerance, r.order_id, r.metadata, r.checkout_url,
           r.success_url, r.cancel_url, r.expires_at, r.created_at, r.created_at
      FROM r JOIN merchants m ON m.id = r.merchant_id AND m.xpub IS NULL AND m.underpaid_tolerance_percent = r.tolerance_percent
    ON CONFLICT DO NOTHING
    RETURNING id, merchant_id
  ),
  inserted_events AS (
    INSERT INTO events (id, merchant_id, type, payment_id, data, created_at)
    SELECT r.event_id, p.merchant_id, 'payment.created', p.id, r.event_data, r.created_at FROM p JOIN r ON r.id = p.id
    RETURNING id, merchant_id, type, payment_id
  ),
  e AS (
    SELECT ie.id, ie.merchant_id, ie.type, r.request_id FROM inserted_events ie JOIN r ON r.id = ie.payment_id
  )${fanOutDeliveryCtes()}
  SELECT (SELECT coalesce(array_agg(id), '{}') FROM p) AS created, ${FAN_OUT_DELIVERIES}`;

/** One payment of a batch: its row, in the order of the statement's parameters. */
type CustodialRow = unknown[];
/** Where the payment id sits in a row ($3). */
const PAYMENT_ID = 2;
/**
 * The JSON values of a row (metadata $15, the event's data $22), already serialised: each batch sends them as one
 * JSON array per column, the n-th element for the n-th row, instead of an array of strings. A text[] element is
 * escaped by pg's array encoder (every quote of the payment's JSON) and unescaped again by Postgres; this is
 * neither (bench: pg's escapeElement was ≈ 2 % of the API's busy time).
 */
const JSON_COLUMNS = new Set([14, 21]);
export type CustodialInserter = (row: CustodialRow) => Promise<boolean>;

/**
 * The batched statement (one per API process): resolves each row to whether it was inserted, and hands the
 * deliveries it wrote to the dispatcher once it has committed.
 */
export function createCustodialInserter(db: Db, deliveries: DeliveryDispatcher): CustodialInserter {
  return createBatcher<CustodialRow, boolean>(async (rows) => {
    const columns = rows[0].map((_, i) => (JSON_COLUMNS.has(i) ? `[${rows.map((r) => r[i]).join(',')}]` : rows.map((r) => r[i])));
    const [result] = await queryPrepared<{ created: string[]; deliveries: NewDelivery[] }>(db, 'create_custodial_payments', CREATE_CUSTODIAL_SQL, columns);
    deliveries.dispatch(result.deliveries);
    const created = new Set(result.created);
    return rows.map((r) => created.has(r[PAYMENT_ID] as string));
  }, BATCHING);
}

async function createCustodialInOneStatement(
  deps: CreatePaymentDeps,
  fast: NonNullable<CreatePaymentDeps['fastPath']>,
  merchantId: string,
  input: CreatePaymentInput,
  { chain, asset, amount, toleranceAmount, confirmations, expiresIn }: PreparedPayment,
  requestId?: string,
): Promise<PaymentObject | undefined> {
  const settings = await fast.merchants.get(merchantId);
  if (!settings || settings.xpub) return undefined; // unknown merchant or non-custodial: the general path decides
  const deposit = await fast.addresses.take();
  const id = newId('pay');
  const now = new Date();
  const row: PaymentRow = {
    seq: 0,
    id,
    merchant_id: merchantId,
    status: 'pending',
    exception: null,
    chain_id: chain.chainId,
    currency: asset.symbol,
    token_address: asset.tokenAddress,
    decimals: asset.decimals,
    amount: amount.toString(),
    amount_received: '0',
    underpaid_tolerance: toleranceFor(amount, input.underpaidTolerancePercent ?? settings.underpaidTolerancePercent, toleranceAmount).toString(),
    resolution: null,
    custody: 'custodial',
    settlement: null,
    refund: null,
    address: deposit.address,
    address_index: deposit.index,
    confirmations_required: confirmations,
    finality_tag: finalityTagOf(input, chain),
    order_id: input.orderId ?? null,
    metadata: input.metadata ?? {},
    checkout_url: `${deps.publicUrl}/pay/${id}`,
    success_url: input.successUrl ?? null,
    cancel_url: input.cancelUrl ?? null,
    expires_at: new Date(now.getTime() + expiresIn * 1000),
    confirmed_at: null,
    created_at: now,
    updated_at: now,
  };
  const payment = presentPayment(row);
  let created: boolean;
  try {
    created = await fast.insert([
      merchantId, settings.underpaidTolerancePercent, id, row.chain_id, row.currency, row.token_address, row.decimals, row.amount,
      row.address, row.address_index, row.confirmations_required, row.finality_tag, row.underpaid_tolerance, row.order_id,
      JSON.stringify(row.metadata), row.checkout_url, row.success_url, row.cancel_url, row.expires_at, now,
      newId('evt'), serializeOnce(payment), requestId ?? null,
    ]);
  } catch (err) {
    fast.addresses.giveBack(deposit); // nothing was written: the address is still unused
    throw err;
  }
  if (!created) {
    fast.addresses.giveBack(deposit);
    fast.merchants.forget(merchantId);
    return undefined;
  }
  countPaymentEventOnCommit({}, 'payment.created', payment);
  return payment;
}

/** max(amount × percent / 100, absolute), in base units, rounded down so the tolerance never exceeds what was asked. */
export function toleranceFor(amount: bigint, percent: string, absolute: bigint): bigint {
  const [whole, fraction = ''] = percent.split('.');
  const hundredthsOfPercent = BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0').slice(0, 2) || '0');
  const byPercent = (amount * hundredthsOfPercent) / 10_000n;
  return byPercent > absolute ? byPercent : absolute;
}
