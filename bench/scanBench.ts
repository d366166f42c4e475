import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Interface } from 'ethers';
import { createDb, migrateLatest } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { createRpcClient } from '../shared/chain/rpcClient.js';
import { readHeadNumber } from '../shared/chain/readChain.js';
import type { ChainConfig } from '../shared/config.js';
import { ensureCursor, scanChainStep } from '../workers/chain/scanChain.js';
import { devAccounts } from '../scripts/devstack/chain.js';

const ERC20 = new Interface(['function transfer(address,uint256) returns (bool)']);
const TRANSFERS_PER_BLOCK = 500;
// Synthetic deposit addresses are decimal digits only, so their EIP-55 checksum form equals the lowercase form
// the SQL writes; offset past the precompiles and anything the HD wallet hands out.
const ADDRESS_BASE = 1_000_000_000_000;

export interface ScanFigure {
  openPayments: number;
  blocks: number;
  transfersPerBlock: number;
  medianMs: number;
  samplesMs: number[];
}

/**
 * Chain scan cost per block against the number of open payments: a private database with `open` pending
 * payments (inserted with generate_series), then blocks of 500 transfers (half ETH, half USDC) to 500 of them,
 * mined as one block each on the dev chain, each scanned by one timed scanChainStep. Before each block 500 new
 * targets are added, so the open count stays at `open` while the previous targets confirm.
 */
export async function benchChainScan(opts: {
  adminDatabaseUrl: string;
  rpcUrl: string;
  chainId: number;
  usdcAddress: string;
  open: number;
  blocks: number;
  onProgress?: (line: string) => void;
}): Promise<ScanFigure> {
  const dbName = `pf_scan_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: opts.adminDatabaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const db = createDb(opts.adminDatabaseUrl.replace(/\/[^/]+$/, `/${dbName}`), 4, 'payflow-bench-scan');
  const rpc = createRpcClient(opts.rpcUrl);
  const log = createLogger({ level: 'warn', pretty: false, name: 'bench-scan' });
  const sender = devAccounts(10)[9].address;
  try {
    await migrateLatest(db);
    await db('merchants').insert({ id: 'mer_bench', name: 'bench' });
    let nextIndex = 0;
    const insertPayments = async (n: number) => {
      const from = nextIndex;
      nextIndex += n;
      // Even index: ETH, 1000 wei; odd: USDC, 1 base unit. One confirmation, so each target confirms in its block.
      await db.raw(
        `INSERT INTO payments (id, merchant_id, status, chain_id, currency, token_address, decimals, amount, address, address_index,
                               confirmations_required, expires_at)
         SELECT 'pay_scan' || i, 'mer_bench', 'pending', ?, CASE WHEN i % 2 = 0 THEN 'ETH' ELSE 'USDC' END,
                CASE WHEN i % 2 = 0 THEN NULL ELSE ?::text END, CASE WHEN i % 2 = 0 THEN 18 ELSE 6 END,
                CASE WHEN i % 2 = 0 THEN 1000 ELSE 1 END,
                '0x' || lpad((? + i)::text, 40, '0'), ? + i, 1, now() + interval '1 day'
         FROM generate_series(?::bigint, ?::bigint) AS i`,
        [opts.chainId, opts.usdcAddress, ADDRESS_BASE, ADDRESS_BASE, from, from + n - 1],
      );
      return from;
    };
    const t0 = performance.now();
    await insertPayments(opts.open - TRANSFERS_PER_BLOCK);
    await db.raw('ANALYZE payments');
    opts.onProgress?.(`  ${opts.open.toLocaleString('en')} open payments inserted in ${Math.round(performance.now() - t0)} ms`);

    const chain: ChainConfig = {
      chainId: opts.chainId,
      name: 'bench',
      rpcUrl: opts.rpcUrl,
      confirmations: 1,
      blockTimeSeconds: 1,
      nativeSymbol: 'ETH',
      nativeDecimals: 18,
      tokens: [{ symbol: 'USDC', address: opts.usdcAddress, decimals: 6 }],
      maxBlockRange: 1,
      startBlock: (await readHeadNumber(rpc)) + 1,
    };
    await ensureCursor(db, rpc, chain);
    const deps = { db, rpc, chain, log };
    const samplesMs: number[] = [];
    await rpc.call('evm_setAutomine', [false]);
    try {
      for (let b = 0; b < opts.blocks; b++) {
        const first = await insertPayments(TRANSFERS_PER_BLOCK);
        const calls = Array.from({ length: TRANSFERS_PER_BLOCK }, (_, k) => {
          const i = first + k;
          const address = `0x${String(ADDRESS_BASE + i).padStart(40, '0')}`;
          return i % 2 === 0
            ? { method: 'eth_sendTransaction', params: [{ from: sender, to: address, value: '0x3e8', gas: '0x5208' }] }
            : { method: 'eth_sendTransaction', params: [{ from: sender, to: opts.usdcAddress, gas: '0xea60', data: ERC20.encodeFunctionData('transfer', [address, 1n]) }] };
        });
        await rpc.batch(calls);
        await rpc.call('evm_mine', []);
        // Catch up to just below the new block (untimed), then time the step that scans the block itself.
        const head = await readHeadNumber(rpc);
        for (;;) {
          const cursor = await db('chain_cursors').where({ chain_id: opts.chainId }).first();
          if (Number(cursor.next_block) >= head) break;
          await scanChainStep(deps);
        }
        const started = performance.now();
        const step = await scanChainStep(deps);
        const ms = performance.now() - started;
        if (!step || step.transfers !== TRANSFERS_PER_BLOCK) {
          throw new Error(`scan bench: expected ${TRANSFERS_PER_BLOCK} transfers in block ${head}, scanned ${step?.transfers}`);
        }
        samplesMs.push(ms);
      }
    } finally {
      await rpc.call('evm_setAutomine', [true]);
    }
    const sorted = [...samplesMs].sort((a, b) => a - b);
    return {
      openPayments: opts.open,
      blocks: opts.blocks,
      transfersPerBlock: TRANSFERS_PER_BLOCK,
      medianMs: Math.round(sorted[Math.floor(sorted.length / 2)] * 10) / 10,
      samplesMs: samplesMs.map((s) => Math.round(s * 10) / 10),
    };
  } finally {
    await db.destroy();
    const cleanup = new pg.Client({ connectionString: opts.adminDatabaseUrl });
    await cleanup.connect();
    await cleanup.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await cleanup.end();
  }
}
