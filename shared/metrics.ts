import { sameSecret } from './sameSecret.js';
import { withTimeout } from './withTimeout.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queues, RedisConnection } from './queues/redis.js';
import type { Db } from './db.js';
import { handoffKey } from './webhooks/firstAttemptHandoff.js';

/**
 * Prometheus metrics of one PayFlow process (API or worker), served at /metrics behind METRICS_TOKEN.
 *
 * Names follow Prometheus conventions: `payflow_` prefix, `_total` counters, `_seconds` durations. Labels are
 * bounded sets only (chain id, status, outcome, queue, route template); never an address, payment id or URL.
 *
 * Counters count what THIS process did; sum them over instances. Gauges sampled from Postgres or Redis at scrape
 * time (backlogs, queue depths) are the same in every process; take max() over instances, not sum().
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'payflow_' });

const registers = [metricsRegistry];

/** Adds `service="api"` / `service="worker"` to every series of this process. */
export function setMetricsService(service: 'api' | 'worker'): void {
  metricsRegistry.setDefaultLabels({ service });
}

// ---- HTTP ------------------------------------------------------------------------------------------------------

export const httpRequestDuration = new Histogram({
  name: 'payflow_http_request_duration_seconds',
  help: 'API request duration by method, route template and status code',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});

// ---- payments --------------------------------------------------------------------------------------------------

export const paymentsCreated = new Counter({
  name: 'payflow_payments_created_total',
  help: 'Payments created, by chain and currency',
  labelNames: ['chain_id', 'currency'] as const,
  registers,
});

export const paymentTransitions = new Counter({
  name: 'payflow_payment_transitions_total',
  help: 'Payment status changes committed, by new status and chain',
  labelNames: ['status', 'chain_id'] as const,
  registers,
});

export const paymentEvents = new Counter({
  name: 'payflow_payment_events_total',
  help: 'Payment events recorded (committed), by event type and chain',
  labelNames: ['type', 'chain_id'] as const,
  registers,
});

export const confirmationLatency = new Histogram({
  name: 'payflow_payment_confirmation_seconds',
  help: 'Time from payment creation to confirmation',
  labelNames: ['chain_id'] as const,
  buckets: [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
  registers,
});

const STATUS_OF_EVENT: Record<string, string> = {
  'payment.confirming': 'confirming',
  'payment.confirmed': 'confirmed',
  'payment.expired': 'expired',
  'payment.canceled': 'canceled',
  'payment.settled': 'settled',
};

/**
 * Counts a payment event once its transaction has committed (a rolled-back scan step counts nothing). `data` is
 * the presented payment (shared/payments/present.ts).
 */
export function countPaymentEventOnCommit(
  trx: { executionPromise?: Promise<unknown> },
  type: string,
  data: unknown,
): void {
  const payment = (data ?? {}) as { chain_id?: number; currency?: string; created_at?: string; confirmed_at?: string | null };
  const chainId = String(payment.chain_id ?? 'unknown');
  const count = () => {
    paymentEvents.inc({ type, chain_id: chainId });
    if (type === 'payment.created') paymentsCreated.inc({ chain_id: chainId, currency: payment.currency ?? 'unknown' });
    const status = STATUS_OF_EVENT[type];
    if (status) paymentTransitions.inc({ status, chain_id: chainId });
    if (type === 'payment.confirmed' && payment.created_at) {
      const confirmedAt = payment.confirmed_at ? Date.parse(payment.confirmed_at) : Date.now();
      const seconds = (confirmedAt - Date.parse(payment.created_at)) / 1000;
      if (seconds >= 0) confirmationLatency.observe({ chain_id: chainId }, seconds);
    }
  };
  if (trx.executionPromise) trx.executionPromise.then(count, () => {});
  else count();
}

// ---- chain -----------------------------------------------------------------------------------------------------

export const chainHead = new Gauge({
  name: 'payflow_chain_head_block',
  help: 'Newest block number the node reported, per chain',
  labelNames: ['chain_id'] as const,
  registers,
});

export const chainScannedBlock = new Gauge({
  name: 'payflow_chain_scanned_block',
  help: 'Newest block scanned and committed, per chain',
  labelNames: ['chain_id'] as const,
  registers,
});

export const chainHeadLag = new Gauge({
  name: 'payflow_chain_head_lag_blocks',
  help: 'Blocks between the node head and the newest scanned block, per chain',
  labelNames: ['chain_id'] as const,
  registers,
});

export const chainReorgs = new Counter({
  name: 'payflow_chain_reorgs_total',
  help: 'Reorganisations handled by the scanner, per chain',
  labelNames: ['chain_id'] as const,
  registers,
});

export const transfersDetected = new Counter({
  name: 'payflow_transfers_detected_total',
  help: 'Transfers to deposit addresses recorded by the scanner, per chain',
  labelNames: ['chain_id'] as const,
  registers,
});

export const rpcRequests = new Counter({
  name: 'payflow_rpc_requests_total',
  help: 'JSON-RPC requests to chain nodes, by chain, method (or "batch") and outcome',
  labelNames: ['chain_id', 'method', 'outcome'] as const,
  registers,
});

export const rpcErrors = new Counter({
  name: 'payflow_rpc_errors_total',
  help: 'JSON-RPC requests that failed (transport, HTTP or malformed reply), by chain and method',
  labelNames: ['chain_id', 'method'] as const,
  registers,
});

export const rpcDuration = new Histogram({
  name: 'payflow_rpc_request_duration_seconds',
  help: 'JSON-RPC request duration by chain',
  labelNames: ['chain_id'] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});

/** An rpcClient observer that feeds the RPC metrics of one chain. */
export function rpcObserver(chainId: number) {
  const chain_id = String(chainId);
  return {
    onRequest(label: string, outcome: 'ok' | 'error', seconds: number) {
      // The label is a method name or a batch description; keep only a bounded method name.
      const method = /^[a-z]+_[A-Za-z]+$/.test(label) ? label : 'batch';
      rpcRequests.inc({ chain_id, method, outcome });
      if (outcome === 'error') rpcErrors.inc({ chain_id, method });
      rpcDuration.observe({ chain_id }, seconds);
    },
  };
}

// ---- webhooks --------------------------------------------------------------------------------------------------

export const webhookDeliveries = new Counter({
  name: 'payflow_webhook_deliveries_total',
  help: 'Webhook delivery attempts by outcome (succeeded, retrying, failed, skipped)',
  labelNames: ['outcome'] as const,
  registers,
});

export const webhookAttemptDuration = new Histogram({
  name: 'payflow_webhook_attempt_duration_seconds',
  help: 'Duration of one webhook delivery attempt (HTTP POST to the merchant), by outcome',
  labelNames: ['outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});

// ---- outbox ----------------------------------------------------------------------------------------------------

export const outboxRelayed = new Counter({
  name: 'payflow_outbox_relayed_total',
  help: 'Outbox rows relayed into BullMQ by this process',
  registers,
});

export const webhookFirstAttempts = new Counter({
  name: 'payflow_webhook_first_attempts_total',
  help: 'First attempts of the webhook deliveries of new payments, by where they went: handed to the workers over Redis (API, after commit), made BullMQ jobs (worker), into the outbox (Redis refused), or left to the maintenance pass (neither answered)',
  labelNames: ['via'] as const,
  registers,
});

export const outboxRelayLag = new Gauge({
  name: 'payflow_outbox_relay_lag_seconds',
  help: 'Age of the oldest row in the newest relayed batch (commit → queue)',
  registers,
});

// ---- settlement (used by workers/settlement) -------------------------------------------------------------------

export const settlementsTotal = new Counter({
  name: 'payflow_settlements_total',
  help: 'Settlement attempts by outcome and chain',
  labelNames: ['outcome', 'chain_id'] as const,
  registers,
});

export const gasTankBalance = new Gauge({
  name: 'payflow_gas_tank_balance',
  help: 'Balance of the gas tank that pays settlement gas, in the native coin (e.g. ETH), per chain',
  labelNames: ['chain_id'] as const,
  registers,
});

/** Sets the gas tank gauge from base units (wei); a float is fine for a gauge, never for money. */
export function setGasTankBalance(chainId: number, baseUnits: bigint, decimals = 18): void {
  const scale = 10n ** BigInt(decimals);
  const whole = Number(baseUnits / scale) + Number(baseUnits % scale) / Number(scale);
  gasTankBalance.set({ chain_id: String(chainId) }, whole);
}

// ---- sampled at scrape time ------------------------------------------------------------------------------------

const SAMPLE_TIMEOUT_MS = 2000;

const sampled = <T>(p: Promise<T>): Promise<T> => withTimeout(p, SAMPLE_TIMEOUT_MS, 'metrics sample timed out');

export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;

/**
 * Registers the gauges read from Postgres and Redis on each scrape: outbox backlog, webhook backlog and BullMQ
 * queue depths. A dependency that does not answer within 2 s leaves its gauge out of that scrape (and
 * payflow_metrics_sample_errors_total counts it) rather than failing the whole scrape.
 */
export function registerSampledMetrics(deps: { db: Db; queues?: Queues; handoff?: { redis: RedisConnection; queuePrefix: string } }): void {
  const sampleErrors = new Counter({
    name: 'payflow_metrics_sample_errors_total',
    help: 'Scrape-time samples that failed or timed out, by source',
    labelNames: ['source'] as const,
    registers,
  });
  new Gauge({
    name: 'payflow_outbox_backlog',
    help: 'Outbox rows not yet relayed to Redis (sampled from Postgres)',
    registers,
    async collect() {
      try {
        const [row] = await sampled(deps.db('outbox').count<{ n: string }[]>({ n: '*' }));
        this.set(Number(row.n));
      } catch {
        sampleErrors.inc({ source: 'outbox' });
      }
    },
  });
  new Gauge({
    name: 'payflow_webhook_backlog',
    help: 'Webhook deliveries still pending (sampled from Postgres)',
    registers,
    async collect() {
      try {
        const [row] = await sampled(deps.db('webhook_deliveries').where({ status: 'pending' }).count<{ n: string }[]>({ n: '*' }));
        this.set(Number(row.n));
      } catch {
        sampleErrors.inc({ source: 'webhooks' });
      }
    },
  });
  const queues = deps.queues;
  if (!queues) return;
  new Gauge({
    name: 'payflow_queue_jobs',
    help: 'BullMQ jobs by queue and state (sampled from Redis)',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      this.reset();
      await Promise.all(
        Object.entries(queues).map(async ([name, queue]) => {
          try {
            const counts = await sampled(queue.getJobCounts(...JOB_STATES));
            for (const state of JOB_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          } catch {
            sampleErrors.inc({ source: 'redis' });
          }
        }),
      );
    },
  });
  const handoff = deps.handoff;
  if (!handoff) return;
  const key = handoffKey(handoff.queuePrefix);
  new Gauge({
    name: 'payflow_webhook_handoff_backlog',
    help: 'First webhook attempts handed over by the API that no worker has taken yet (sampled from Redis)',
    registers,
    async collect() {
      try {
        this.set(await sampled(handoff.redis.llen(key)));
      } catch {
        sampleErrors.inc({ source: 'redis' });
      }
    },
  });
}

// ---- access ----------------------------------------------------------------------------------------------------

/**
 * True when an Authorization header carries the metrics token: `Bearer <token>`, or HTTP Basic with the token as
 * the password (any user name), which is what Prometheus's `basic_auth` and most scrapers send.
 */
export function metricsAuthorized(authorization: string | undefined, token: string): boolean {
  const header = authorization ?? '';
  let presented: string | undefined;
  const bearer = /^Bearer (.+)$/.exec(header);
  if (bearer) presented = bearer[1];
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    presented = decoded.slice(decoded.indexOf(':') + 1);
  }
  return presented !== undefined && sameSecret(presented, token);
}
