import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * The bare baselines the API is measured against, run as their own process like the API is:
 *   BASELINE=hello   node:http answering a constant JSON body (vs GET /health)
 *   BASELINE=select  node:http + one pg SELECT of a payment row by id (vs GET /api/v1/payments/:id)
 *   BASELINE=insert  node:http + JSON body parse + one pg INSERT + one BullMQ add (vs POST /api/v1/payments)
 * Same pool size as the API (DATABASE_POOL_MAX) so the comparison is about our code, not the pool.
 */
const mode = process.env.BASELINE ?? 'hello';
const port = Number(process.env.PORT);
const pool = mode === 'hello' ? null : new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DATABASE_POOL_MAX ?? 10) });
const redis = mode === 'insert' ? new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null }) : null;
const queue = redis ? new Queue('baseline', { connection: redis, prefix: `bench-${randomBytes(3).toString('hex')}` }) : null;

if (mode === 'insert') {
  await pool!.query(`CREATE TABLE IF NOT EXISTS bench_baseline (id text PRIMARY KEY, amount numeric(78,0) NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
}

const server = createServer((req, res) => {
  const fail = (err: Error) => {
    res.writeHead(500).end(err.message);
  };
  if (mode === 'hello') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  if (mode === 'select') {
    const id = req.url!.split('/').pop();
    pool!.query('SELECT * FROM payments WHERE id = $1', [id]).then((r) => {
      res.writeHead(r.rows.length ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(r.rows[0] ?? null));
    }, fail);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString());
    const id = `bl_${randomBytes(11).toString('hex')}`;
    pool!
      .query('INSERT INTO bench_baseline (id, amount, body) VALUES ($1, $2, $3) RETURNING *', [id, '50000000000000000', body])
      .then(async (r) => {
        await queue!.add('created', { id }, { jobId: id });
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(r.rows[0]));
      })
      .catch(fail);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', async () => {
  server.close();
  server.closeAllConnections();
  await queue?.obliterate({ force: true }).catch(() => {});
  await queue?.close();
  redis?.disconnect();
  await pool?.end();
  process.exit(0);
});
