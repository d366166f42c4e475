/**
 * EIP-681 payment request URI, understood by wallets:
 *   native: ethereum:<deposit>@<chainId>?value=<wei>
 *   ERC-20: ethereum:<token>@<chainId>/transfer?address=<deposit>&uint256=<base units>
 */
export function paymentUri(p: { address: string; chainId: number; tokenAddress: string | null; amount: bigint }): string {
  return p.tokenAddress
    ? `ethereum:${p.tokenAddress}@${p.chainId}/transfer?address=${p.address}&uint256=${p.amount}`
    : `ethereum:${p.address}@${p.chainId}?value=${p.amount}`;
}
