import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The node arguments of a Procfile process type (`web: node --flag dist/api/main.js` → `['--flag', '<repo>/dist/api/main.js']`),
 * so the tests and the bench run a compiled process exactly as the platform does, flags included.
 */
export function procfileNodeArgs(processType: 'web' | 'worker' | 'release'): string[] {
  const line = readFileSync(path.join(repoRoot, 'Procfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${processType}:`));
  if (!line) throw new Error(`Procfile has no ${processType} process`);
  const [command, ...args] = line.slice(processType.length + 1).trim().split(/\s+/);
  if (command !== 'node') throw new Error(`Procfile ${processType} does not run node: ${line}`);
  return args.map((a) => (a.startsWith('-') ? a : path.join(repoRoot, a)));
}
