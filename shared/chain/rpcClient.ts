import { ChainDataError } from '../errors.js';

/**
 * A small JSON-RPC client over HTTP with batching and typed failures. We do not use ethers' provider for
 * scanning because the scanner needs exact control: one batch per step, its own timeouts, and the ability to
 * tell "range too large" from "node down".
 */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    message: string,
    /** transient: worth retrying (timeouts, 5xx, 429, malformed answers); range: the provider refused a log range */
    readonly kind: 'transient' | 'range' | 'rpc',
    readonly code?: number,
  ) {
    super(message);
  }
}

export interface RpcClient {
  readonly url: string;
  call<T>(method: string, params: unknown[]): Promise<T>;
  batch<T>(calls: { method: string; params: unknown[] }[]): Promise<T[]>;
}

export interface RpcObserver {
  onRequest?(method: string, outcome: 'ok' | 'error', seconds: number): void;
}

// Providers word "range too large" differently; these cover geth, erigon, Alchemy, Infura, QuickNode, Ankr.
const RANGE_ERROR = /range|too many|limit exceeded|block range|query returned more than|response size|exceed/i;

let nextId = 1;

export function createRpcClient(
  url: string,
  opts: { timeoutMs?: number; observer?: RpcObserver; retries?: number; retryBaseMs?: number } = {},
): RpcClient {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const retries = opts.retries ?? 4;
  const retryBaseMs = opts.retryBaseMs ?? 100;

  /** Transient failures (timeouts, 5xx, 429, malformed answers) are retried with jittered exponential backoff. */
  async function withRetry<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof RpcError) || err.kind !== 'transient' || n >= retries) throw err;
        const backoff = retryBaseMs * 2 ** n;
        await new Promise((r) => setTimeout(r, backoff / 2 + Math.random() * backoff));
      }
    }
  }

  async function post(body: unknown, label: string): Promise<unknown> {
    const started = performance.now();
    let outcome: 'ok' | 'error' = 'error';
    try {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new RpcError(`${label}: ${(err as Error).message}`, 'transient');
      }
      const text = await res.text().catch(() => '');
      if (res.status === 429 || res.status >= 500) throw new RpcError(`${label}: HTTP ${res.status}`, 'transient', res.status);
      if (!res.ok) throw new RpcError(`${label}: HTTP ${res.status}`, 'transient', res.status);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new RpcError(`${label}: malformed JSON from node`, 'transient');
      }
      outcome = 'ok';
      return parsed;
    } finally {
      opts.observer?.onRequest?.(label, outcome, (performance.now() - started) / 1000);
    }
  }

  function unwrap<T>(reply: unknown, method: string): T {
    if (typeof reply !== 'object' || reply === null) throw new RpcError(`${method}: malformed reply`, 'transient');
    const r = reply as { result?: T; error?: { code: number; message: string } };
    if (r.error) {
      const kind = method === 'eth_getLogs' && RANGE_ERROR.test(r.error.message) ? 'range' : r.error.code === -32005 ? 'range' : 'rpc';
      throw new RpcError(`${method}: ${r.error.message}`, kind, r.error.code);
    }
    if (!('result' in r)) throw new RpcError(`${method}: reply has no result`, 'transient');
    return r.result as T;
  }

  return {
    url,
    async call<T>(method: string, params: unknown[]) {
      return withRetry(async () => unwrap<T>(await post({ jsonrpc: '2.0', id: nextId++, method, params }, method), method));
    },
    async batch<T>(calls: { method: string; params: unknown[] }[]) {
      if (calls.length === 0) return [];
      return withRetry(() => sendBatch<T>(calls));
    },
  };

  async function sendBatch<T>(calls: { method: string; params: unknown[] }[]): Promise<T[]> {
    const first = nextId;
    nextId += calls.length;
    const label = calls[0].method;
    const replies = await post(calls.map((c, i) => ({ jsonrpc: '2.0', id: first + i, method: c.method, params: c.params })), label);
    if (!Array.isArray(replies) || replies.length !== calls.length) {
      throw new RpcError(`${label}: malformed batch reply`, 'transient');
    }
    const byId = new Map(replies.map((r) => [(r as { id: number }).id, r]));
    return calls.map((c, i) => unwrap<T>(byId.get(first + i), c.method));
  }
}

export const hexToNumber = (hex: unknown): number => {
  if (typeof hex !== 'string' || !/^0x[0-9a-fA-F]+$/.test(hex)) throw new ChainDataError(`not a hex quantity: ${String(hex)}`);
  return Number.parseInt(hex, 16);
};
export const hexToBigInt = (hex: unknown): bigint => {
  if (typeof hex !== 'string' || !/^0x[0-9a-fA-F]*$/.test(hex)) throw new ChainDataError(`not a hex quantity: ${String(hex)}`);
  return hex === '0x' ? 0n : BigInt(hex);
};
export const toHex = (n: number | bigint) => `0x${n.toString(16)}`;
