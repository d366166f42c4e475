import { Interface } from 'ethers';
import { RpcError, hexToBigInt, hexToNumber, toHex, type RpcClient } from '../../shared/chain/rpcClient.js';

/** The JSON-RPC calls a sweep needs, over the same client the scanner uses. */

export const ERC20 = new Interface(['function transfer(address to, uint256 amount) returns (bool)', 'function balanceOf(address) view returns (uint256)']);

export async function nativeBalance(rpc: RpcClient, address: string): Promise<bigint> {
  return hexToBigInt(await rpc.call('eth_getBalance', [address, 'latest']));
}

export async function tokenBalance(rpc: RpcClient, token: string, address: string): Promise<bigint> {
  const data = ERC20.encodeFunctionData('balanceOf', [address]);
  return hexToBigInt(await rpc.call('eth_call', [{ to: token, data }, 'latest']));
}

export async function transactionCount(rpc: RpcClient, address: string, tag: 'latest' | 'pending' = 'latest'): Promise<number> {
  return hexToNumber(await rpc.call('eth_getTransactionCount', [address, tag]));
}

export async function headNumber(rpc: RpcClient, tag: 'latest' | 'safe' | 'finalized' = 'latest'): Promise<number> {
  if (tag === 'latest') return hexToNumber(await rpc.call('eth_blockNumber', []));
  const block = await rpc.call<{ number: string } | null>('eth_getBlockByNumber', [tag, false]);
  return block ? hexToNumber(block.number) : -1;
}

/** Current base fee (of the latest block) and a suggested priority fee (1 gwei when the node has no opinion). */
export async function feeData(rpc: RpcClient): Promise<{ baseFee: bigint; tip: bigint }> {
  const block = await rpc.call<{ baseFeePerGas?: string }>('eth_getBlockByNumber', ['latest', false]);
  let tip = 1_000_000_000n;
  try {
    tip = hexToBigInt(await rpc.call('eth_maxPriorityFeePerGas', []));
  } catch (err) {
    if (!(err instanceof RpcError) || err.kind !== 'rpc') throw err;
  }
  return { baseFee: block.baseFeePerGas ? hexToBigInt(block.baseFeePerGas) : 0n, tip };
}

export async function estimateGas(rpc: RpcClient, tx: { from: string; to: string; value?: bigint; data?: string }): Promise<bigint> {
  return hexToBigInt(
    await rpc.call('eth_estimateGas', [{ from: tx.from, to: tx.to, ...(tx.value !== undefined ? { value: toHex(tx.value) } : {}), ...(tx.data ? { data: tx.data } : {}) }]),
  );
}

export interface Receipt {
  blockNumber: number;
  status: number;
  gasUsed: bigint;
  effectiveGasPrice: bigint;
}

export async function receipt(rpc: RpcClient, txHash: string): Promise<Receipt | null> {
  const r = await rpc.call<{ blockNumber: string; status: string; gasUsed: string; effectiveGasPrice: string } | null>('eth_getTransactionReceipt', [txHash]);
  if (!r || !r.blockNumber) return null;
  return { blockNumber: hexToNumber(r.blockNumber), status: hexToNumber(r.status), gasUsed: hexToBigInt(r.gasUsed), effectiveGasPrice: hexToBigInt(r.effectiveGasPrice) };
}

// "The node has this transaction (or one with its nonce is already mined)": broadcasting again is then a no-op.
const ALREADY_THERE = /already known|known transaction|nonce too low|already imported|already exists|transaction already/i;

/** Broadcasts signed bytes. Idempotent: a node that already has the transaction, or has mined its nonce, is fine. */
export async function broadcast(rpc: RpcClient, rawTx: string): Promise<'sent' | 'known'> {
  try {
    await rpc.call('eth_sendRawTransaction', [rawTx]);
    return 'sent';
  } catch (err) {
    if (err instanceof RpcError && err.kind !== 'transient' && ALREADY_THERE.test(err.message)) return 'known';
    throw err;
  }
}
