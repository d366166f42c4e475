import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { Queue } from 'bullmq';
import { ALL_QUEUES, type QueueName } from './names.js';

/** A single Redis or a Redis Cluster: BullMQ and every caller here accept either. */
export type RedisConnection = Redis | Cluster;

/**
 * REDIS_URL `redis+cluster://[user:password@]host:port,host:port` (or `rediss+cluster://` for TLS) names seed nodes
 * of a Redis Cluster; the client discovers the rest. Returns undefined for an ordinary redis:// URL.
 */
export function parseClusterUrl(url: string):
  | { nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean }
  | undefined {
  const m = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)/.exec(url);
  if (!m) return undefined;
  const nodes = m[4].split(',').map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(node.slice(at + 1)) };
  });
  return {
    nodes,
    username: m[2] ? decodeURIComponent(m[2]) : undefined,
    password: m[3] ? decodeURIComponent(m[3]) : undefined,
    tls: m[1] === 'rediss',
  };
}

/**
 * Producers fail fast when Redis is down (the outbox keeps the work); workers block and wait
 * (`maxRetriesPerRequest: null`, as BullMQ requires).
 */
export function createRedis(url: string, role: 'producer' | 'worker'): RedisConnection {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 };
  const cluster = parseClusterUrl(url);
  const redis = cluster
    ? new Cluster(cluster.nodes, {
        redisOptions: {
          ...options,
          username: cluster.username,
          password: cluster.password,
          ...(cluster.tls ? { tls: {} } : {}),
        },
        // A producer must not queue commands while the cluster is unknown (same reason as enableOfflineQueue above).
        enableOfflineQueue: role === 'worker',
        enableReadyCheck: true,
      })
    : new Redis(url, options);
  redis.on('error', () => {
    // ioredis reconnects by itself; errors surface on the commands that fail. Without a listener node would crash.
  });
  return redis;
}

export type Queues = Record<QueueName, Queue>;

export function createQueues(connection: RedisConnection, prefix: string): Queues {
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
