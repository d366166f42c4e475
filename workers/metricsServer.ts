import { createServer, type Server } from 'node:http';
import { metricsAuthorized, metricsRegistry } from '../shared/metrics.js';
import type { Logger } from '../shared/logger.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

function listen(server: Server, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port);
  });
}

/**
 * A worker's own /metrics endpoint. It binds the first free port of [first, last] (WORKER_METRICS_PORT_RANGE), so
 * several workers on one host get 9091, 9092, … and Prometheus scrapes the whole range; [0, 0] takes any free port.
 * Token as for the API's /metrics: Bearer, or Basic with the token as password.
 */
export async function startMetricsServer(opts: { ports: [number, number]; token: string; log: Logger }): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { type: 'not_found_error', code: 'route_not_found', message: 'Only GET /metrics here' } }));
      return;
    }
    if (!metricsAuthorized(req.headers.authorization, opts.token)) {
      res
        .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="payflow metrics"' })
        .end(JSON.stringify({ error: { type: 'authentication_error', code: 'unauthorized', message: 'Metrics token required' } }));
      return;
    }
    metricsRegistry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metricsRegistry.contentType }).end(text),
      (err: Error) => {
        opts.log.warn({ err: err.message }, 'metrics collection failed');
        res.writeHead(500).end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  const [first, last] = opts.ports;
  for (let port = first; port <= last; port++) {
    if (await listen(server, port)) {
      const bound = (server.address() as { port: number }).port;
      opts.log.info({ port: bound }, 'worker metrics listening');
      return {
        port: bound,
        close: () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    }
  }
  throw new Error(`no free port for worker metrics in ${first}-${last} (WORKER_METRICS_PORT / WORKER_METRICS_PORT_RANGE)`);
}
