import type { RedisConnection } from '../queues/redis.js';
import type { NewDelivery } from './dispatchDeliveries.js';

/**
 * The Redis list through which API processes hand new deliveries' first attempts to the workers, who turn them
 * into BullMQ jobs (workers/webhooks/relayFirstAttempts.ts). One RPUSH of short strings per batch costs the API
 * a few µs where BullMQ's addBulk cost ≈ 50 µs of its one thread per job (README "Performance").
 */
export const handoffKey = (queuePrefix: string) => `${queuePrefix}:webhooks:first-attempts`;

/** `deliveryId` or `deliveryId requestId`: neither contains a space (ids are ours; request ids match [A-Za-z0-9._-]). */
export const encodeHandoff = ([deliveryId, requestId]: NewDelivery) => (requestId === null ? deliveryId : `${deliveryId} ${requestId}`);

export function decodeHandoff(entry: string): NewDelivery {
  const space = entry.indexOf(' ');
  return space < 0 ? [entry, null] : [entry.slice(0, space), entry.slice(space + 1)];
}

export async function handOver(redis: RedisConnection, queuePrefix: string, batch: NewDelivery[]): Promise<void> {
  await redis.rpush(handoffKey(queuePrefix), ...batch.map(encodeHandoff));
}

/** Up to `max` handed-over deliveries, waiting at most `timeoutSeconds` for the first; [] when none came. */
export async function takeHandedOver(redis: RedisConnection, queuePrefix: string, max: number, timeoutSeconds: number): Promise<NewDelivery[]> {
  const popped = (await redis.call('BLMPOP', String(timeoutSeconds), '1', handoffKey(queuePrefix), 'LEFT', 'COUNT', String(max))) as
    | [key: string, entries: string[]]
    | null;
  return popped ? popped[1].map(decodeHandoff) : [];
}
