/**
 * The BullMQ queues PayFlow uses. A worker process consumes the ones named in WORKER_QUEUES.
 *   chain     scan jobs, one scheduler per configured chain
 *   payments  the expiry sweep and the reconciler
 *   webhooks  one job per webhook delivery attempt
 *   settlement  sweeps of confirmed payments (and refunds) to their destination, plus its reconciler
 */
export const QUEUES = {
  chain: 'chain',
  payments: 'payments',
  webhooks: 'webhooks',
  settlement: 'settlement',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
export const ALL_QUEUES: QueueName[] = Object.values(QUEUES);

