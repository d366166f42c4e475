import autocannon from 'autocannon';

export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** Connection errors + timeouts + non-2xx answers. */
  errors: number;
  non2xx: number;
  /** Set by bench/run.ts withCpu: CPU µs per request by process (server, worker, Postgres, load generator). */
  cpuUsPerRequest?: Record<string, number>;
  /** Set by bench/run.ts withGc for the API's runs: full collections per second, share of the run's time in GC. */
  apiGc?: { majorPerSecond: number; gcShare: number };
}

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  duration?: number;
  amount?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Paths taken in turn, one per request (e.g. many payments, not one row read over and over); default: url's. */
  paths?: string[];
}

function roundRobin(paths: string[]) {
  let next = 0;
  return (request: { path?: string }) => ({ ...request, path: paths[next++ % paths.length] });
}

/** One autocannon run (a kept load generator, not a hand-written loop), reduced to the figures we report. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.duration ?? 10 }),
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    timeout: 30,
    ...(opts.paths ? { requests: [{ setupRequest: roundRobin(opts.paths) }] } : {}),
  });
  const seconds = result.duration || 1;
  return {
    requests: result.requests.total,
    rps: Math.round(result.requests.total / seconds),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    non2xx: result.non2xx,
  };
}
