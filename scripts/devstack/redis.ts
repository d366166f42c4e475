import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { killOnExit, LogTail, stopChild } from './ports.js';

const READY_TIMEOUT_MS = 10_000;

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fsConstants.X_OK);
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

async function which(name: string): Promise<string | undefined> {
  // The extra dirs matter when PATH is minimal (cron, some CI shells, sudo).
  const dirs = [
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
    '/usr/bin',
    '/usr/local/bin',
    '/opt/homebrew/bin',
    '/usr/sbin',
  ];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail = new LogTail(20);
    child.stdout.on('data', (c: Buffer) => tail.push(c));
    child.stderr.on('data', (c: Buffer) => tail.push(c));
    child.once('error', reject);
    child.once('close', (code) => {
      tail.flush();
      resolve({ code, output: tail.toString() });
    });
  });
}

const HOW_TO_INSTALL =
  'redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL to an existing Redis';

/**
 * Returns the path of a redis-server binary, installing the Debian package when
 * we are root on an apt system (a clean CI container). No npm package ships a
 * Redis binary, so there is no other offline-friendly fallback.
 */
export async function ensureRedisServer(): Promise<string> {
  const found = await which('redis-server');
  if (found) return found;

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const aptGet = isRoot ? await which('apt-get') : undefined;
  if (!aptGet) throw new Error(HOW_TO_INSTALL);

  console.error('redis-server not found; installing it: apt-get update && apt-get install -y redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'redis-server']]) {
    const { code, output } = await run(aptGet, args, env);
    if (code !== 0) {
      throw new Error(`${HOW_TO_INSTALL} (apt-get ${args[0]} failed with code ${code}: ${output.split('\n').slice(-3).join(' | ')})`);
    }
  }
  const installed = await which('redis-server');
  if (!installed) throw new Error(HOW_TO_INSTALL);
  return installed;
}

/** One raw RESP round-trip; avoids a client library's reconnect loop and its logging while we poll. */
function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (err?: Error) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(reply);
    };
    socket.setTimeout(timeoutMs, () => done(new Error('timeout')));
    socket.once('error', done);
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      const eol = reply.indexOf('\r\n');
      if (eol < 0) return;
      if (reply[0] !== '$') return done();
      // Bulk string: wait for the announced payload (INFO is one).
      const len = Number(reply.slice(1, eol));
      if (len < 0 || Buffer.byteLength(reply) >= eol + 2 + len + 2) done();
    });
  });
}

export interface RedisOptions {
  port: number;
  /** Working dir for redis (AOF/RDB files); created if missing. */
  dir: string;
  /** appendonly yes, so `npm start` keeps queues across restarts. Default false. */
  persist?: boolean;
  onLog?: (line: string) => void;
  /** Binary to run; default: ensureRedisServer(). */
  redisServer?: string;
}

export interface RedisHandle {
  url: string;
  stop(): Promise<void>;
  pid: number;
}

export async function startRedis(opts: RedisOptions): Promise<RedisHandle> {
  const bin = opts.redisServer ?? (await ensureRedisServer());
  const dir = path.resolve(opts.dir);
  await fs.mkdir(dir, { recursive: true });

  const args = [
    '--port', String(opts.port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', opts.persist ? 'yes' : 'no',
    // A child we own, not a daemon: its pid is ours to stop and it dies with us.
    '--daemonize', 'no',
    '--logfile', '',
    '--loglevel', 'warning',
  ];
  const tail = new LogTail(40, opts.onLog);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Always drain: a full pipe would block redis on its next log write.
  child.stdout!.on('data', (c: Buffer) => tail.push(c));
  child.stderr!.on('data', (c: Buffer) => tail.push(c));

  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', reject);
  });
  const unregister = killOnExit(spawned, 'SIGTERM');

  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      unregister();
      tail.flush();
      throw new Error(`redis-server exited during start-up on 127.0.0.1:${opts.port}:\n${tail}`);
    }
    const reply = await rawCommand(opts.port, 'PING', 500).catch(() => '');
    if (reply.startsWith('+PONG')) {
      // Another server already listening on this port would answer too, while
      // ours dies with "Address already in use"; make sure the PONG is ours.
      const info = await rawCommand(opts.port, 'INFO server', 500).catch(() => '');
      if (info.includes(`process_id:${spawned}\r\n`)) break;
    }
    if (Date.now() > deadline) {
      await stopChild(child, 'SIGKILL');
      unregister();
      tail.flush();
      throw new Error(`redis-server did not answer PING within ${READY_TIMEOUT_MS} ms:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${opts.port}`,
    pid: spawned,
    // SIGTERM is redis' graceful shutdown; with `--save ''` it writes no RDB
    // (same as SHUTDOWN NOSAVE) and with appendonly it still fsyncs the AOF.
    stop: () =>
      (stopping ??= stopChild(child, 'SIGTERM').finally(unregister)),
  };
}
