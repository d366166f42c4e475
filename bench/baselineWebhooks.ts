import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';

/**
 * Baseline for webhook delivery throughput: N BullMQ jobs, each one plain HTTP POST of a small JSON body to the
 * receiver, with the same worker concurrency as PayFlow's worker. Prints the elapsed milliseconds and the CPU
 * milliseconds this process used over them as JSON.
 */
const count = Number(process.env.COUNT);
const concurrency = Number(process.env.WORKER_CONCURRENCY ?? 10);
const url = process.env.RECEIVER_URL!;
const prefix = `bench-wh-${randomBytes(3).toString('hex')}`;
const producer = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const consumer = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const queue = new Queue('deliver', { connection: producer, prefix });
let done = 0;
let finish: () => void;
const finished = new Promise<void>((r) => (finish = r));
const started = performance.now();
const cpuAtStart = process.cpuUsage();
await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'deliver', data: { id: `evt_${i}` }, opts: { removeOnComplete: true } })));
const worker = new Worker(
  'deliver',
  async (job) => {
    const body = JSON.stringify({ id: job.data.id, type: 'payment.confirmed', data: { id: 'pay_x', amount: '0.05' } });
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    if (++done === count) finish();
  },
  { connection: consumer, prefix, concurrency },
);
await finished;
const elapsedMs = performance.now() - started;
const usage = process.cpuUsage(cpuAtStart);
const cpuMs = (usage.user + usage.system) / 1000;
await worker.close();
await queue.obliterate({ force: true }).catch(() => {});
await queue.close();
producer.disconnect();
consumer.disconnect();
process.stdout.write(JSON.stringify({ elapsedMs, cpuMs }) + '\n');
process.exit(0);
