import { readFileSync } from 'node:fs';
import { isAddress, getAddress } from 'ethers';
import { ConfigError } from './errors.js';

/**
 * Configuration, read once from the environment and validated at start-up. Every option is documented in
 * README.md ("Configuration") with its default; a bad or missing value stops the process with one line naming it.
 */

export interface TokenConfig {
  /** Ticker used in the API (`currency`), e.g. "USDC". */
  symbol: string;
  /** Checksummed ERC-20 contract address. */
  address: string;
  decimals: number;
}

export interface ChainConfig {
  chainId: number;
  name: string;
  rpcUrl: string;
  /**
   * Confirmations a transfer needs before a payment counts it as final: a number of blocks, or the node's
   * `safe` / `finalized` block tag.
   */
  confirmations: number | 'safe' | 'finalized';
  /** Expected seconds between blocks; drives how often the chain is scanned. */
  blockTimeSeconds: number;
  nativeSymbol: string;
  nativeDecimals: number;
  tokens: TokenConfig[];
  /** Largest eth_getLogs / block batch per scan step; shrinks automatically when the provider refuses a range. */
  maxBlockRange: number;
  /** First block to scan when the chain has no cursor yet; default: the head at first start. */
  startBlock?: number;
}

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  databaseUrl: string;
  databasePoolMax: number;
  redisUrl: string;
  queuePrefix: string;
  adminToken: string;
  jwtSecret: string;
  jwtTtlSeconds: number;
  /** Key material sealing webhook signing secrets at rest: the current key first, then previous ones (open only). */
  webhookSecretsKeys: string[];
  hdMnemonic: string;
  chains: ChainConfig[];
  logLevel: string;
  logPretty: boolean;
  defaultExpiresInSeconds: number;
  webhookTimeoutMs: number;
  /** Seconds to wait before each retry after a failed webhook attempt. */
  webhookRetrySchedule: number[];
  allowPrivateWebhookUrls: boolean;
  /** Attempts in flight to one webhook endpoint, across all workers: a hanging endpoint holds at most this many slots. */
  webhookEndpointConcurrency: number;
  /** An endpoint whose attempts only failed for this many days is disabled. */
  webhookDisableAfterDays: number;
  /** A pending delivery overdue by this long without running is assumed to have lost its job, and re-queued. */
  webhookRequeueAfterSeconds: number;
  /** How often each worker re-upserts job schedulers and re-queues orphaned deliveries. */
  maintenanceIntervalMs: number;
  /** Custodial deposit addresses workers keep derived ahead of time (0 = off). */
  depositAddressPoolSize: number;
  expirySweepIntervalMs: number;
  outboxPollIntervalMs: number;
  workerQueues: string[];
  workerConcurrency: number;
  trustProxy: boolean;
  /** With trustProxy: how many proxies of ours append to X-Forwarded-For; the client IP is that many from the right. */
  trustProxyHops: number;
  /** Merchant API rate limits (per API key, per window): reads (GET/HEAD) and writes have separate budgets. */
  rateLimitRead: number;
  rateLimitWrite: number;
  /** Requests per window one client IP may make to /api/v1 before authentication (slows key guessing). */
  rateLimitPerIp: number;
  rateLimitWindowMs: number;
  /** Origins allowed to call the API from a browser; empty = no CORS headers, ['*'] = any origin. */
  corsOrigins: string[];
  /** How long a verified API key is trusted without asking Postgres; also the longest a revoked key keeps working. */
  apiKeyCacheTtlMs: number;
  /** Idempotency keys are replayable for at least this long, then deleted. */
  idempotencyRetentionHours: number;
  /** Serve HTTPS (HTTP/2 with HTTP/1.1 fallback) with this certificate and key; unset = plain HTTP/1.1 and h2c. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Token for /metrics (Bearer, or Basic with any user); default: the admin token. */
  metricsToken: string;
  /** HTTP Basic credentials for Bull Board at /admin/queues, so a browser can log in; password default: the admin token. */
  bullBoardUser: string;
  bullBoardPassword: string;
  /** Ports a worker may bind its /metrics server to: the first free one is taken. [p, p] for one port; [0, 0] = any. */
  workerMetricsPorts: [number, number];
  /** How long a worker waits for active jobs on SIGTERM before handing them back to the queue. */
  workerShutdownGraceMs: number;
  /** Absolute base URL customers reach the API at; checkout pages are `${publicUrl}/pay/<id>` (no trailing slash). */
  publicUrl: string;
  /** Requests per minute one client IP may make to the public checkout pages. */
  checkoutRateLimit: number;
  /** Settlement (README "Settlement"). The gas tank's key, one 0x private key used on every chain; unset = token sweeps wait. */
  gasTankPrivateKey?: string;
  /** Below this many wei a chain's gas tank is logged as low. */
  gasTankLowBalanceWei: bigint;
  /** How often the settlement reconciler looks for confirmed payments, refunds and sweeps in flight. */
  settlementIntervalMs: number;
  /** A sweep transaction not mined after this many seconds is replaced (same nonce, higher fee). */
  settlementReplaceAfterSeconds: number;
  /** Settlements advanced at once per worker process, jobs and reconciler together (each holds a Postgres connection for its locks). */
  settlementConcurrency: number;
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback?: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) throw new ConfigError(name, 'is required but not set');
    return fallback;
  }
  return value;
}

function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[], fallback?: string): string {
  const value = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return value;
}

/** Parses the CHAINS JSON (or the file named by CHAINS_FILE); see README "Configuring chains". */
export function parseChains(json: string, variable: string): ChainConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ConfigError(variable, `is not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError(variable, 'must be a non-empty JSON array of chains');
  const seen = new Set<number>();
  return raw.map((entry, i): ChainConfig => {
    const where = `${variable}[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw new ConfigError(where, 'must be an object');
    const c = entry as Record<string, unknown>;
    const chainId = c.chain_id;
    if (typeof chainId !== 'number' || !Number.isSafeInteger(chainId) || chainId <= 0) {
      throw new ConfigError(`${where}.chain_id`, 'must be a positive integer');
    }
    if (seen.has(chainId)) throw new ConfigError(`${where}.chain_id`, `chain ${chainId} is configured twice`);
    seen.add(chainId);
    if (typeof c.rpc_url !== 'string' || !/^(https?|wss?):\/\//.test(c.rpc_url)) {
      throw new ConfigError(`${where}.rpc_url`, 'must be an http(s) or ws(s) URL');
    }
    const confirmations = c.confirmations ?? 12;
    if (!(confirmations === 'safe' || confirmations === 'finalized' ||
      (typeof confirmations === 'number' && Number.isInteger(confirmations) && confirmations >= 1 && confirmations <= 1000))) {
      throw new ConfigError(`${where}.confirmations`, 'must be an integer 1..1000, "safe" or "finalized"');
    }
    const blockTime = c.block_time ?? 12;
    if (typeof blockTime !== 'number' || !(blockTime > 0) || blockTime > 3600) {
      throw new ConfigError(`${where}.block_time`, 'must be a number of seconds > 0');
    }
    const tokensRaw = c.tokens ?? [];
    if (!Array.isArray(tokensRaw)) throw new ConfigError(`${where}.tokens`, 'must be an array');
    const nativeSymbol = typeof c.native_symbol === 'string' ? c.native_symbol : 'ETH';
    const symbols = new Set([nativeSymbol]);
    const tokens = tokensRaw.map((t, j): TokenConfig => {
      const tw = `${where}.tokens[${j}]`;
      if (typeof t !== 'object' || t === null) throw new ConfigError(tw, 'must be an object');
      const tok = t as Record<string, unknown>;
      if (typeof tok.symbol !== 'string' || !/^[A-Za-z0-9.]{1,16}$/.test(tok.symbol)) {
        throw new ConfigError(`${tw}.symbol`, 'must be 1-16 letters or digits');
      }
      if (symbols.has(tok.symbol)) throw new ConfigError(`${tw}.symbol`, `${tok.symbol} is configured twice on this chain`);
      symbols.add(tok.symbol);
      if (typeof tok.address !== 'string' || !isAddress(tok.address)) throw new ConfigError(`${tw}.address`, 'must be a 0x address');
      if (typeof tok.decimals !== 'number' || !Number.isInteger(tok.decimals) || tok.decimals < 0 || tok.decimals > 36) {
        throw new ConfigError(`${tw}.decimals`, 'must be an integer 0..36');
      }
      return { symbol: tok.symbol, address: getAddress(tok.address), decimals: tok.decimals };
    });
    const maxBlockRange = c.max_block_range ?? 100;
    if (typeof maxBlockRange !== 'number' || !Number.isInteger(maxBlockRange) || maxBlockRange < 1) {
      throw new ConfigError(`${where}.max_block_range`, 'must be a positive integer');
    }
    if (c.start_block !== undefined && (typeof c.start_block !== 'number' || !Number.isInteger(c.start_block) || c.start_block < 0)) {
      throw new ConfigError(`${where}.start_block`, 'must be a non-negative integer');
    }
    return {
      chainId,
      name: typeof c.name === 'string' ? c.name : `chain-${chainId}`,
      rpcUrl: c.rpc_url,
      confirmations: confirmations as ChainConfig['confirmations'],
      blockTimeSeconds: blockTime,
      nativeSymbol,
      nativeDecimals: 18,
      tokens,
      maxBlockRange,
      startBlock: c.start_block as number | undefined,
    };
  });
}

const QUEUE_NAMES = ['chain', 'payments', 'webhooks', 'settlement'];

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = str(env, 'NODE_ENV', 'development');
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    throw new ConfigError('NODE_ENV', 'must be development, production or test');
  }
  const chainsJson = env.CHAINS_FILE
    ? (() => {
        try {
          return readFileSync(env.CHAINS_FILE, 'utf8');
        } catch (err) {
          throw new ConfigError('CHAINS_FILE', `cannot be read (${(err as NodeJS.ErrnoException).code})`);
        }
      })()
    : str(env, 'CHAINS');
  const adminToken = str(env, 'ADMIN_TOKEN');
  if (adminToken.length < 16) throw new ConfigError('ADMIN_TOKEN', 'must be at least 16 characters');
  const jwtSecret = str(env, 'JWT_SECRET');
  if (jwtSecret.length < 32) throw new ConfigError('JWT_SECRET', 'must be at least 32 characters');
  const mnemonic = str(env, 'HD_MNEMONIC').trim();
  if (mnemonic.split(/\s+/).length < 12) throw new ConfigError('HD_MNEMONIC', 'must be a BIP-39 mnemonic of 12 or more words');
  const schedule = str(env, 'WEBHOOK_RETRY_SCHEDULE', '5,300,1800,7200,18000,36000,50400,72000,86400').split(',');
  if (!schedule.every((s) => /^\d+(\.\d+)?$/.test(s.trim()))) {
    throw new ConfigError('WEBHOOK_RETRY_SCHEDULE', 'must be a comma-separated list of seconds');
  }
  const queues = str(env, 'WORKER_QUEUES', QUEUE_NAMES.join(',')).split(',').map((q) => q.trim()).filter(Boolean);
  for (const q of queues) {
    if (!QUEUE_NAMES.includes(q)) throw new ConfigError('WORKER_QUEUES', `unknown queue "${q}" (known: ${QUEUE_NAMES.join(', ')})`);
  }
  return {
    env: nodeEnv as Config['env'],
    port: int(env, 'PORT', 3000, 0, 65535),
    publicUrl: url(env, 'PUBLIC_URL', ['http:', 'https:'], `http://localhost:${int(env, 'PORT', 3000, 0, 65535)}`).replace(/\/+$/, ''),
    checkoutRateLimit: int(env, 'CHECKOUT_RATE_LIMIT', 300, 1, 1_000_000),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolMax: int(env, 'DATABASE_POOL_MAX', 10, 1, 1000),
    redisUrl: redisUrl(env),
    queuePrefix: queuePrefix(env),
    adminToken,
    jwtSecret,
    jwtTtlSeconds: int(env, 'JWT_TTL_SECONDS', 900, 30, 86400),
    webhookSecretsKeys: webhookSecretsKeys(env),
    hdMnemonic: mnemonic,
    chains: parseChains(chainsJson, env.CHAINS_FILE ? 'CHAINS_FILE' : 'CHAINS'),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    logPretty: bool(env, 'LOG_PRETTY', nodeEnv === 'development'),
    defaultExpiresInSeconds: int(env, 'PAYMENT_EXPIRES_IN', 900, 60, 30 * 86400),
    webhookTimeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
    webhookRetrySchedule: schedule.map((s) => Number(s.trim())),
    allowPrivateWebhookUrls: bool(env, 'ALLOW_PRIVATE_WEBHOOK_URLS', false),
    webhookEndpointConcurrency: int(env, 'WEBHOOK_ENDPOINT_CONCURRENCY', 3, 1, 1000),
    webhookDisableAfterDays: int(env, 'WEBHOOK_DISABLE_AFTER_DAYS', 5, 1, 365),
    webhookRequeueAfterSeconds: int(env, 'WEBHOOK_REQUEUE_AFTER_SECONDS', 60, 1, 86400),
    maintenanceIntervalMs: int(env, 'MAINTENANCE_INTERVAL_MS', 15_000, 100, 3_600_000),
    depositAddressPoolSize: int(env, 'DEPOSIT_ADDRESS_POOL_SIZE', 2000, 0, 1_000_000),
    expirySweepIntervalMs: int(env, 'EXPIRY_SWEEP_INTERVAL_MS', 2000, 100),
    outboxPollIntervalMs: int(env, 'OUTBOX_POLL_INTERVAL_MS', 1000, 10),
    workerQueues: queues,
    workerConcurrency: int(env, 'WORKER_CONCURRENCY', 10, 1, 1000),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    trustProxyHops: int(env, 'TRUST_PROXY_HOPS', 1, 1, 10),
    rateLimitRead: int(env, 'RATE_LIMIT_READ', 3000, 1, 10_000_000),
    rateLimitWrite: int(env, 'RATE_LIMIT_WRITE', 1200, 1, 10_000_000),
    rateLimitPerIp: int(env, 'RATE_LIMIT_PER_IP', 6000, 1, 10_000_000),
    rateLimitWindowMs: int(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 86_400_000),
    corsOrigins: corsOrigins(env),
    apiKeyCacheTtlMs: int(env, 'API_KEY_CACHE_TTL_MS', 5000, 0, 60_000),
    idempotencyRetentionHours: int(env, 'IDEMPOTENCY_RETENTION_HOURS', 24, 24, 24 * 365),
    ...tlsFiles(env),
    ...settlementConfig(env),
    metricsToken: secret(env, 'METRICS_TOKEN', adminToken),
    bullBoardUser: str(env, 'BULL_BOARD_USER', 'admin'),
    bullBoardPassword: secret(env, 'BULL_BOARD_PASSWORD', adminToken),
    workerMetricsPorts: portRange(env),
    workerShutdownGraceMs: int(env, 'WORKER_SHUTDOWN_GRACE_MS', 25_000, 0, 600_000),
  };
}

/** WEBHOOK_SECRETS_KEY seals; WEBHOOK_SECRETS_KEY_PREVIOUS (comma-separated) only opens, during a rotation. */
function webhookSecretsKeys(env: Env): string[] {
  const current = str(env, 'WEBHOOK_SECRETS_KEY');
  if (current.length < 32) throw new ConfigError('WEBHOOK_SECRETS_KEY', 'must be at least 32 characters');
  const previous = str(env, 'WEBHOOK_SECRETS_KEY_PREVIOUS', '').split(',').map((k) => k.trim()).filter(Boolean);
  if (previous.some((k) => k.length < 32)) throw new ConfigError('WEBHOOK_SECRETS_KEY_PREVIOUS', 'each key must be at least 32 characters');
  return [current, ...previous];
}

function secret(env: Env, name: string, fallback: string): string {
  const value = str(env, name, fallback);
  if (value.length < 16) throw new ConfigError(name, 'must be at least 16 characters');
  return value;
}

/**
 * REDIS_URL is a redis:// or rediss:// URL, or `redis+cluster://host:port,host:port` (`rediss+cluster://` for TLS)
 * naming seed nodes of a Redis Cluster; see shared/queues/redis.ts.
 */
function redisUrl(env: Env): string {
  const value = str(env, 'REDIS_URL');
  const cluster = /^rediss?\+cluster:\/\/(?:[^@/]*@)?([^/?#]+)/.exec(value);
  if (cluster) {
    if (!cluster[1].split(',').every((node) => /^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(node))) {
      throw new ConfigError('REDIS_URL', 'cluster nodes must be host:port, separated by commas');
    }
    return value;
  }
  return url(env, 'REDIS_URL', ['redis:', 'rediss:']);
}

/**
 * On a Redis Cluster every key of a queue must hash to one slot (BullMQ's scripts touch several keys at once), so
 * the prefix must carry a hash tag: `{payflow}`. All queues then live on one shard; that is what BullMQ documents.
 */
function queuePrefix(env: Env): string {
  const cluster = /^rediss?\+cluster:/.test(env.REDIS_URL ?? '');
  const prefix = str(env, 'QUEUE_PREFIX', cluster ? '{payflow}' : 'payflow');
  if (cluster && !/\{[^{}]+\}/.test(prefix)) {
    throw new ConfigError('QUEUE_PREFIX', `must contain a hash tag such as "{payflow}" on a Redis Cluster, got "${prefix}"`);
  }
  return prefix;
}

/** WORKER_METRICS_PORT_RANGE ("9091-9099") wins over WORKER_METRICS_PORT (one port; 0 = any free port). */
function portRange(env: Env): [number, number] {
  const range = env.WORKER_METRICS_PORT_RANGE;
  if (range) {
    const m = /^(\d{1,5})-(\d{1,5})$/.exec(range);
    if (!m || Number(m[1]) < 1 || Number(m[2]) > 65535 || Number(m[1]) > Number(m[2])) {
      throw new ConfigError('WORKER_METRICS_PORT_RANGE', `must be "first-last" with 1 <= first <= last <= 65535, got "${range}"`);
    }
    return [Number(m[1]), Number(m[2])];
  }
  const port = int(env, 'WORKER_METRICS_PORT', 9091, 0, 65535);
  return [port, port];
}

function settlementConfig(env: Env) {
  const gasTankPrivateKey = env.GAS_TANK_PRIVATE_KEY || undefined;
  if (gasTankPrivateKey && !/^0x[0-9a-fA-F]{64}$/.test(gasTankPrivateKey)) {
    throw new ConfigError('GAS_TANK_PRIVATE_KEY', 'must be a 0x-prefixed 32-byte hex private key');
  }
  const low = str(env, 'GAS_TANK_LOW_BALANCE_WEI', '50000000000000000');
  if (!/^\d{1,78}$/.test(low)) throw new ConfigError('GAS_TANK_LOW_BALANCE_WEI', `must be a whole number of wei, got "${low}"`);
  return {
    gasTankPrivateKey,
    gasTankLowBalanceWei: BigInt(low),
    settlementIntervalMs: int(env, 'SETTLEMENT_INTERVAL_MS', 5000, 100, 3_600_000),
    settlementReplaceAfterSeconds: int(env, 'SETTLEMENT_REPLACE_AFTER_SECONDS', 180, 1, 86_400),
    settlementConcurrency: int(env, 'SETTLEMENT_CONCURRENCY', 2, 1, 50),
  };
}


/** CORS_ORIGINS: comma-separated origins (`https://shop.example`), or `*`. */
function corsOrigins(env: Env): string[] {
  const origins = str(env, 'CORS_ORIGINS', '').split(',').map((o) => o.trim()).filter(Boolean);
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError('CORS_ORIGINS', `must be origins like https://shop.example (no path) or *, got "${origin}"`);
    }
  }
  return origins;
}

/** TLS_CERT_FILE and TLS_KEY_FILE come together and must be readable, so a typo fails at start, not at first request. */
function tlsFiles(env: Env): { tlsCertFile?: string; tlsKeyFile?: string } {
  const cert = env.TLS_CERT_FILE || undefined;
  const key = env.TLS_KEY_FILE || undefined;
  if (!cert && !key) return {};
  if (!cert || !key) throw new ConfigError(cert ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE', 'must be set together with ' + (cert ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'));
  for (const [name, file] of [['TLS_CERT_FILE', cert], ['TLS_KEY_FILE', key]] as const) {
    try {
      readFileSync(file);
    } catch (err) {
      throw new ConfigError(name, `cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  return { tlsCertFile: cert, tlsKeyFile: key };
}

/** Loads config or prints the one-line reason and exits: used by process entry points. */
export function loadConfigOrExit(env: Env = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`payflow: configuration error: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/** Finds the asset a merchant named on a chain: native coin or a configured token. */
export function findAsset(chain: ChainConfig, currency: string):
  | { symbol: string; decimals: number; tokenAddress: string | null }
  | undefined {
  if (currency === chain.nativeSymbol) return { symbol: chain.nativeSymbol, decimals: chain.nativeDecimals, tokenAddress: null };
  const token = chain.tokens.find((t) => t.symbol === currency);
  return token && { symbol: token.symbol, decimals: token.decimals, tokenAddress: token.address };
}
