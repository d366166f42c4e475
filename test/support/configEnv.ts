/** The smallest environment loadConfig accepts: one dev chain and valid secrets. Tests spread overrides onto it. */
export const minimalEnv = {
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/payflow',
  REDIS_URL: 'redis://127.0.0.1:6379',
  ADMIN_TOKEN: 'a'.repeat(32),
  JWT_SECRET: 'j'.repeat(32),
  WEBHOOK_SECRETS_KEY: 'w'.repeat(32),
  HD_MNEMONIC: 'test test test test test test test test test test test junk',
  CHAINS: JSON.stringify([{ chain_id: 31337, name: 'dev', rpc_url: 'http://127.0.0.1:8545' }]),
};
