import { expect } from 'chai';
import { Contract, JsonRpcProvider, parseEther, type Block } from 'ethers';
import pg from 'pg';
import { Redis } from 'ioredis';
import { devAccounts, rpcCall } from '../../scripts/devstack/chain.js';
import { DEV_USDC_ABI } from '../../scripts/devstack/token.js';
import { getTestStack, type TestStack } from '../support/stack.js';

describe('dev stack (integration)', function () {
  this.timeout(60_000);
  let stack: TestStack;

  before(async function () {
    stack = await getTestStack();
  });

  it('Postgres answers select 1', async function () {
    const client = new pg.Client({ connectionString: stack.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number }>('select 1 as one');
      expect(rows[0].one).to.equal(1);
    } finally {
      await client.end();
    }
  });

  it('Redis answers PING', async function () {
    const redis = new Redis(stack.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).to.equal('PONG');
    } finally {
      redis.disconnect();
    }
  });

  it('the chain answers eth_chainId 31337', async function () {
    expect(stack.chainId).to.equal(31337);
    expect(Number(await rpcCall<string>(stack.rpcUrl, 'eth_chainId'))).to.equal(31337);
  });

  it('dev account 0 holds 1,000,000 USDC', async function () {
    const provider = new JsonRpcProvider(stack.rpcUrl);
    try {
      const usdc = new Contract(stack.usdcAddress, DEV_USDC_ABI, provider);
      expect(await usdc.symbol()).to.equal('USDC');
      expect(await usdc.decimals()).to.equal(6n);
      expect(await usdc.balanceOf(devAccounts(1)[0].address)).to.equal(1_000_000_000_000n);
    } finally {
      provider.destroy();
    }
  });

  it('evm_snapshot/evm_revert produces a real reorg visible over RPC', async function () {
    // ethers v6 shares identical requests made within 250 ms (cacheTimeout), so
    // re-reading the block right after the revert would return the old hash
    // and hide the reorg. Anything that watches for reorgs must disable it.
    const provider = new JsonRpcProvider(stack.rpcUrl, undefined, { pollingInterval: 100, cacheTimeout: -1 });
    try {
      const [sender, recipient] = devAccounts(2);
      const wallet = sender.connect(provider);

      const snapshot = await rpcCall<string>(stack.rpcUrl, 'evm_snapshot');
      const tx = await wallet.sendTransaction({ to: recipient.address, value: parseEther('1') });
      // Automine already mined the tx; evm_mine makes this test also hold on an interval-mined chain.
      await rpcCall(stack.rpcUrl, 'evm_mine');
      const receipt = await provider.getTransactionReceipt(tx.hash);
      expect(receipt, 'tx mined before the reorg').to.not.equal(null);
      const height = receipt!.blockNumber;
      const before = (await provider.getBlock(height)) as Block;

      expect(await rpcCall<boolean>(stack.rpcUrl, 'evm_revert', [snapshot])).to.equal(true);
      await rpcCall(stack.rpcUrl, 'evm_mine');
      await rpcCall(stack.rpcUrl, 'evm_mine');

      const after = (await provider.getBlock(height)) as Block;
      expect(after, 'a block exists again at that height').to.not.equal(null);
      expect(after.hash).to.not.equal(before.hash);
      expect(after.transactions).to.not.include(tx.hash);
      expect(await provider.getTransactionReceipt(tx.hash), 'tx dropped by the reorg').to.equal(null);
    } finally {
      provider.destroy();
    }
  });
});
