import type { KeyObject } from 'node:crypto';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import type { DepositWallet } from '../shared/wallet/hdWallet.js';

/** What the HTTP layer needs; built once in api/main.ts (or by a test). */
export interface ApiDeps {
  config: Config;
  db: Db;
  wallet: DepositWallet;
  log: Logger;
  jwtKey: KeyObject;
}
