import { HDNodeVoidWallet, HDNodeWallet } from 'ethers';
import type { Tx } from '../db.js';
import type { DepositWallet } from '../wallet/hdWallet.js';
import { publicChildAddresses } from '../wallet/publicDerivation.js';

/**
 * Where a new payment's deposit address comes from.
 *
 * Custodial (default): PayFlow's own HD seed (HD_MNEMONIC), index from the global sequence; PayFlow can sign for
 * the address and sweeps it to the merchant.
 *
 * Non-custodial (the merchant gave an xpub): the address is derived from the merchant's extended public key with
 * a counter per xpub (0, 1, 2, …), so the merchant's own wallet finds the funds by its usual gap-limit scan.
 * PayFlow holds no key for these addresses and never sweeps them.
 */
export type Custody = 'custodial' | 'non_custodial';

export class XpubError extends Error {
  override name = 'XpubError';
}

/**
 * Parses an extended public key. Account level (depth 3, m/44'/60'/0' as hardware wallets export it) derives
 * receive addresses at 0/i; change level (depth 4, m/44'/60'/0'/0) derives them at i. Private keys are refused:
 * PayFlow must never hold the merchant's keys.
 */
export function parseXpub(xpub: string): { receiveNode: HDNodeVoidWallet } {
  if (/^[xtyzuv]prv/i.test(xpub)) throw new XpubError('this is an extended PRIVATE key; give the extended public key (xpub) only');
  let node: HDNodeWallet | HDNodeVoidWallet;
  try {
    node = HDNodeWallet.fromExtendedKey(xpub);
  } catch {
    throw new XpubError('not a valid extended public key (xpub…)');
  }
  if (node instanceof HDNodeWallet) throw new XpubError('this is an extended PRIVATE key; give the extended public key (xpub) only');
  if (node.depth === 3) return { receiveNode: node.deriveChild(0) };
  if (node.depth === 4) return { receiveNode: node };
  throw new XpubError(`xpub must be at account level (m/44'/60'/0', depth 3) or receive level (depth 4), got depth ${node.depth}`);
}

/** Address number `index` of a merchant's xpub. Pure CPU. */
export function xpubAddressAt(xpub: string, index: number): string {
  return publicChildAddresses(parseXpub(xpub).receiveNode)(index);
}

/** Allocates the next deposit address for a merchant (its xpub, or null) inside the payment-creating transaction. */
export async function allocateDepositAddress(
  trx: Tx,
  xpub: string | null,
  wallet: DepositWallet,
): Promise<{ address: string; index: number; custody: Custody }> {
  if (xpub) {
    // The counter row's lock serialises concurrent payments of one xpub, so no index is handed out twice.
    const { rows } = await trx.raw(
      `INSERT INTO xpub_address_counters (xpub, next_index) VALUES (?, 1)
       ON CONFLICT (xpub) DO UPDATE SET next_index = xpub_address_counters.next_index + 1
       RETURNING next_index - 1 AS index`,
      [xpub],
    );
    const index = Number(rows[0].index);
    return { address: xpubAddressAt(xpub, index), index, custody: 'non_custodial' };
  }
  const { rows } = await trx.raw(`SELECT nextval('deposit_address_index_seq') AS index`);
  const index = Number(rows[0].index);
  return { address: wallet.addressAt(index), index, custody: 'custodial' };
}
