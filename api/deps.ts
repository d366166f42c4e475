import type { KeyObject } from 'node:crypto';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import type { Queues, RedisConnection } from '../shared/queues/redis.js';
import type { DepositWallet } from '../shared/wallet/hdWallet.js';
import type { DeliveryDispatcher } from '../shared/webhooks/dispatchDeliveries.js';
import type { ApiKeyCache } from './auth/apiKeyCache.js';

/** What the HTTP layer needs; built once in api/main.ts (or by a test). */
export interface ApiDeps {
  config: Config;
  db: Db;
  wallet: DepositWallet;
  log: Logger;
  jwtKey: KeyObject;
  /** Verified API keys, cached briefly; createApp makes one when absent. */
  apiKeys?: ApiKeyCache;
  /** Producer connection (fails fast when Redis is down): readiness, Bull Board, rate limits, first webhook attempts. */
  redis: RedisConnection;
  /** The BullMQ queues: Bull Board and queue-depth metrics. */
  queues: Queues;
  /** Hands new payments' first webhook attempts to the workers after commit; createApp makes one when absent (api/main.ts drains it at stop). */
  deliveries?: DeliveryDispatcher;
  /** True once SIGTERM arrived: /ready answers 503 so load balancers stop routing here. */
  isStopping?: () => boolean;
}
