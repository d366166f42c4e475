/**
 * `npm run bench [-- --quick] [-- --soak-seconds N] [-- --profile]`: PayFlow's figures, each next to a bare baseline
 * measured in the same invocation on the same machine. Starts the stack on free ports (embedded Postgres,
 * redis-server, hardhat dev chain, DevUSDC) and real API and worker processes in production mode, prints a table
 * and writes bench/results/latest.json. See README "Performance".
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES } from '../shared/queues/names.js';
import { handoffKey } from '../shared/webhooks/firstAttemptHandoff.js';
import { freePort } from '../scripts/devstack/ports.js';
import { devAccounts, rpcCall } from '../scripts/devstack/chain.js';
import { call, createTestMerchant, startGateway, stopChild, waitFor, type Gateway } from '../test/support/gateway.js';
import { procfileNodeArgs } from '../test/support/procfile.js';
import { stopTestStack } from '../test/support/stack.js';
import { startWebhookReceiver } from '../test/support/webhookReceiver.js';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';
import { benchChainScan, type ScanFigure } from './scanBench.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
/** `--pg-waits`: sample what the API's Postgres connections are doing during its runs (pg_stat_activity). */
const pgWaits = args.includes('--pg-waits');
const argValue = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
/** `--only post,get`: a subset of figures (health, get, post, conns, memory, webhooks, latency, startup, scan). */
const only = argValue('--only')?.split(',');
const wants = (figure: string) => !only || only.includes(figure);
const soakSeconds = Number(argValue('--soak-seconds') ?? process.env.BENCH_SOAK_SECONDS ?? (quick ? 20 : 300));
/** Postgres connections per process, the same for the API and the baselines. */
const poolMax = argValue('--pool') ?? '10';
const duration = quick ? 3 : 10;
const warmup = quick ? 1 : 3;
const compareRounds = quick ? 1 : 3;
const scanLarge = quick ? 100_000 : 1_000_000;
const scanBlocks = quick ? 2 : 5;
const latencySamples = quick ? 10 : 40;
const webhookCount = quick ? 2000 : 5000;
const memoryRequests = quick ? 20_000 : 100_000;
/** Payments the read figures go round (GET /payments/:id, its baseline, the connection and memory figures). */
const readPayments = 1000;
const resultsDir = path.join(repoRoot, 'bench/results');
/**
 * Deposit addresses the worker derives before the first figure: it derives them at start-up, and a worker busy
 * deriving (0.3 ms of CPU each) takes a core from whatever is measured meanwhile (it did: 120 µs of worker CPU per
 * GET request). More than twice what the POST runs take (warm-up and rounds at a few thousand a second), so the pool
 * neither runs dry nor drops to the half where the worker refills it while POST is measured. The soak that follows
 * does drain it: the API then derives addresses itself, as designed.
 */
const addressPoolSize = Number(argValue('--address-pool') ?? (quick ? 50_000 : 400_000));

const say = (line: string) => process.stderr.write(`${line}\n`);

interface Row {
  figure: string;
  value: string;
  baseline: string;
  ratio: number | null;
  target: string;
  pass: boolean | null;
}
const rows: Row[] = [];
const raw: Record<string, unknown> = {};

/** CPU time (user + system) a process and, with `children`, its direct children have used so far, in ms. */
function cpuMs(pid: number, children = false): number {
  const ticks = (p: number) => {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of proc(5))
    } catch {
      return 0; // exited meanwhile
    }
  };
  let total = ticks(pid);
  if (children) {
    // Children that have exited and been waited for (Postgres backends closing) count in cutime and cstime.
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      total += Number(fields[13]) + Number(fields[14]);
    } catch {
      // exited meanwhile
    }
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(pid)) total += ticks(Number(entry));
      } catch {
        // exited meanwhile
      }
    }
  }
  return (total * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * CPU time (ms) the whole machine has spent busy so far, every process and the kernel (interrupts, loopback
 * networking) together: /proc/stat's first line minus idle and iowait. Next to the processes' own figures it shows
 * what no process is charged for, and, per second, how close the cores are to full.
 */
function machineBusyMs(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * CPU time (ms) used so far by the Postgres backends (children of `postmaster`) serving connections whose
 * application_name is `applicationName`: what the API's or the worker's own statements cost Postgres. The backends
 * are found before each run (`refresh`).
 */
function postgresBackendsCpu(db: Gateway['db'], applicationName: string) {
  let pids: number[] = [];
  const lastRead = new Map<number, number>();
  return {
    async refresh() {
      const { rows } = await db.raw(`SELECT pid FROM pg_stat_activity WHERE application_name = ?`, [applicationName]);
      pids = (rows as { pid: number }[]).map((r) => r.pid);
    },
    // A backend that exits during the run (the pool reaping an idle connection) keeps the last figure read.
    meter: () =>
      pids.reduce((total, pid) => {
        const used = cpuMs(pid) || lastRead.get(pid) || 0;
        lastRead.set(pid, used);
        return total + used;
      }, 0),
  };
}

/**
 * CPU per request during one run, by who spent it (`meters`: CPU ms used so far, e.g. the server under test, the
 * worker, Postgres), plus the load generator (this process, where autocannon runs). On 2 cores the sum bounds
 * throughput, so this says where a ratio is lost.
 */
async function withCpu(run: () => Promise<LoadResult>, meters: Record<string, () => number> = {}): Promise<LoadResult> {
  const before = Object.fromEntries(Object.entries(meters).map(([k, meter]) => [k, meter()]));
  const self = process.cpuUsage();
  const result = await run();
  const selfUsed = process.cpuUsage(self);
  const perRequest = (ms: number) => Math.round((ms * 1000) / Math.max(result.requests, 1));
  const cpu: Record<string, number> = Object.fromEntries(Object.entries(meters).map(([k, meter]) => [k, perRequest(meter() - before[k])]));
  cpu.loadgen = perRequest((selfUsed.user + selfUsed.system) / 1000);
  return { ...result, cpuUsPerRequest: cpu };
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

async function startBaseline(mode: 'hello' | 'select' | 'insert', env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench/baselineServer.ts')], {
    env: { PATH: process.env.PATH ?? '', ...env, BASELINE: mode, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`baseline ${mode} exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/**
 * With --pg-waits, what the API's Postgres connections are doing, sampled every 20 ms from pg_stat_activity:
 * "active" (running a statement), "idle in transaction" (waiting for the API to send the next statement of a
 * transaction), a lock wait, or "idle" (back in the pool). Shares of the samples.
 */
let waitSampler: ((applicationName?: string) => { stop(): Promise<Record<string, number>> }) | undefined;
function startWaitSampler(db: Gateway['db']) {
  return (applicationName = 'payflow-api') => {
    const counts: Record<string, number> = {};
    let total = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const { rows } = await db.raw(
          `SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = ? AND pid <> pg_backend_pid()`,
          [applicationName],
        );
        for (const r of rows as { state: string; wait_event_type: string | null; wait_event: string | null }[]) {
          const key = r.wait_event_type && r.wait_event_type !== 'Client' ? `${r.state}: ${r.wait_event_type}/${r.wait_event}` : r.state;
          counts[key] = (counts[key] ?? 0) + 1;
          total++;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return Object.fromEntries(Object.entries(counts).sort((x, y) => y[1] - x[1]).map(([k, n]) => [k, Math.round((n / Math.max(total, 1)) * 1000) / 10]));
      },
    };
  };
}

/**
 * Warm-up of both, then `rounds` alternating runs (baseline, PayFlow, baseline, …): on a shared machine the load
 * from other processes drifts, and alternating puts both sides under the same drift. The round with the median
 * ratio is reported; every round is kept in the raw results.
 */
type Side = LoadOptions & { cpu?: Record<string, () => number>; beforeRun?: () => Promise<void>; gc?: () => Promise<GcReading> };

/** The API's garbage collections so far, from its own /metrics (prom-client's nodejs_gc_duration_seconds). */
interface GcReading {
  major: number;
  seconds: number;
}
function apiGcReader(apiUrl: string, metricsToken: string) {
  return async (): Promise<GcReading> => {
    const res = await fetch(`${apiUrl}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET /metrics: ${res.status} ${text.slice(0, 200)}`);
    const series = [...text.matchAll(/^payflow_nodejs_gc_duration_seconds_(count|sum)\{([^}]*)\} (\S+)$/gm)];
    if (series.length === 0) throw new Error('GET /metrics: no payflow_nodejs_gc_duration_seconds series');
    const total = (field: string, kind?: string) =>
      series.filter((m) => m[1] === field && (!kind || m[2].includes(`kind="${kind}"`))).reduce((sum, m) => sum + Number(m[3]), 0);
    return { major: total('count', 'major'), seconds: total('sum') };
  };
}

/**
 * Full collections per second, and the share of the run's wall time in GC: the API runs in one of two regimes under
 * the same load (README "Performance", sixth session), and this says which one a round ran in.
 */
async function withGc(run: () => Promise<LoadResult>, gc?: () => Promise<GcReading>): Promise<LoadResult> {
  if (!gc) return run();
  const before = await gc();
  const started = Date.now();
  const result = await run();
  const seconds = (Date.now() - started) / 1000;
  const after = await gc();
  return { ...result, apiGc: { majorPerSecond: Math.round(((after.major - before.major) / seconds) * 10) / 10, gcShare: Math.round(((after.seconds - before.seconds) / seconds) * 1000) / 1000 } };
}
async function compare(base: Side, api: Side): Promise<{ a: LoadResult; b: LoadResult; ratio: number; rounds: { a: LoadResult; b: LoadResult; ratio: number }[] }> {
  await runLoad({ ...base, duration: warmup, amount: undefined });
  await runLoad({ ...api, duration: warmup, amount: undefined });
  const rounds: { a: LoadResult; b: LoadResult; ratio: number; apiPostgresWaits?: Record<string, number> }[] = [];
  for (let i = 0; i < compareRounds; i++) {
    await base.beforeRun?.();
    const b = await withCpu(() => runLoad(base), base.cpu);
    const sampling = waitSampler?.();
    await api.beforeRun?.();
    const a = await withGc(() => withCpu(() => runLoad(api), api.cpu), api.gc);
    const waits = await sampling?.stop();
    rounds.push({ a, b, ratio: ratio(a.rps, b.rps), ...(waits ? { apiPostgresWaits: waits } : {}) });
    const cpuLine = (c?: Record<string, number>) => (c ? Object.entries(c).map(([k, us]) => `${k} ${us}`).join(', ') : '?');
    const gcLine = a.apiGc ? `; API GC: ${a.apiGc.majorPerSecond} full/s, ${Math.round(a.apiGc.gcShare * 1000) / 10} % of the run` : '';
    // The machine's busy share over the run: its CPU per request × requests per second, over the cores.
    const busy = (r: LoadResult) => (r.cpuUsPerRequest?.machine ? ` (cores ${Math.round((r.cpuUsPerRequest.machine * r.rps) / 1e4 / os.cpus().length)} % busy)` : '');
    say(`  round ${i + 1}: ${a.rps} vs ${b.rps} req/s; CPU µs/request PayFlow: ${cpuLine(a.cpuUsPerRequest)}${busy(a)} | baseline: ${cpuLine(b.cpuUsPerRequest)}${busy(b)}${gcLine}`);
  }
  const median = [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor(rounds.length / 2)];
  return { ...median, rounds };
}

const fmt = (r: LoadResult) => `${r.rps} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms`;
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

async function main() {
  const started = Date.now();
  say(`payflow bench (${quick ? 'quick' : 'full'}; soak ${soakSeconds} s) — starting the stack…`);
  const profileDir = path.join(resultsDir, 'profiles');
  if (profile) mkdirSync(profileDir, { recursive: true });
  // Production mode: the compiled build, as the Procfile runs it (tsx's loader and source maps stay out of the figures).
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts/build.mjs'), '--if-stale'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  const gw: Gateway = await startGateway({
    compiled: true,
    workers: 1,
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      DATABASE_POOL_MAX: poolMax,
      EXPIRY_SWEEP_INTERVAL_MS: '2000',
      OUTBOX_POLL_INTERVAL_MS: '1000',
      WEBHOOK_RETRY_SCHEDULE: '1,2,5',
      // Limits stay in the request path (their Redis round trips are part of the cost) but never throttle the load.
      RATE_LIMIT_READ: '10000000',
      RATE_LIMIT_WRITE: '10000000',
      RATE_LIMIT_PER_IP: '10000000',
      DEPOSIT_ADDRESS_POOL_SIZE: String(addressPoolSize),
      // One endpoint receives every delivery here; allow it as many attempts in flight as the baseline's concurrency.
      WEBHOOK_ENDPOINT_CONCURRENCY: '10',
      ...(profile ? { NODE_OPTIONS: `--import ${path.join(repoRoot, 'bench/cpuProfile.mjs')}`, BENCH_PROFILE_DIR: profileDir } : {}),
    },
  });
  if (pgWaits) waitSampler = startWaitSampler(gw.db);
  const postmaster = Number(readFileSync(path.join(gw.stack.dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const postgresCpu = () => cpuMs(postmaster, true);
  // Postgres's share split by whose statements it ran: the API's connections, the worker's (the rest is
  // Postgres's own processes: WAL writer, checkpointer, autovacuum).
  const apiBackends = postgresBackendsCpu(gw.db, 'payflow-api');
  const workerBackends = postgresBackendsCpu(gw.db, 'payflow-worker');
  // Both sides share Redis and the machine; each side's rounds read them for themselves.
  const sharedCpu = { redis: () => cpuMs(gw.stack.pids.redis), machine: machineBusyMs };
  const gatewayCpu = {
    server: () => cpuMs(gw.api.pid!),
    worker: () => cpuMs(gw.workers[0].pid!),
    postgres: postgresCpu,
    'postgres for server': apiBackends.meter,
    'postgres for worker': workerBackends.meter,
    ...sharedCpu,
  };
  /** What every HTTP figure measures on the gateway's side besides the load: CPU by process, the API's GC. */
  const gatewaySide = {
    cpu: gatewayCpu,
    beforeRun: async () => {
      await Promise.all([apiBackends.refresh(), workerBackends.refresh()]);
    },
    gc: apiGcReader(gw.apiUrl, gw.adminToken),
  };
  const baselineCpu = (child: ChildProcess) => ({ server: () => cpuMs(child.pid!), postgres: postgresCpu, ...sharedCpu });
  const baselineEnv = { DATABASE_URL: gw.databaseUrl, REDIS_URL: gw.stack.redisUrl, DATABASE_POOL_MAX: poolMax };
  const merchant = await createTestMerchant(gw, 'Bench Shop');
  const auth = { authorization: `Bearer ${merchant.api_key}` };
  const json = { 'content-type': 'application/json' };
  // No order_id: it is unique per merchant, and autocannon repeats one body.
  const paymentBody = JSON.stringify({ amount: '0.05', currency: 'ETH', metadata: { cart: '42' } });

  try {
    say(`waiting for the worker to derive ${addressPoolSize.toLocaleString('en')} deposit addresses…`);
    // Once a second: the count itself reads the whole pool (250k rows), on the cores the worker derives them with.
    await waitFor(async () => Number((await gw.db('deposit_address_pool').count('* as n').first())!.n) >= addressPoolSize, 30 * 60_000, undefined, 1000);

    // --- GET /health vs bare node:http
    if (wants('health')) {
      say('GET /health vs bare node:http…');
      const base = await startBaseline('hello', baselineEnv);
      const { a, b, ratio: r, rounds } = await compare({ url: `${base.url}/health`, connections: 64, duration, cpu: baselineCpu(base.child) }, { url: `${gw.apiUrl}/health`, connections: 64, duration, ...gatewaySide });
      await stopChild(base.child);
      raw.health = { api: a, baseline: b, rounds };
      rows.push({ figure: 'GET /health (64 conns)', value: fmt(a), baseline: fmt(b), ratio: r, target: '≥ 0.8×', pass: r >= 0.8 && a.errors === 0 });
    }

    // --- GET /api/v1/payments/:id vs node:http + one pg SELECT
    // Reads go round the payments of a shop, not one row over and over (which would flatter any cache or batch).
    const paymentIds: string[] = [];
    for (let i = 0; i < readPayments; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, readPayments - i) }, () => call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: JSON.parse(paymentBody) })),
      );
      for (const created of batch) {
        if (created.status !== 201) throw new Error(`cannot create a payment: ${created.status} ${JSON.stringify(created.body)}\n${gw.logs().slice(-3000)}`);
        paymentIds.push(created.body.id as string);
      }
    }
    const paymentPaths = paymentIds.map((id) => `/api/v1/payments/${id}`);
    const paymentReads = { url: `${gw.apiUrl}/api/v1/payments`, paths: paymentPaths, headers: auth };
    if (wants('get')) {
      say('GET /api/v1/payments/:id vs node:http + pg SELECT…');
      const base = await startBaseline('select', baselineEnv);
      const { a, b, ratio: r, rounds } = await compare(
        { url: base.url, paths: paymentIds.map((id) => `/payments/${id}`), connections: 64, duration, cpu: baselineCpu(base.child) },
        { ...paymentReads, connections: 64, duration, ...gatewaySide },
      );
      await stopChild(base.child);
      raw.getPayment = { api: a, baseline: b, rounds };
      rows.push({ figure: 'GET /api/v1/payments/:id (64 conns)', value: fmt(a), baseline: fmt(b), ratio: r, target: '≥ 0.7×, p99 ≤ 20 ms', pass: r >= 0.7 && a.p99 <= 20 && a.errors === 0 });
    }

    // --- POST /api/v1/payments vs node:http + one pg INSERT + one BullMQ add
    if (wants('post')) {
      say('POST /api/v1/payments vs node:http + pg INSERT + BullMQ add…');
      // Like for like: the baseline adds a BullMQ job per request, and so does a merchant with a webhook endpoint
      // (payment, event and delivery in Postgres; the delivery handed over by the API and its first job added to
      // BullMQ by the worker). The webhooks queue is paused meanwhile, as the baseline's queue has no consumer; those
      // deliveries are cleared afterwards.
      const hooksConnection = new Redis(gw.stack.redisUrl, { maxRetriesPerRequest: null });
      const hooks = new Queue(QUEUES.webhooks, { connection: hooksConnection, prefix: gw.env.QUEUE_PREFIX });
      await hooks.pause();
      const endpoint = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: 'http://127.0.0.1:9/post-bench' } });
      if (endpoint.status !== 201) throw new Error(`cannot create a webhook endpoint: ${endpoint.status} ${JSON.stringify(endpoint.body)}`);
      const base = await startBaseline('insert', baselineEnv);
      const { a, b, ratio: r, rounds } = await compare(
        { url: `${base.url}/payments`, connections: 64, duration, method: 'POST', headers: json, body: paymentBody, cpu: baselineCpu(base.child) },
        { url: `${gw.apiUrl}/api/v1/payments`, connections: 64, duration, method: 'POST', headers: { ...auth, ...json }, body: paymentBody, ...gatewaySide },
      );
      await stopChild(base.child);
      await waitFor(async () => (await hooksConnection.llen(handoffKey(gw.env.QUEUE_PREFIX))) === 0, 60_000);
      const jobsQueued = await hooks.count();
      await call(gw, 'DELETE', `/api/v1/webhook-endpoints/${endpoint.body.id}`, { auth: merchant.api_key });
      await waitFor(async () => Number((await gw.db('outbox').count('* as n').first())!.n) === 0, 120_000);
      await gw.db('webhook_deliveries').where({ endpoint_id: endpoint.body.id, status: 'pending' }).update({ status: 'failed', last_error: 'bench: not delivered' });
      await hooks.obliterate({ force: true });
      await hooks.resume();
      await hooks.close();
      hooksConnection.disconnect();
      raw.createPayment = { api: a, baseline: b, rounds, webhookJobsQueued: jobsQueued };
      rows.push({ figure: 'POST /api/v1/payments (64 conns)', value: fmt(a), baseline: fmt(b), ratio: r, target: '≥ 0.7×, p99 ≤ 50 ms', pass: r >= 0.7 && a.p99 <= 50 && a.errors === 0 });
    }

    // --- 2,000 concurrent keep-alive connections on reads
    if (wants('conns')) {
      say('2,000 concurrent keep-alive connections on GET /api/v1/payments/:id…');
      const a = await runLoad({ ...paymentReads, connections: 2000, duration: Math.max(duration, 5) });
      raw.connections2000 = a;
      rows.push({ figure: '2,000 keep-alive conns on reads', value: `${a.requests} requests, ${a.errors} errors, p99 ${a.p99} ms`, baseline: '—', ratio: null, target: '0 errors', pass: a.errors === 0 });
    }

    // --- RSS after 100k requests, then growth over the soak
    if (wants('memory')) {
      say(`${memoryRequests.toLocaleString('en')} requests, then API RSS…`);
      await runLoad({ ...paymentReads, connections: 64, amount: memoryRequests });
      const after100k = rssMb(gw.api.pid!);
      say(`soak: ${soakSeconds} s of mixed reads and writes…`);
      const samples: { t: number; rssMb: number }[] = [{ t: 0, rssMb: after100k }];
      const soakStart = Date.now();
      const sampler = setInterval(() => samples.push({ t: Math.round((Date.now() - soakStart) / 1000), rssMb: rssMb(gw.api.pid!) }), 5000);
      const [reads, writes] = await Promise.all([
        runLoad({ ...paymentReads, connections: 24, duration: soakSeconds }),
        runLoad({ url: `${gw.apiUrl}/api/v1/payments`, connections: 4, duration: soakSeconds, method: 'POST', headers: { ...auth, ...json }, body: paymentBody }),
      ]);
      clearInterval(sampler);
      const end = rssMb(gw.api.pid!);
      samples.push({ t: soakSeconds, rssMb: end });
      // Growth is steady state against steady state under the same load: the median RSS of the soak's last fifth
      // against its first fifth. The idle reading after the 100k requests is not a fair start: load alone (sockets,
      // buffers, a busier heap) lifts RSS without anything leaking.
      const loaded = samples.slice(1);
      const fifth = Math.max(1, Math.floor(loaded.length / 5));
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
      const early = median(loaded.slice(0, fifth).map((x) => x.rssMb));
      const late = median(loaded.slice(-fifth).map((x) => x.rssMb));
      const growth = Math.round(((late - early) / early) * 1000) / 10;
      raw.memory = { requests: memoryRequests, afterRequestsMb: after100k, soakEarlyMedianMb: early, soakLateMedianMb: late, soakEndMb: end, growthPercent: growth, soakSeconds, samples, soakReads: reads, soakWrites: writes };
      rows.push({ figure: `API RSS after ${memoryRequests / 1000}k requests`, value: `${after100k} MB`, baseline: '—', ratio: null, target: '≤ 200 MB', pass: after100k <= 200 });
      rows.push({ figure: `API RSS growth over a ${soakSeconds} s soak`, value: `${growth >= 0 ? '+' : ''}${growth} % (median ${early} → ${late} MB, ${reads.requests + writes.requests} requests, ${reads.errors + writes.errors} errors)`, baseline: '—', ratio: null, target: '≤ +10 %', pass: growth <= 10 });
    }

    // --- webhook deliveries/s vs BullMQ job + plain HTTP POST
    const receiver = await startWebhookReceiver();
    try {
      const endpoint = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url, events: ['payment.confirmed'] } });
      if (endpoint.status !== 201) throw new Error(`cannot create a webhook endpoint: ${endpoint.status} ${JSON.stringify(endpoint.body)}`);
      if (wants('webhooks')) {
        say(`webhook deliveries/s (${webhookCount}) vs BullMQ + plain POST…`);
        const runBaseline = async () => {
          const out = await new Promise<string>((resolve, reject) => {
            const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench/baselineWebhooks.ts')], {
              env: { PATH: process.env.PATH ?? '', REDIS_URL: gw.stack.redisUrl, RECEIVER_URL: receiver.url, COUNT: String(webhookCount), WORKER_CONCURRENCY: '10' },
              stdio: ['ignore', 'pipe', 'inherit'],
            });
            let text = '';
            child.stdout!.on('data', (c) => (text += c));
            child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`webhook baseline exited ${code}`))));
          });
          const { elapsedMs, cpuMs: baselineCpuMs } = JSON.parse(out) as { elapsedMs: number; cpuMs: number };
          return { perSecond: Math.round(webhookCount / (elapsedMs / 1000)), cpuMsPerDelivery: Math.round((baselineCpuMs / webhookCount) * 1000) / 1000 };
        };
        // PayFlow: N events written the way recordEvent writes them (event + delivery + outbox row), in one
        // transaction; the clock stops when the receiver has got every one of them (counted by webhook-id) and
        // Postgres has recorded every delivery as succeeded. The figure is what the receiver got per second.
        const runPayflow = async (round: number) => {
          const tag = `bench${round}_`;
          const ids = new Set<string>();
          let seen = receiver.received.length;
          let duplicates = 0;
          const sampling = waitSampler?.('payflow-worker');
          // CPU of the worker and of Postgres (the postmaster's children) over the run: per delivery, less noisy than
          // the rate on a machine shared with other work.
          const cpu0 = { worker: cpuMs(gw.workers[0].pid!), postgres: postgresCpu() };
          const t0 = performance.now();
          await gw.db.transaction(async (trx) => {
            await trx.raw(
              `INSERT INTO events (id, merchant_id, type, data)
               SELECT 'evt_${tag}' || i, ?, 'payment.confirmed', jsonb_build_object('id', 'pay_${tag}' || i, 'amount', '0.05') FROM generate_series(1, ?) i`,
              [merchant.id, webhookCount],
            );
            await trx.raw(`INSERT INTO webhook_deliveries (id, event_id, endpoint_id) SELECT 'whd_${tag}' || i, 'evt_${tag}' || i, ? FROM generate_series(1, ?) i`, [endpoint.body.id, webhookCount]);
            await trx.raw(
              `INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
               SELECT 'webhooks', 'deliver', 'whd_${tag}' || i || '-0', jsonb_build_object('deliveryId', 'whd_${tag}' || i), now() FROM generate_series(1, ?) i`,
              [webhookCount],
            );
            await trx.raw('NOTIFY payflow_outbox');
          });
          // The receiver is in this process: watch it closely (no Postgres polling while the worker runs).
          const deadline = Date.now() + 600_000;
          while (ids.size < webhookCount) {
            for (; seen < receiver.received.length; seen++) {
              const id = String(receiver.received[seen].headers['webhook-id']);
              if (!id.startsWith(`evt_${tag}`)) continue;
              if (ids.has(id)) duplicates++;
              ids.add(id);
            }
            if (Date.now() > deadline) throw new Error(`the receiver got ${ids.size} of ${webhookCount} webhooks\n${gw.logs().slice(-3000)}`);
            await new Promise((r) => setTimeout(r, 5));
          }
          await waitFor(async () => {
            const [{ n }] = await gw.db('webhook_deliveries').where('id', 'like', `whd_${tag}%`).where({ status: 'succeeded' }).count({ n: '*' });
            return Number(n) === webhookCount;
          }, 600_000, () => 'webhook deliveries did not finish');
          const elapsedSeconds = (performance.now() - t0) / 1000;
          const perDelivery = (ms: number) => Math.round((ms / webhookCount) * 1000) / 1000;
          const cpu = { workerMsPerDelivery: perDelivery(cpuMs(gw.workers[0].pid!) - cpu0.worker), postgresMsPerDelivery: perDelivery(postgresCpu() - cpu0.postgres) };
          const waits = await sampling?.stop();
          if (waits) say(`worker's Postgres connections: ${JSON.stringify(waits)}`);
          return { perSecond: Math.round(ids.size / elapsedSeconds), received: ids.size, duplicates, cpu, ...(waits ? { workerPostgresWaits: waits } : {}) };
        };
        // The worker does start-up work of its own (e.g. deriving the deposit address pool): let it finish, so the
        // figure is the delivery path's and not whatever else the process was doing at that moment.
        const quietStart = performance.now();
        // Idle, the worker still polls the chain, samples metrics and runs its schedulers: "quiet" is under 40 % of a
        // core for two seconds in a row (deriving addresses keeps it near 100 %).
        let lastShare = 0;
        for (let before = cpuMs(gw.workers[0].pid!), quiet = 0; quiet < 2 && performance.now() - quietStart < 120_000; ) {
          await new Promise((r) => setTimeout(r, 1000));
          const now = cpuMs(gw.workers[0].pid!);
          lastShare = (now - before) / 1000;
          quiet = lastShare < 0.4 ? quiet + 1 : 0;
          before = now;
        }
        say(`  (worker quiet after ${Math.round(performance.now() - quietStart)} ms: ${Math.round(lastShare * 100)} % of a core)`);
        // Alternating rounds, as for the HTTP figures: the round with the median ratio is reported.
        const webhookRounds: { payflow: Awaited<ReturnType<typeof runPayflow>>; baseline: Awaited<ReturnType<typeof runBaseline>>; ratio: number }[] = [];
        for (let round = 0; round < compareRounds; round++) {
          const baseline = await runBaseline();
          const payflow = await runPayflow(round);
          webhookRounds.push({ payflow, baseline, ratio: ratio(payflow.perSecond, baseline.perSecond) });
        }
        const median = [...webhookRounds].sort((x, y) => x.ratio - y.ratio)[Math.floor(webhookRounds.length / 2)];
        raw.webhooks = { count: webhookCount, deliveriesPerSecond: median.payflow.perSecond, baselinePerSecond: median.baseline.perSecond, rounds: webhookRounds };
        rows.push({
          figure: 'webhook deliveries/s (local receiver)',
          value: `${median.payflow.perSecond}/s`,
          baseline: `${median.baseline.perSecond}/s`,
          ratio: median.ratio,
          target: '≥ 0.5×',
          pass: median.ratio >= 0.5,
        });
      }

      // --- block mined → payment.confirmed webhook received (1 confirmation, light load)
      if (wants('latency')) {
        say(`block mined → payment.confirmed received (${latencySamples} payments)…`);
        const payer = devAccounts(10)[8].address;
        const latencies: number[] = [];
        await rpcCall(gw.stack.rpcUrl, 'evm_setAutomine', [false]);
        try {
          for (let i = 0; i < latencySamples; i++) {
            const p = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.001', currency: 'ETH', confirmations: 1 } });
            await rpcCall(gw.stack.rpcUrl, 'eth_sendTransaction', [{ from: payer, to: p.body.address, value: '0x38d7ea4c68000', gas: '0x5208' }]);
            await new Promise((r) => setTimeout(r, Math.random() * 400)); // vary the phase against the scanner's poll
            const t0 = Date.now();
            await rpcCall(gw.stack.rpcUrl, 'evm_mine', []);
            const hit = await waitFor(
              async () => receiver.received.find((w) => w.receivedAt >= t0 && w.body.includes(p.body.id) && w.body.includes('"payment.confirmed"')),
              30_000,
              () => `no payment.confirmed for ${p.body.id}\n${gw.logs().slice(-3000)}`,
            );
            latencies.push(hit.receivedAt - t0);
          }
        } finally {
          await rpcCall(gw.stack.rpcUrl, 'evm_setAutomine', [true]);
        }
        const sorted = [...latencies].sort((a, b) => a - b);
        const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
        const interval = 400; // startGateway configures block_time 0.4 s for the test chain
        raw.confirmLatency = { samplesMs: latencies, p50: pct(0.5), p99: pct(0.99), blockIntervalMs: interval };
        rows.push({ figure: 'block mined → payment.confirmed received', value: `p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`, baseline: `block interval ${interval} ms`, ratio: null, target: `p99 ≤ ${interval + 500} ms`, pass: pct(0.99) <= interval + 500 });
      }
    } finally {
      await receiver.close();
    }

    // --- API process start → /health 200 (services up): the compiled build, as the Procfile runs it, and (for
    // comparison, not a target) the same process from source under tsx, as `npm start` and the tests run it.
    if (wants('startup')) {
      say('API start → /health 200…');
      const startupMs = async (entry: string[]) => {
        const port = await freePort();
        const t0 = performance.now();
        const child = spawn(process.execPath, entry, { cwd: repoRoot, env: { ...gw.env, NODE_OPTIONS: '', PORT: String(port) }, stdio: 'ignore' });
        try {
          // A short poll interval: the figure is start-up time, not waitFor's 100 ms granularity.
          const deadline = Date.now() + 30_000;
          for (;;) {
            if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) return Math.round(performance.now() - t0);
            if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${entry.join(' ')} did not answer /health`);
            await new Promise((r) => setTimeout(r, 10));
          }
        } finally {
          await stopChild(child);
        }
      };
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
      const compiled: number[] = [];
      const fromSource: number[] = [];
      const webArgs = procfileNodeArgs('web');
      // Interleaved, so a burst of load on this shared machine hits both variants rather than one.
      for (let i = 0; i < (quick ? 5 : 9); i++) {
        compiled.push(await startupMs(webArgs));
        if (i < (quick ? 3 : 5)) fromSource.push(await startupMs(['--import', 'tsx', path.join(repoRoot, 'api/main.ts')]));
      }
      raw.startup = { entry: `node ${webArgs.map((a) => (a.startsWith('-') ? a : path.relative(repoRoot, a))).join(' ')}`, samplesMs: compiled, medianMs: median(compiled), fromSource: { entry: 'node --import tsx api/main.ts', samplesMs: fromSource, medianMs: median(fromSource) } };
      rows.push({ figure: 'API process start → /health 200', value: `${median(compiled)} ms (median of ${compiled.length})`, baseline: '—', ratio: null, target: '≤ 1000 ms', pass: median(compiled) <= 1000 });
      rows.push({ figure: '  same, from source under tsx (dev)', value: `${median(fromSource)} ms (median of ${fromSource.length})`, baseline: '—', ratio: null, target: '— (not a target)', pass: null });
    }

    // --- chain scan per block vs open payments (the workers are stopped so the timed scans run alone)
    if (wants('scan')) {
      say('chain scan per block of 500 transfers, 1,000 vs many open payments…');
      await Promise.all(gw.workers.map((w) => stopChild(w)));
      const scans: ScanFigure[] = [];
      for (const open of [1000, scanLarge]) {
        scans.push(
          await benchChainScan({ adminDatabaseUrl: gw.stack.databaseUrl, rpcUrl: gw.stack.rpcUrl, chainId: gw.stack.chainId, usdcAddress: gw.stack.usdcAddress, open, blocks: scanBlocks, onProgress: say }),
        );
      }
      raw.chainScan = scans;
      const r = ratio(scans[1].medianMs, scans[0].medianMs);
      rows.push({
        figure: `chain scan per block (500 transfers), 1,000 vs ${scanLarge.toLocaleString('en')} open`,
        value: `${scans[1].medianMs} ms at ${scanLarge.toLocaleString('en')}`,
        baseline: `${scans[0].medianMs} ms at 1,000`,
        ratio: r,
        target: '≤ 1.5× apart',
        pass: r <= 1.5,
      });
    }
  } finally {
    await gw.stop();
    await stopTestStack();
  }

  printTable();
  const commit = (() => {
    try {
      const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot }).toString().trim() !== '';
      return { sha, dirty };
    } catch {
      // Run from an export without .git (e.g. `git archive`): the caller may say which commit it is.
      return process.env.BENCH_COMMIT ? { sha: process.env.BENCH_COMMIT, dirty: false } : null;
    }
  })();
  const result = {
    mode: quick ? 'quick' : 'full',
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    commit,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      loadAverage: os.loadavg(),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
    },
    settings: { poolMax: Number(poolMax), compareRounds, memoryRequests, duration, warmup, soakSeconds, scanLarge, scanBlocks, latencySamples, webhookCount },
    rows,
    raw,
  };
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(result, null, 2));
  say(`\nwrote bench/results/latest.json (${result.durationSeconds} s)`);
}


function printTable() {
  const header = ['figure', 'PayFlow', 'baseline', 'ratio', 'target', ''];
  const lines = rows.map((r) => [r.figure, r.value, r.baseline, r.ratio === null ? '—' : `${r.ratio}×`, r.target, r.pass === null ? '' : r.pass ? 'ok' : 'MISSED']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' │ ');
  process.stdout.write(`\n${line(header)}\n${widths.map((w) => '─'.repeat(w)).join('─┼─')}\n${lines.map(line).join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  async (err) => {
    say(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    await stopTestStack().catch(() => {});
    process.exit(1);
  },
);
