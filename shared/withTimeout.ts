/**
 * Rejects with `message` if `work` has not settled within `ms`. The work itself goes on (a Redis command already
 * sent cannot be taken back), so callers use it only where finishing late is harmless.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
