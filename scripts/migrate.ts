// The `release` process: brings the schema up to date. Needs only DATABASE_URL.
import { createDb, migrateLatest } from '../shared/db.js';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('payflow: configuration error: DATABASE_URL: is required but not set\n');
  process.exit(78);
}
const db = createDb(url, 2, 'payflow-release');
try {
  const applied = await migrateLatest(db);
  process.stdout.write(applied.length ? `migrations applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
} catch (err) {
  process.stderr.write(`payflow: migration failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
