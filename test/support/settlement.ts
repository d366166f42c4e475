import { expect } from 'chai';
import { call, waitFor, type Gateway } from './gateway.js';
import type { chainClient } from './chain.js';

/** Helpers shared by the settlement tests (test/integration/settlement*.test.ts). */
type Chain = ReturnType<typeof chainClient>;

export async function payAndSettle(
  gw: Gateway,
  chain: Chain,
  apiKey: string,
  payment: { id: string; address: string; currency: string },
  units: bigint,
  payer = 1,
  until: 'settled' | 'refunded' = 'settled',
) {
  if (payment.currency === 'ETH') await chain.sendEth(payer, payment.address, units);
  else await chain.sendUsdc(payer, payment.address, units);
  return waitForStatus(gw, chain, apiKey, payment.id, until);
}

/** Waits for a status, mining a block now and then: the test chain automines, so confirmations need blocks. */
export async function waitForStatus(gw: Gateway, chain: Chain, apiKey: string, paymentId: string, status: string, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const p = (await call(gw, 'GET', `/api/v1/payments/${paymentId}`, { auth: apiKey })).body;
      if (p.status === status) return p;
      await chain.mine(1);
      await new Promise((r) => setTimeout(r, 150));
      return false;
    },
    timeoutMs,
    () => gw.logs().slice(-5000),
  );
}

export async function createPayment(gw: Gateway, apiKey: string, body: Record<string, unknown>) {
  const res = await call(gw, 'POST', '/api/v1/payments', { auth: apiKey, body });
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  return res.body as { id: string; address: string; currency: string; amount: string };
}

/** Transactions ever sent from an address: a deposit that was swept once has exactly 1. */
export async function sentTransactions(chain: Chain, address: string): Promise<number> {
  return Number(await chain.rpc('eth_getTransactionCount', [address, 'latest']));
}

/** Sum of a merchant's ledger rows per currency, in base units (from the database, every row). */
export async function ledgerSums(gw: Gateway, merchantId: string): Promise<Record<string, bigint>> {
  const rows: { currency: string; total: string }[] = await gw.db('ledger_entries').where({ merchant_id: merchantId }).select('currency').sum({ total: 'amount' }).groupBy('currency');
  return Object.fromEntries(rows.map((r) => [r.currency, BigInt(r.total)]));
}
