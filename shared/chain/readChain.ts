import { getAddress } from 'ethers';
import { ChainDataError } from '../errors.js';
import { hexToBigInt, hexToNumber, RpcError, toHex, type RpcClient } from './rpcClient.js';

/** keccak256("Transfer(address,address,uint256)") */
export const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';

export interface ChainBlock {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: Date;
}

/** A value movement seen on-chain: a native transfer (logIndex −1) or an ERC-20 Transfer log. */
export interface SeenTransfer {
  txHash: string;
  logIndex: number;
  blockNumber: number;
  blockHash: string;
  from: string;
  to: string;
  /** null for the native coin */
  tokenAddress: string | null;
  amount: bigint;
}

interface RawTx { hash: string; from: string; to: string | null; value: string }
interface RawBlock { number: string; hash: string; parentHash: string; timestamp: string; transactions: RawTx[] }
interface RawLog { address: string; topics: string[]; data: string; blockNumber: string; blockHash: string; transactionHash: string; logIndex: string; removed?: boolean }

export async function readHeadNumber(rpc: RpcClient, tag: 'latest' | 'safe' | 'finalized' = 'latest'): Promise<number> {
  if (tag === 'latest') return hexToNumber(await rpc.call<string>('eth_blockNumber', []));
  const block = await rpc.call<RawBlock | null>('eth_getBlockByNumber', [tag, false]);
  if (!block) throw new RpcError(`node has no ${tag} block`, 'transient');
  return hexToNumber(block.number);
}

function parseBlock(raw: RawBlock | null, expected: number): ChainBlock {
  if (!raw || typeof raw.hash !== 'string') throw new ChainDataError(`block ${expected} not available yet`);
  const number = hexToNumber(raw.number);
  if (number !== expected) throw new ChainDataError(`asked for block ${expected}, node answered ${number}`);
  return { number, hash: raw.hash, parentHash: raw.parentHash, timestamp: new Date(hexToNumber(raw.timestamp) * 1000) };
}

/** Block headers for [from, to] in one batch. */
export async function readBlockHeaders(rpc: RpcClient, from: number, to: number): Promise<ChainBlock[]> {
  const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const raws = await rpc.batch<RawBlock | null>(numbers.map((n) => ({ method: 'eth_getBlockByNumber', params: [toHex(n), false] })));
  return raws.map((raw, i) => parseBlock(raw, numbers[i]));
}

/**
 * Blocks [from, to] with their native transfers, in one batch. The work is per block and per transaction,
 * never per watched address.
 */
export async function readBlocksWithNativeTransfers(
  rpc: RpcClient,
  from: number,
  to: number,
): Promise<{ blocks: ChainBlock[]; transfers: SeenTransfer[] }> {
  const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const raws = await rpc.batch<RawBlock | null>(numbers.map((n) => ({ method: 'eth_getBlockByNumber', params: [toHex(n), true] })));
  const blocks: ChainBlock[] = [];
  const transfers: SeenTransfer[] = [];
  raws.forEach((raw, i) => {
    const block = parseBlock(raw, numbers[i]);
    blocks.push(block);
    for (const tx of raw!.transactions ?? []) {
      if (typeof tx !== 'object' || !tx.to) continue;
      const value = hexToBigInt(tx.value);
      if (value === 0n) continue;
      transfers.push({
        txHash: tx.hash,
        logIndex: -1,
        blockNumber: block.number,
        blockHash: block.hash,
        from: getAddress(tx.from),
        to: getAddress(tx.to),
        tokenAddress: null,
        amount: value,
      });
    }
  });
  return { blocks, transfers };
}

function topicToAddress(topic: string): string {
  if (typeof topic !== 'string' || topic.length !== 66) throw new ChainDataError('malformed address topic');
  return getAddress(`0x${topic.slice(26)}`);
}

/**
 * ERC-20 Transfer logs of the given tokens in [from, to]. When the provider refuses the range, the range is split
 * in halves until it is accepted, so catching up after downtime works on any provider. Logs whose block hash is
 * not the one we scanned mean the chain moved under us: the caller retries.
 */
export async function readTokenTransfers(
  rpc: RpcClient,
  tokens: string[],
  from: number,
  to: number,
): Promise<SeenTransfer[]> {
  if (tokens.length === 0) return [];
  let raws: RawLog[];
  try {
    raws = await rpc.call<RawLog[]>('eth_getLogs', [{ fromBlock: toHex(from), toBlock: toHex(to), address: tokens, topics: [TRANSFER_TOPIC] }]);
  } catch (err) {
    if (err instanceof RpcError && err.kind === 'range' && to > from) {
      const mid = Math.floor((from + to) / 2);
      return [...(await readTokenTransfers(rpc, tokens, from, mid)), ...(await readTokenTransfers(rpc, tokens, mid + 1, to))];
    }
    throw err;
  }
  if (!Array.isArray(raws)) throw new RpcError('eth_getLogs: malformed reply', 'transient');
  const out: SeenTransfer[] = [];
  for (const log of raws) {
    // ERC-721 Transfer shares the topic but has 4 topics and no data; it is not a payment.
    if (log.removed || log.topics.length !== 3) continue;
    out.push({
      txHash: log.transactionHash,
      logIndex: hexToNumber(log.logIndex),
      blockNumber: hexToNumber(log.blockNumber),
      blockHash: log.blockHash,
      from: topicToAddress(log.topics[1]),
      to: topicToAddress(log.topics[2]),
      tokenAddress: getAddress(log.address),
      amount: hexToBigInt(log.data),
    });
  }
  return out;
}
