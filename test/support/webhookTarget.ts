import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { freePort } from '../../scripts/devstack/ports.js';

export interface TargetRequest {
  n: number;
  body: string;
  headers: IncomingHttpHeaders;
  receivedAt: number;
  event: { id: string; type: string; data: any };
}

/** How the target answers request n (1-based): a status with optional headers and body, or 'hang' (no answer). */
export type TargetAnswer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/**
 * A real HTTP webhook receiver for the webhook tests. Unlike support/webhookReceiver.ts it records every request,
 * answered or not, can send headers (Retry-After) and can hold requests until `release()`.
 */
export async function startWebhookTarget(answer: (n: number, req: TargetRequest) => TargetAnswer = () => ({ status: 200 })) {
  const requests: TargetRequest[] = [];
  const held: ServerResponse[] = [];
  let releaseWith: number | null = null;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      let event: TargetRequest['event'];
      try {
        event = JSON.parse(body);
      } catch {
        event = { id: '', type: '', data: null };
      }
      const request: TargetRequest = { n: requests.length + 1, body, headers: req.headers, receivedAt: Date.now(), event };
      requests.push(request);
      const a = releaseWith !== null ? { status: releaseWith } : answer(request.n, request);
      if (a === 'hang') {
        held.push(res);
        return;
      }
      res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers }).end(a.body ?? `answer ${a.status}`);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    /** Answers every held request and every later one with `status`. */
    release(status = 200) {
      releaseWith = status;
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(status).end('released');
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
