import { parentPort, workerData } from 'node:worker_threads';
import { QUEUES } from '../queues/names.js';
import { createQueues, createRedis } from '../queues/redis.js';
import type { BulkJob } from './jobSender.js';

// The thread behind threadSender (jobSender.ts): adds each batch it is sent and answers with the batch's id.
const { redisUrl, prefix } = workerData as { redisUrl: string; prefix: string };
const queues = createQueues(createRedis(redisUrl, 'producer'), prefix);
// Redis unreachable: each batch's addBulk fails and the dispatcher says so; nothing to print here.
for (const q of Object.values(queues)) q.on('error', () => {});
const queue = queues[QUEUES.webhooks];

parentPort!.on('message', ({ id, jobs }: { id: number; jobs: BulkJob[] }) => {
  queue.addBulk(jobs).then(
    () => parentPort!.postMessage({ id }),
    (err: Error) => parentPort!.postMessage({ id, error: err.message }),
  );
});
