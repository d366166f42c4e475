import { expect } from 'chai';
import { loadConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';
import { minimalEnv } from '../support/configEnv.js';

const base = {
  ...minimalEnv,
  CHAINS: JSON.stringify([
    { chain_id: 31337, name: 'dev', rpc_url: 'http://127.0.0.1:8545', confirmations: 2, block_time: 1, tokens: [{ symbol: 'USDC', address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', decimals: 6 }] },
  ]),
};

const failsOn = (env: Record<string, string>, variable: string) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).message.startsWith(variable)).to.equal(true, (err as Error).message);
    expect((err as Error).message).not.to.include('\n');
    return;
  }
  expect.fail(`expected a ConfigError naming ${variable}`);
};

describe('config.loadConfig', () => {
  it('loads a valid environment with documented defaults', () => {
    const c = loadConfig(base);
    expect(c.port).to.equal(3000);
    expect(c.chains[0]).to.include({ chainId: 31337, confirmations: 2, nativeSymbol: 'ETH' });
    expect(c.chains[0].tokens[0]).to.deep.equal({ symbol: 'USDC', address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', decimals: 6 });
    expect(c.webhookRetrySchedule).to.deep.equal([5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]);
  });

  it('names the variable that is missing or bad, in one line', () => {
    const { DATABASE_URL: _d, ...noDb } = base;
    failsOn(noDb, 'DATABASE_URL');
    failsOn({ ...base, PORT: 'eighty' }, 'PORT');
    failsOn({ ...base, REDIS_URL: 'http://x' }, 'REDIS_URL');
    failsOn({ ...base, ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN');
    failsOn({ ...base, CHAINS: 'not json' }, 'CHAINS');
    failsOn({ ...base, CHAINS: '[{"chain_id":1,"rpc_url":"http://x","confirmations":0}]' }, 'CHAINS[0].confirmations');
    failsOn({ ...base, CHAINS: '[{"chain_id":1,"rpc_url":"http://x","tokens":[{"symbol":"USDC","address":"0x1","decimals":6}]}]' }, 'CHAINS[0].tokens[0].address');
    failsOn({ ...base, WORKER_QUEUES: 'chain,bogus' }, 'WORKER_QUEUES');
    failsOn({ ...base, HD_MNEMONIC: 'too short' }, 'HD_MNEMONIC');
    const { WEBHOOK_SECRETS_KEY: _w, ...noSealingKey } = base;
    failsOn(noSealingKey, 'WEBHOOK_SECRETS_KEY');
    failsOn({ ...base, WEBHOOK_SECRETS_KEY: 'short' }, 'WEBHOOK_SECRETS_KEY');
    failsOn({ ...base, WEBHOOK_SECRETS_KEY_PREVIOUS: `${'p'.repeat(32)},short` }, 'WEBHOOK_SECRETS_KEY_PREVIOUS');
  });

  it('reads the webhook secrets key, then the previous ones in order', () => {
    expect(loadConfig(base).webhookSecretsKeys).to.deep.equal(['w'.repeat(32)]);
    const c = loadConfig({ ...base, WEBHOOK_SECRETS_KEY_PREVIOUS: ` ${'p'.repeat(32)} ,${'q'.repeat(40)}` });
    expect(c.webhookSecretsKeys).to.deep.equal(['w'.repeat(32), 'p'.repeat(32), 'q'.repeat(40)]);
  });

  it('accepts a block tag as confirmations', () => {
    const c = loadConfig({ ...base, CHAINS: '[{"chain_id":1,"rpc_url":"http://x","confirmations":"finalized"}]' });
    expect(c.chains[0].confirmations).to.equal('finalized');
  });
});
