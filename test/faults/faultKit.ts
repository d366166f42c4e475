import { expect } from 'chai';
import type { Db } from '../../shared/db.js';
import { call, waitFor, type Gateway } from '../support/gateway.js';
import { findOrphans } from '../support/orphans.js';

/**
 * Shared pieces of the fault-injection suite (test/faults): a shop with a webhook endpoint, payments paid on the
 * dev chain, and the invariants every scenario checks after recovery.
 */

/** Timers shortened so recovery paths run within a test: maintenance every second, lost jobs re-queued after 3 s. */
export const FAULT_ENV: Record<string, string> = {
  MAINTENANCE_INTERVAL_MS: '1000',
  WEBHOOK_REQUEUE_AFTER_SECONDS: '3',
  WEBHOOK_RETRY_SCHEDULE: '1,1,2,2,3,3,5,5,8,8',
  // The suite hammers one key from one IP; the limiter is not under test here.
  RATE_LIMIT_READ: '1000000',
  RATE_LIMIT_WRITE: '1000000',
  RATE_LIMIT_PER_IP: '1000000',
};

/** Every payment in the suite asks 0.001 ETH and is paid exactly that. */
export const PAYMENT_AMOUNT = '0.001';
export const PAYMENT_WEI = 10n ** 15n;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Shop {
  merchantId: string;
  apiKey: string;
  endpointId: string;
}

/** A merchant whose webhook endpoint (subscribed to every event) points at `url`. */
export async function openShop(gw: Gateway, url: string): Promise<Shop> {
  const m = await call(gw, 'POST', '/admin/v1/merchants', { auth: gw.adminToken, body: { name: 'Fault Shop' } });
  if (m.status !== 201) throw new Error(`merchant: ${m.status} ${JSON.stringify(m.body)}`);
  const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.body.api_key, body: { url } });
  if (ep.status !== 201) throw new Error(`webhook endpoint: ${ep.status} ${JSON.stringify(ep.body)}`);
  return { merchantId: m.body.id, apiKey: m.body.api_key, endpointId: ep.body.id };
}

export async function createPayments(gw: Gateway, shop: Shop, n: number, extra: Record<string, unknown> = {}) {
  const out: { id: string; address: string }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await call(gw, 'POST', '/api/v1/payments', { auth: shop.apiKey, body: { amount: PAYMENT_AMOUNT, currency: 'ETH', expires_in: 3600, ...extra } });
    if (r.status !== 201) throw new Error(`payment: ${r.status} ${JSON.stringify(r.body)}`);
    out.push({ id: r.body.id, address: r.body.address });
  }
  return out;
}

/** Webhook ids (= event ids) seen by a receiver, with how often each arrived. */
export function countByEventId(received: { headers: Record<string, unknown> }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of received) {
    const id = String(r.headers['webhook-id']);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Event types a reorg may legitimately repeat for one payment (it goes back and tells the story again). */
const REPEATABLE_AFTER_REORG = new Set(['payment.confirming', 'payment.reorged', 'payment.underpaid']);

/**
 * Waits for the system to settle, then checks the invariants of the suite:
 *  - every paid payment reaches `confirmed`, with exactly one payment.created and one payment.confirmed event;
 *  - no payment has a duplicate transition or event (per payment and type), reorg stories excepted;
 *  - every event was delivered at least once to the receiver (counted by webhook-id) and every delivery
 *    ended succeeded: no job lost;
 *  - the outbox is drained;
 *  - no payment, event or delivery refers to a row that does not exist.
 */
export async function assertRecovered(
  db: Db,
  opts: { shop: Shop; paid: string[]; received: () => { headers: Record<string, unknown> }[]; reorgs?: boolean; timeoutMs?: number; describe?: () => string },
) {
  const timeoutMs = opts.timeoutMs ?? 180_000;
  await waitFor(
    async () => {
      const rows: { status: string }[] = await db('payments').whereIn('id', opts.paid).select('status');
      return rows.length === opts.paid.length && rows.every((r) => r.status === 'confirmed');
    },
    timeoutMs,
    () => `paid payments did not all confirm\n${opts.describe?.() ?? ''}`,
  ).catch(async (err) => {
    const rows = await db('payments').whereIn('id', opts.paid).select('id', 'status');
    throw new Error(`${(err as Error).message}\nstatuses: ${JSON.stringify(rows)}`);
  });
  await waitFor(
    async () => {
      const [{ open }] = await db('webhook_deliveries').whereNot({ status: 'succeeded' }).count({ open: '*' });
      const [{ queued }] = await db('outbox').count({ queued: '*' });
      if (Number(open) !== 0 || Number(queued) !== 0) return false;
      const events: { id: string }[] = await db('events').where({ merchant_id: opts.shop.merchantId }).select('id');
      const seen = countByEventId(opts.received());
      return events.every((e) => seen.has(e.id));
    },
    timeoutMs,
    () => `deliveries did not all succeed\n${opts.describe?.() ?? ''}`,
  ).catch(async (err) => {
    const stuck = await db('webhook_deliveries').whereNot({ status: 'succeeded' }).select('id', 'status', 'attempts', 'next_attempt_at', 'last_error').limit(10);
    throw new Error(`${(err as Error).message}\nnot succeeded: ${JSON.stringify(stuck)}`);
  });

  const perType: { payment_id: string; type: string; n: string }[] = await db('events')
    .where({ merchant_id: opts.shop.merchantId })
    .whereNotNull('payment_id')
    .groupBy('payment_id', 'type')
    .select('payment_id', 'type')
    .count({ n: '*' });
  const duplicates = perType.filter((r) => Number(r.n) > 1 && !(opts.reorgs && REPEATABLE_AFTER_REORG.has(r.type)));
  expect(duplicates, 'duplicate events (payment, type, count)').to.deep.equal([]);
  for (const id of opts.paid) {
    const types = perType.filter((r) => r.payment_id === id).map((r) => r.type);
    expect(types, `events of ${id}`).to.include.members(['payment.created', 'payment.confirmed']);
  }
  await assertSettlementSane(db);
  expect(await findOrphans(db), 'rows whose parent is missing').to.deep.equal({});
  // Both counts in one statement (one snapshot): scenarios keep creating payments while they are checked.
  const { rows } = await db.raw(
    `SELECT (SELECT count(*) FROM webhook_deliveries) AS deliveries, (SELECT count(*) FROM events WHERE merchant_id = ?) AS events`,
    [opts.shop.merchantId],
  );
  expect(Number(rows[0].deliveries), 'one delivery per event (one endpoint)').to.equal(Number(rows[0].events));
}

/**
 * Settlement invariants, checked when the schema has settlement (sweeps, ledger_entries): every deposit is swept at
 * most once (at most one successfully mined sweep transaction per sweep) and no merchant balance held by PayFlow is
 * negative. With no settlement address on the shop nothing is swept and this holds trivially.
 */
export async function assertSettlementSane(db: Db) {
  if (!(await db.schema.hasTable('sweeps'))) return;
  const doubleSwept = await db('sweep_transactions')
    .where({ role: 'sweep', receipt_status: 1 })
    .groupBy('sweep_id')
    .select('sweep_id')
    .count({ n: '*' })
    .havingRaw('count(*) > 1');
  expect(doubleSwept, 'deposits swept more than once').to.deep.equal([]);
  if (!(await db.schema.hasTable('ledger_entries'))) return;
  const negative = await db('ledger_entries')
    .groupBy('merchant_id', 'chain_id', 'currency')
    .select('merchant_id', 'chain_id', 'currency')
    .sum({ balance: 'amount' })
    .havingRaw('sum(amount) < 0');
  expect(negative, 'negative ledger balances').to.deep.equal([]);
}
