import { createServer, type Server } from 'node:http';
import { freePort } from '../../scripts/devstack/ports.js';

/**
 * An HTTP proxy for JSON-RPC that misbehaves on purpose, placed between workers and a dev chain.
 * Each request draws one fault by the configured probabilities; `setFaults` changes them at run time.
 *   drop:      close the socket without an answer
 *   delayMs:   answer after this long (with probability `delay`)
 *   error5xx:  answer 502/503
 *   truncate:  answer with the first half of the real JSON
 *   rateLimit: answer 429
 *   maxLogRange: eth_getLogs over more blocks than this gets a provider-style "range too large" error
 */
export interface Faults {
  drop?: number;
  delay?: number;
  delayMs?: number;
  error5xx?: number;
  truncate?: number;
  rateLimit?: number;
  maxLogRange?: number;
  /** Answer the `safe` / `finalized` block tags with the block this many below the head (hardhat says head). */
  finalizedLag?: number;
}

export interface FaultProxy {
  url: string;
  setFaults(f: Faults): void;
  stats: { requests: number; faults: Record<string, number>; rangeRefusals: number; getLogsRanges: number[] };
  close(): Promise<void>;
}

export async function startFaultProxy(targetUrl: string, initial: Faults = {}, random: () => number = Math.random): Promise<FaultProxy> {
  let faults: Faults = initial;
  const stats: FaultProxy['stats'] = { requests: 0, faults: {}, rangeRefusals: 0, getLogsRanges: [] };
  const count = (k: string) => (stats.faults[k] = (stats.faults[k] ?? 0) + 1);

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      stats.requests++;
      const body = Buffer.concat(chunks).toString();
      const f = faults;
      if (random() < (f.drop ?? 0)) {
        count('drop');
        return req.socket.destroy();
      }
      if (random() < (f.rateLimit ?? 0)) {
        count('rateLimit');
        return res.writeHead(429, { 'retry-after': '1' }).end('rate limited');
      }
      if (random() < (f.error5xx ?? 0)) {
        count('error5xx');
        return res.writeHead(random() < 0.5 ? 502 : 503).end('upstream unavailable');
      }
      if (random() < (f.delay ?? 0)) {
        count('delay');
        await new Promise((r) => setTimeout(r, f.delayMs ?? 2000));
      }
      const refused = refuseLargeLogRange(body, f.maxLogRange, stats);
      if (refused) {
        stats.rangeRefusals++;
        return res.writeHead(200, { 'content-type': 'application/json' }).end(refused);
      }
      let upstream: string;
      try {
        const forwarded = f.finalizedLag === undefined ? body : await lagFinalizedTag(targetUrl, body, f.finalizedLag);
        const r = await fetch(targetUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: forwarded });
        upstream = await r.text();
      } catch {
        return res.writeHead(502).end('bad gateway');
      }
      if (random() < (f.truncate ?? 0)) {
        count('truncate');
        return res.writeHead(200, { 'content-type': 'application/json' }).end(upstream.slice(0, Math.floor(upstream.length / 2)));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(upstream);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    setFaults: (f) => {
      faults = f;
    },
    stats,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function refuseLargeLogRange(body: string, maxRange: number | undefined, stats: FaultProxy['stats']): string | null {
  if (maxRange === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  const calls = Array.isArray(parsed) ? parsed : [parsed];
  const getLogs = calls.find((c) => c?.method === 'eth_getLogs');
  if (!getLogs || Array.isArray(parsed)) return null;
  const { fromBlock, toBlock } = getLogs.params[0];
  const span = Number(toBlock) - Number(fromBlock) + 1;
  stats.getLogsRanges.push(span);
  if (span <= maxRange) return null;
  return JSON.stringify({ jsonrpc: '2.0', id: getLogs.id, error: { code: -32005, message: `query exceeds max block range ${maxRange}` } });
}

async function lagFinalizedTag(targetUrl: string, body: string, lag: number): Promise<string> {
  const parsed = JSON.parse(body);
  const calls = Array.isArray(parsed) ? parsed : [parsed];
  const tagged = calls.filter((c) => c?.method === 'eth_getBlockByNumber' && ['safe', 'finalized'].includes(c.params?.[0]));
  if (tagged.length === 0) return body;
  const r = await fetch(targetUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }) });
  const head = Number((await r.json()).result);
  for (const c of tagged) c.params[0] = `0x${Math.max(0, head - lag).toString(16)}`;
  return JSON.stringify(parsed);
}
