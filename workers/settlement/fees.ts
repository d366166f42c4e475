/**
 * EIP-1559 fee arithmetic for sweeps. Pure, unit-tested (test/unit/settlementFees.test.ts).
 *
 * A deposit sweep sets its priority fee equal to its fee cap. The price actually paid per gas is then exactly the
 * cap (min(cap, base + tip) = cap), so an ETH sweep of `balance − gasLimit × cap` leaves the deposit at exactly
 * 0 wei: no dust that could never pay for its own transfer. The cost is paying the cap (≈ 2 × base fee + tip)
 * instead of base + tip, a fraction of one transfer's fee.
 */
export interface Fees {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** Cap = 2 × base fee + tip: stays includable through several full blocks of base-fee growth. */
export function depositSweepFees(baseFee: bigint, tip: bigint): Fees {
  const cap = baseFee * 2n + tip;
  return { maxFeePerGas: cap, maxPriorityFeePerGas: cap };
}

/** Ordinary fees for the gas tank's own transfers (its leftover change is the operator's, not dust). */
export function gasTankFees(baseFee: bigint, tip: bigint): Fees {
  return { maxFeePerGas: baseFee * 2n + tip, maxPriorityFeePerGas: tip };
}

/**
 * Fees for a replacement of the same nonce: nodes accept a replacement only when both fields rise by ≥ 10 %;
 * we bump by 12.5 % (+1 wei), or follow the current market when it has risen more.
 */
export function bumpedFees(previous: Fees, current: Fees): Fees {
  const bump = (v: bigint) => v + v / 8n + 1n;
  const max = (a: bigint, b: bigint) => (a > b ? a : b);
  return {
    maxFeePerGas: max(bump(previous.maxFeePerGas), current.maxFeePerGas),
    maxPriorityFeePerGas: max(bump(previous.maxPriorityFeePerGas), current.maxPriorityFeePerGas),
  };
}

/** Value an ETH sweep sends: everything but the fee; null when the balance cannot even pay the fee. */
export function nativeSweepValue(balance: bigint, gasLimit: bigint, fees: Fees): bigint | null {
  const value = balance - gasLimit * fees.maxFeePerGas;
  return value > 0n ? value : null;
}
