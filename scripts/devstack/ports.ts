import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/**
 * Asks the kernel for a currently unused TCP port on 127.0.0.1.
 *
 * The port is released before it is returned, so another process could grab it
 * before our child binds it; the window is tiny and every starter reports a
 * bind failure clearly, which is good enough for a dev/test stack.
 */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: could not read the bound port'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

const exitKills = new Map<number, NodeJS.Signals>();
let exitHookInstalled = false;

/**
 * Registers a child pid to be signalled synchronously when this process exits,
 * so a crash, `process.exit()` or mocha's `--exit` never leaves orphans that
 * keep ports and data dirs busy. Returns a function that unregisters it (call
 * it once the child has been stopped normally, because pids get reused).
 *
 * Only the `exit` event is used: it fires for process.exit() and natural exit,
 * and unlike SIGINT/SIGTERM handlers it does not change how the process reacts
 * to signals (the launcher owns that).
 */
export function killOnExit(pid: number, signal: NodeJS.Signals = 'SIGTERM'): () => void {
  exitKills.set(pid, signal);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [p, sig] of exitKills) {
        try {
          process.kill(p, sig);
        } catch {
          // already gone
        }
      }
    });
  }
  return () => {
    exitKills.delete(pid);
  };
}

/** True if a process with this pid exists (ours or not). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends `signal` to a child we spawned and waits for it to exit, escalating to
 * SIGKILL after `graceMs` so a wedged child can never hang a test run's teardown.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Keeps the last `max` lines a child printed, so a failed start can say why
 * without the caller having opted into logging.
 */
export class LogTail {
  private lines: string[] = [];
  private partial = '';
  constructor(
    private readonly max = 40,
    private readonly onLine?: (line: string) => void,
  ) {}

  push(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const parts = text.split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
  }

  flush(): void {
    if (this.partial) this.add(this.partial);
    this.partial = '';
  }

  toString(): string {
    return [...this.lines, this.partial].filter(Boolean).join('\n');
  }

  private add(line: string): void {
    if (!line.trim()) return;
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
    this.onLine?.(line);
  }
}
