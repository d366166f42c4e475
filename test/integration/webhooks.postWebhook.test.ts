import { expect } from 'chai';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { freePort } from '../../scripts/devstack/ports.js';
import { createWebhookPoster, SNIPPET_CHARS } from '../../workers/webhooks/postWebhook.js';
import { waitFor } from '../support/gateway.js';

/** A receiver on loopback that counts the TCP connections it accepted and closed, and answers as told. */
async function startCountingReceiver(answer: (res: ServerResponse) => void = (res) => res.writeHead(200).end('ok')) {
  const sockets: Socket[] = [];
  let closed = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(res));
  });
  server.on('connection', (socket: Socket) => {
    sockets.push(socket);
    socket.on('close', () => closed++);
  });
  // Never the one to close an idle connection (Node's default is 5 s): any close the tests see is the poster's.
  server.keepAliveTimeout = 600_000;
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    server,
    url: `http://127.0.0.1:${port}/hooks`,
    connections: () => sockets.length,
    closed: () => closed,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const headers = { 'content-type': 'application/json' };
const body = '{"id":"evt_x","type":"payment.confirmed","data":null}';

describe('webhooks: the delivery agent keeps connections alive (postWebhook)', function () {
  this.timeout(30_000);
  const receivers: Awaited<ReturnType<typeof startCountingReceiver>>[] = [];
  const receiver = async (answer?: (res: ServerResponse) => void) => {
    const r = await startCountingReceiver(answer);
    receivers.push(r);
    return r;
  };
  after(async () => {
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('sends attempts to one receiver over one kept-alive connection', async () => {
    const r = await receiver();
    const post = createWebhookPoster({ allowPrivate: true, timeoutMs: 5000, keepAliveIdleMs: 30_000 });
    for (let i = 0; i < 5; i++) expect((await post(r.url, headers, body)).statusCode).to.equal(200);
    expect(r.connections()).to.equal(1);
  });

  it('closes a connection idle for keepAliveIdleMs; the next attempt opens (and checks) a new one', async () => {
    const r = await receiver();
    const post = createWebhookPoster({ allowPrivate: true, timeoutMs: 5000, keepAliveIdleMs: 100 });
    await post(r.url, headers, body);
    await waitFor(async () => r.closed() === 1, 10_000, () => 'the idle connection was not closed');
    await post(r.url, headers, body);
    expect(r.connections()).to.equal(2);
  });

  it('does not reuse a connection whose answer was cut at the snippet, nor one the receiver says it will close soon', async () => {
    const big = await receiver((res) => res.writeHead(200).end('x'.repeat(64 * 1024)));
    const post = createWebhookPoster({ allowPrivate: true, timeoutMs: 5000, keepAliveIdleMs: 30_000 });
    const first = await post(big.url, headers, body);
    expect(first.snippet).to.have.length(SNIPPET_CHARS);
    await post(big.url, headers, body);
    expect(big.connections()).to.equal(2);

    // Node's server announces `Keep-Alive: timeout=1` here: the agent keeps a socket only while more than a second
    // of that is left, so it opens a new connection rather than race the receiver's close.
    const brief = await receiver();
    brief.server.keepAliveTimeout = 1000;
    await post(brief.url, headers, body);
    await post(brief.url, headers, body);
    expect(brief.connections()).to.equal(2);
  });
});
