import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Queue } from 'bullmq';

/** A job as BullMQ's addBulk takes it. */
export interface BulkJob {
  name: string;
  data: Record<string, unknown>;
  opts: { jobId: string };
}

/** Puts jobs into the webhooks queue (dispatchDeliveries.ts decides what happens when it fails). */
export interface JobSender {
  addBulk(jobs: BulkJob[]): Promise<void>;
  close(): Promise<void>;
}

/** Sends from this thread, on the process's own queue. */
export function queueSender(queue: Queue): JobSender {
  return {
    addBulk: async (jobs) => {
      await queue.addBulk(jobs);
    },
    close: async () => {},
  };
}

/**
 * Sends from a worker thread with its own Redis connection (jobSenderThread.ts). On the API's event loop, BullMQ
 * and ioredis cost ≈ 50 µs of CPU per job (building each job, its Lua call and its reply), more than a quarter of
 * a payment creation, and that thread is what bounds POST /api/v1/payments (README "Performance"). Here it costs a
 * message per batch, and the job work runs on the other core.
 *
 * If the thread dies (it is respawned on the next batch) or never answers, the batch's promise rejects or times
 * out and the dispatcher puts its jobs into the outbox, as when Redis refuses them.
 */
export function threadSender(redisUrl: string, prefix: string): JobSender {
  // From the build the thread's file is .js. From source (npm start, the tests) it is .ts, and the thread first
  // registers tsx's loader: a worker does not inherit one that the tsx command registered at run time.
  const fromSource = import.meta.url.endsWith('.ts');
  const file = new URL(`./jobSenderThread${fromSource ? '.ts' : '.js'}`, import.meta.url);
  const entry = fromSource ? `import(${JSON.stringify(tsxLoaderApi())}).then(({ register }) => { register(); return import(${JSON.stringify(file.href)}); })` : file;
  let worker: Worker | undefined;
  let nextId = 0;
  const waiting = new Map<number, { resolve(): void; reject(err: Error): void }>();
  const failAll = (err: Error) => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  const start = () => {
    const w = new Worker(entry, { eval: fromSource, workerData: { redisUrl, prefix }, resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 } });
    w.unref(); // never what keeps the process alive: close() ends it after the dispatcher has drained
    w.on('message', ({ id, error }: { id: number; error?: string }) => {
      const entry = waiting.get(id);
      waiting.delete(id);
      if (error === undefined) entry?.resolve();
      else entry?.reject(new Error(error));
    });
    w.on('error', (err) => failAll(err));
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      failAll(new Error(`the job sender thread exited (code ${code})`));
    });
    return w;
  };
  return {
    addBulk(jobs) {
      worker ??= start();
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker!.postMessage({ id, jobs });
      });
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (w) await w.terminate();
    },
  };
}

/** tsx's ESM API module (its `register`), as a file URL: what `import('tsx/esm/api')` would load from this package. */
function tsxLoaderApi(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const entry = (require(manifest) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api'].import.default;
  return pathToFileURL(path.join(path.dirname(manifest), entry)).href;
}
