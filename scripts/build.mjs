// `npm run build`: compiles the production processes to plain JavaScript in dist/ (what the Procfile runs), so they
// start without compiling TypeScript at every boot. Plain .mjs so that it runs with nothing but node.
//
//   node scripts/build.mjs             clean build
//   node scripts/build.mjs --if-stale  build only when dist/ is missing or older than a source file (bench, tests)
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(repoRoot, 'dist');
// Written last: its presence means the build finished, its mtime is when.
const stamp = path.join(dist, '.build-complete');
// Everything the build reads. Runtime files that are not TypeScript are copied to the same place under dist/, so
// code that finds them relative to import.meta.url works the same from source and from dist/.
const SOURCES = ['api', 'workers', 'shared', 'migrations', 'scripts', 'docs/openapi.json', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];
const ASSETS = ['api/checkout/assets', 'docs/openapi.json'];

function newestMtime(file) {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file shows as a newer directory
  for (const entry of readdirSync(file)) newest = Math.max(newest, newestMtime(path.join(file, entry)));
  return newest;
}

export function distIsStale() {
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  return SOURCES.some((s) => existsSync(path.join(repoRoot, s)) && newestMtime(path.join(repoRoot, s)) > built);
}

function build() {
  // From scratch, in a fresh directory swapped in at the end: a file deleted from the source (a migration above all)
  // must not live on in dist/, and a process starting from dist/ meanwhile never sees half a build.
  const staging = `${dist}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(repoRoot, 'tsconfig.build.json'), '--outDir', staging], { cwd: repoRoot, stdio: 'inherit' });
  if (result.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    process.stderr.write('payflow build: tsc failed\n');
    process.exit(result.status ?? 1);
  }
  for (const asset of ASSETS) {
    mkdirSync(path.dirname(path.join(staging, asset)), { recursive: true });
    cpSync(path.join(repoRoot, asset), path.join(staging, asset), { recursive: true });
  }
  writeFileSync(path.join(staging, path.basename(stamp)), `${new Date().toISOString()}\n`);
  const previous = `${dist}.previous-${process.pid}`;
  if (existsSync(dist)) renameSync(dist, previous);
  renameSync(staging, dist);
  rmSync(previous, { recursive: true, force: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && !distIsStale()) process.stderr.write('payflow build: dist/ is up to date\n');
  else build();
}
