import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { freePort } from '../../scripts/devstack/ports.js';

export interface ReceivedWebhook {
  body: string;
  headers: IncomingHttpHeaders;
  receivedAt: number;
}

/** A real HTTP endpoint that records what it receives; `respond` decides the status code per request. */
export async function startWebhookReceiver(respond: (n: number) => number | 'hang' = () => 200) {
  const received: ReceivedWebhook[] = [];
  let count = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const outcome = respond(++count);
      if (outcome === 'hang') return; // never answers: the sender's timeout must fire
      received.push({ body: Buffer.concat(chunks).toString(), headers: req.headers, receivedAt: Date.now() });
      res.writeHead(outcome, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    events: () => received.map((r) => JSON.parse(r.body) as { id: string; type: string; data: any }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
