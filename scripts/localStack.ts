import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Mnemonic, Wallet } from 'ethers';

/**
 * Files of the local default stack, all under PAYFLOW_HOME (default `.payflow/` in the repo):
 *   local.json   generated secrets: admin token, JWT secret, webhook secrets key, HD seed, demo merchant API key (mode 0600)
 *   chains.json  the dev chain's CHAINS_FILE (token address filled in after deployment)
 *   pg/          embedded Postgres data
 */
export const PAYFLOW_HOME = path.resolve(process.env.PAYFLOW_HOME ?? '.payflow');

export interface LocalSecrets {
  adminToken: string;
  jwtSecret: string;
  /** WEBHOOK_SECRETS_KEY: seals the webhook signing secrets stored in Postgres. */
  webhookSecretsKey: string;
  hdMnemonic: string;
  demoApiKey: string;
  /** The settlement gas tank's key (GAS_TANK_PRIVATE_KEY); funded from a dev account on every start. */
  gasTankPrivateKey: string;
}

export function loadOrCreateSecrets(home = PAYFLOW_HOME): LocalSecrets {
  mkdirSync(home, { recursive: true, mode: 0o755 });
  const file = path.join(home, 'local.json');
  if (existsSync(file)) {
    const kept = JSON.parse(readFileSync(file, 'utf8')) as LocalSecrets;
    if (kept.gasTankPrivateKey && kept.webhookSecretsKey) return kept;
    // Written by an older version: add the secrets it did not have yet and keep everything else.
    const upgraded = {
      ...kept,
      gasTankPrivateKey: kept.gasTankPrivateKey ?? Wallet.createRandom().privateKey,
      webhookSecretsKey: kept.webhookSecretsKey ?? randomBytes(32).toString('base64url'),
    };
    writeFileSync(file, JSON.stringify(upgraded, null, 2), { mode: 0o600 });
    return upgraded;
  }
  const secrets: LocalSecrets = {
    adminToken: `adm_${randomBytes(24).toString('base64url')}`,
    jwtSecret: randomBytes(48).toString('base64url'),
    webhookSecretsKey: randomBytes(32).toString('base64url'),
    // A fresh seed, never the public test mnemonic: deposit addresses must not be the dev accounts.
    hdMnemonic: Mnemonic.fromEntropy(randomBytes(16)).phrase,
    demoApiKey: `sk_test_${randomBytes(24).toString('base64url').replace(/[-_]/g, 'x')}`,
    gasTankPrivateKey: Wallet.createRandom().privateKey,
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

export function readLocalChains(home = PAYFLOW_HOME): { chain_id: number; rpc_url: string; tokens: { symbol: string; address: string; decimals: number }[] }[] {
  return JSON.parse(readFileSync(path.join(home, 'chains.json'), 'utf8'));
}
