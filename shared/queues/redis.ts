import { Redis, type RedisOptions } from 'ioredis';
import { Queue } from 'bullmq';
import { ALL_QUEUES, type QueueName } from './names.js';

/**
 * Producers fail fast when Redis is down (the outbox keeps the work); workers block and wait
 * (`maxRetriesPerRequest: null`, as BullMQ requires).
 */
export function createRedis(url: string, role: 'producer' | 'worker'): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 };
  const redis = new Redis(url, options);
  redis.on('error', () => {
    // ioredis reconnects by itself; errors surface on the commands that fail. Without a listener node would crash.
  });
  return redis;
}

export type Queues = Record<QueueName, Queue>;

export function createQueues(connection: Redis, prefix: string): Queues {
  return Object.fromEntries(
    ALL_QUEUES.map((name) => [
      name,
      new Queue(name, {
        connection,
        prefix,
        defaultJobOptions: {
          removeOnComplete: { age: 3600, count: 1000 },
          removeOnFail: { age: 7 * 86400 },
          attempts: 8,
          backoff: { type: 'exponential', delay: 1000 },
        },
      }),
    ]),
  ) as Queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
