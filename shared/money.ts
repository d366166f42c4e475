import { AmountError } from './errors.js';

/** Largest value a uint256 can hold: no on-chain amount is bigger, and numeric(78,0) holds it. */
export const MAX_UINT256 = (1n << 256n) - 1n;

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parses a decimal string ("0.05") into base units of an asset with `decimals` decimals.
 * Exact: never goes through a JS number. Rejects more precision than the asset has instead of rounding,
 * because silently rounding a payment amount changes what the customer owes.
 */
export function parseAmount(input: unknown, decimals: number): bigint {
  if (typeof input !== 'string') throw new AmountError('amount_invalid', 'amount must be a decimal string, e.g. "0.05"');
  const match = DECIMAL.exec(input);
  if (!match || input.length > 100) throw new AmountError('amount_invalid', 'amount must be a positive decimal string, e.g. "0.05"');
  const [, whole, fraction = ''] = match;
  if (fraction.length > decimals) {
    throw new AmountError('amount_too_precise', `amount has more than ${decimals} decimal places`);
  }
  const units = BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, '0') || '0');
  if (units === 0n) throw new AmountError('amount_not_positive', 'amount must be greater than zero');
  if (units > MAX_UINT256) throw new AmountError('amount_too_large', 'amount is too large');
  return units;
}

/** Formats base units as the shortest exact decimal string ("50000000000000000", 18 → "0.05"). */
export function formatAmount(units: bigint, decimals: number): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const scale = 10n ** BigInt(decimals);
  const whole = abs / scale;
  const fraction = (abs % scale).toString().padStart(decimals, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
