import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../scripts/devstack/ports.js';
import { stopChild, waitFor } from './gateway.js';

export interface ScrapeJob {
  name: string;
  targets: string[];
  /** Bearer token, or Basic with this password. */
  auth: { bearer: string } | { basicPassword: string };
}

/** A real Prometheus server (Debian `prometheus`) scraping the given targets every second. */
export async function startPrometheus(jobs: ScrapeJob[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'payflow-prom-'));
  const port = await freePort();
  const yaml = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 900ms',
    'scrape_configs:',
    ...jobs.flatMap((j) => [
      `  - job_name: ${JSON.stringify(j.name)}`,
      ...('bearer' in j.auth
        ? ['    authorization:', `      credentials: ${JSON.stringify(j.auth.bearer)}`]
        : ['    basic_auth:', '      username: prometheus', `      password: ${JSON.stringify(j.auth.basicPassword)}`]),
      '    static_configs:',
      `      - targets: ${JSON.stringify(j.targets)}`,
    ]),
  ].join('\n');
  writeFileSync(path.join(dir, 'prometheus.yml'), `${yaml}\n`);
  let output = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (c) => (output = (output + c).slice(-20_000)));
  child.stderr!.on('data', (c) => (output = (output + c).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/-/ready`)).ok, 30_000, () => `prometheus did not start:\n${output}`);
  return {
    url,
    logs: () => output,
    async api<T = any>(route: string): Promise<T> {
      const res = await fetch(`${url}/api/v1/${route}`);
      const body = (await res.json()) as { status: string; data: T };
      if (body.status !== 'success') throw new Error(`prometheus ${route}: ${JSON.stringify(body)}`);
      return body.data;
    },
    async query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
      return (await this.api<{ result: any[] }>(`query?query=${encodeURIComponent(expr)}`)).result;
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The ports worker processes bound their /metrics servers to, read from their JSON logs (LOG_LEVEL info). */
export function workerMetricsPorts(logs: string): number[] {
  return logs
    .split('\n')
    .filter((l) => l.includes('worker metrics listening'))
    .map((l) => (JSON.parse(l) as { port: number }).port);
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition format (enough of it for our own /metrics). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
export function sampleSum(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
}
