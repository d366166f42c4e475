// Preloaded with `--import` by `npm run bench -- --profile` (NODE_OPTIONS refuses --cpu-prof, and runs before tsx
// is loaded, hence plain JS): profiles the whole process and writes a .cpuprofile (Chrome DevTools, speedscope)
// into BENCH_PROFILE_DIR at exit.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 200 });
session.post('Profiler.start');
let written = false;
const write = () => {
  if (written) return;
  written = true;
  // The same-thread inspector session answers synchronously, so this completes inside an exit handler.
  session.post('Profiler.stop', (err, result) => {
    if (err) return;
    mkdirSync(dir, { recursive: true });
    const entry = path.basename(process.argv[1] ?? 'node').replace(/\.[cm]?[jt]s$/, '');
    writeFileSync(path.join(dir, `${entry}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  });
};
// At SIGTERM too: a process whose graceful stop is cut short by SIGKILL would otherwise leave nothing.
process.on('SIGTERM', write);
process.on('exit', write);
