// The ops CLI: `npm run -s payflow -- <command> [--flag value]`. Reads the same environment as the processes
// (DATABASE_URL, REDIS_URL, CHAINS, ...) and prints JSON on stdout, so its output can be piped to jq.
import { getAddress, isAddress } from 'ethers';
import { loadConfigOrExit, type Config } from '../shared/config.js';
import { createDb, type Db } from '../shared/db.js';
import { createMerchant } from '../shared/merchants/createMerchant.js';
import { insertApiKey, type ApiKeyScope } from '../shared/merchants/apiKeys.js';
import { createRpcClient, hexToNumber } from '../shared/chain/rpcClient.js';
import { redeliverInTx } from '../shared/webhooks/deliveries.js';
import { ALL_QUEUES } from '../shared/queues/names.js';
import { closeQueues, createQueues, createRedis } from '../shared/queues/redis.js';

const USAGE = `usage: npm run -s payflow -- <command> [options]

  merchant:create --name <name> [--settlement-address <0x…>]   create a merchant and its first API key
  key:create --merchant <mer_…> [--scopes read|read,write]      a new API key for a merchant (shown once)
  key:rotate --key <key_…>                                      a new key with the same scopes; the old one is revoked
  key:revoke --key <key_…>                                      revoke an API key at once
  keys:list --merchant <mer_…>                                  a merchant's keys (prefixes only, never the key)
  payments:stuck [--older-than <seconds>]                       payments that should have moved (default 3600 s)
  jobs:retry-failed [--queue <name>]                            move failed BullMQ jobs back to waiting (every queue by default)
  webhooks:redeliver (--delivery <whd_…> | --event <evt_…> | --failed [--since <ISO time>])
  chains:cursors                                                each chain's scan position, node head and lag
`;

class UsageError extends Error {
  override name = 'UsageError';
}

function parseFlags(args: string[]): Record<string, string | true> {
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z-]+)$/.exec(args[i]);
    if (!m) throw new UsageError(`unexpected argument "${args[i]}"`);
    const next = args[i + 1];
    if (next === undefined || next.startsWith('--')) flags[m[1]] = true;
    else flags[m[1]] = args[++i];
  }
  return flags;
}

function required(flags: Record<string, string | true>, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} <value> is required`);
  return v;
}

function parseScopes(raw: string | true | undefined): ApiKeyScope[] {
  if (raw === undefined) return ['read', 'write'];
  if (raw === true) throw new UsageError('--scopes needs a value: read or read,write');
  const scopes = raw.split(',').map((s) => s.trim());
  if (!scopes.every((s) => s === 'read' || s === 'write')) throw new UsageError('--scopes must be read or read,write');
  return [...new Set(scopes)] as ApiKeyScope[];
}

const keyMode = (config: Config) => (config.env === 'production' ? 'live' : 'test');

type Command = (ctx: { config: Config; db: Db; flags: Record<string, string | true> }) => Promise<unknown>;

const commands: Record<string, Command> = {
  async 'merchant:create'({ config, db, flags }) {
    const address = flags['settlement-address'];
    if (address !== undefined && (typeof address !== 'string' || !isAddress(address))) {
      throw new UsageError('--settlement-address must be a 0x address');
    }
    return createMerchant(db, { name: required(flags, 'name'), settlementAddress: address ? getAddress(address) : null, mode: keyMode(config) });
  },

  async 'key:create'({ config, db, flags }) {
    const merchantId = required(flags, 'merchant');
    if (!(await db('merchants').where({ id: merchantId }).first())) throw new UsageError(`no merchant ${merchantId}`);
    const scopes = parseScopes(flags.scopes);
    const { id, key } = await insertApiKey(db, merchantId, { mode: keyMode(config), scopes });
    return { id, merchant_id: merchantId, api_key: key, scopes };
  },

  async 'key:rotate'({ config, db, flags }) {
    const keyId = required(flags, 'key');
    return db.transaction(async (trx) => {
      // The row lock makes two concurrent rotations of one key produce one successor, not two.
      const old = await trx('api_keys').where({ id: keyId }).whereNull('revoked_at').forUpdate().first();
      if (!old) throw new UsageError(`no active API key ${keyId}`);
      const { id, key } = await insertApiKey(trx, old.merchant_id, { mode: keyMode(config), scopes: old.scopes });
      await trx('api_keys').where({ id: keyId }).update({ revoked_at: trx.fn.now() });
      return { revoked: keyId, id, merchant_id: old.merchant_id, api_key: key, scopes: old.scopes };
    });
  },

  async 'key:revoke'({ db, flags }) {
    const keyId = required(flags, 'key');
    const [row] = await db('api_keys').where({ id: keyId }).whereNull('revoked_at').update({ revoked_at: db.fn.now() }).returning(['id', 'merchant_id', 'revoked_at']);
    if (!row) throw new UsageError(`no active API key ${keyId}`);
    return row;
  },

  async 'keys:list'({ db, flags }) {
    return db('api_keys')
      .where({ merchant_id: required(flags, 'merchant') })
      .orderBy('created_at')
      .select('id', 'key_prefix', 'scopes', 'created_at', 'revoked_at');
  },

  async 'payments:stuck'({ db, flags }) {
    const raw = flags['older-than'] ?? '3600';
    if (typeof raw !== 'string' || !/^\d+$/.test(raw)) throw new UsageError('--older-than must be a number of seconds');
    const cutoff = new Date(Date.now() - Number(raw) * 1000);
    // Confirming for long: confirmations are not arriving (scanner behind, node stuck, or a reorg). Pending long past
    // expiry: the scanner's chain clock is behind, so nothing expires (see README "The chain's clock decides").
    const rows = await db('payments')
      .where((q) => q.where({ status: 'confirming' }).andWhere('updated_at', '<', cutoff))
      .orWhere((q) => q.where({ status: 'pending' }).andWhere('expires_at', '<', cutoff))
      .orderBy('created_at')
      .limit(1000)
      .select('id', 'merchant_id', 'status', 'chain_id', 'currency', 'created_at', 'updated_at', 'expires_at');
    return rows.map((p) => ({ ...p, reason: p.status === 'confirming' ? 'confirming for longer than --older-than' : 'not expired although past expires_at' }));
  },

  async 'jobs:retry-failed'({ config, flags }) {
    const only = flags.queue;
    if (only !== undefined && (typeof only !== 'string' || !(ALL_QUEUES as string[]).includes(only))) {
      throw new UsageError(`--queue must be one of ${ALL_QUEUES.join(', ')}`);
    }
    const redis = createRedis(config.redisUrl, 'worker');
    const queues = createQueues(redis, config.queuePrefix);
    try {
      const retried: Record<string, number> = {};
      for (const [name, queue] of Object.entries(queues)) {
        if (only && name !== only) continue;
        let count = 0;
        // Page through: retrying moves each job out of the failed set, so always read from the start.
        for (;;) {
          const failed = await queue.getFailed(0, 99);
          if (failed.length === 0) break;
          for (const job of failed) {
            await job.retry('failed');
            count++;
          }
        }
        retried[name] = count;
      }
      return { retried };
    } finally {
      await closeQueues(queues);
      await redis.quit().catch(() => {});
    }
  },

  async 'webhooks:redeliver'({ db, flags }) {
    let ids: string[];
    if (typeof flags.delivery === 'string') ids = [flags.delivery];
    else if (typeof flags.event === 'string') ids = await db('webhook_deliveries').where({ event_id: flags.event }).pluck('id');
    else if (flags.failed === true) {
      const since = flags.since;
      if (since !== undefined && (typeof since !== 'string' || Number.isNaN(Date.parse(since)))) throw new UsageError('--since must be an ISO time');
      const q = db('webhook_deliveries').where({ status: 'failed' });
      if (typeof since === 'string') q.andWhere('updated_at', '>=', new Date(since));
      ids = await q.pluck('id');
    } else throw new UsageError('give --delivery <whd_…>, --event <evt_…> or --failed');
    const redelivered: string[] = [];
    const skipped: string[] = [];
    for (const id of ids) {
      // One transaction each: the delivery goes back to pending and its job is in the outbox, or neither.
      const row = await db.transaction((trx) => redeliverInTx(trx, id));
      (row ? redelivered : skipped).push(id);
    }
    if (ids.length === 1 && redelivered.length === 0) {
      throw new UsageError(`delivery ${ids[0]} does not exist or is still pending (only succeeded or failed ones are redelivered)`);
    }
    return { redelivered, skipped };
  },

  async 'chains:cursors'({ config, db }) {
    const cursors: { chain_id: string; next_block: string; tip_timestamp: Date | null; updated_at: Date }[] = await db('chain_cursors').orderBy('chain_id');
    return Promise.all(
      cursors.map(async (c) => {
        const chainId = Number(c.chain_id);
        const chain = config.chains.find((x) => x.chainId === chainId);
        const scanned = Number(c.next_block) - 1;
        let head: number | null = null;
        let error: string | undefined;
        if (chain) {
          try {
            head = hexToNumber(await createRpcClient(chain.rpcUrl, { timeoutMs: 5000 }).call('eth_blockNumber', []));
          } catch (err) {
            error = (err as Error).message;
          }
        }
        return {
          chain_id: chainId,
          name: chain?.name ?? null,
          scanned_block: scanned,
          head,
          lag_blocks: head === null ? null : Math.max(0, head - scanned),
          tip_timestamp: c.tip_timestamp,
          updated_at: c.updated_at,
          ...(chain ? {} : { note: 'not in CHAINS: no longer scanned' }),
          ...(error ? { error } : {}),
        };
      }),
    );
  },
};

const [name, ...rest] = process.argv.slice(2);
if (!name || name === 'help' || name === '--help' || !commands[name]) {
  process.stderr.write(name && !['help', '--help'].includes(name) ? `payflow: unknown command "${name}"\n${USAGE}` : USAGE);
  process.exit(name && !['help', '--help'].includes(name) ? 64 : 0);
}
let flags: Record<string, string | true>;
try {
  flags = parseFlags(rest);
} catch (err) {
  process.stderr.write(`payflow: ${(err as Error).message}\n${USAGE}`);
  process.exit(64);
}
const config = loadConfigOrExit();
const db = createDb(config.databaseUrl, 2, 'payflow-cli');
try {
  const result = await commands[name]({ config, db, flags });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} catch (err) {
  process.stderr.write(`payflow: ${(err as Error).message}\n`);
  process.exitCode = err instanceof UsageError ? 64 : 1;
} finally {
  await db.destroy();
}
