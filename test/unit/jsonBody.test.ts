import { expect } from 'chai';
import { request, type Server } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import Koa from 'koa';
import { ApiError } from '../../shared/errors.js';
import { jsonBody } from '../../api/middleware/jsonBody.js';

/**
 * The JSON body reader over real HTTP: a body of a stated length is read directly, a chunked or compressed one by
 * the general parser, and both must answer every body alike.
 */
describe('JSON bodies: read directly or by the general parser, answered alike', () => {
  let server: Server;
  let port: number;
  before(async () => {
    const app = new Koa();
    app.silent = true; // the aborted request's error is expected
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        ctx.status = err.status;
        ctx.body = { code: err.code };
      }
    });
    app.use(jsonBody());
    app.use((ctx) => {
      ctx.body = { body: ctx.request.body ?? null };
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  type Framing = 'length' | 'chunked' | 'gzip';
  function send(body: Buffer | string, framing: Framing, contentType = 'application/json', method = 'POST'): Promise<{ status: number; body: { body?: unknown; code?: string } }> {
    const raw = Buffer.from(body);
    const payload = framing === 'gzip' ? gzipSync(raw) : raw;
    const headers: Record<string, string> = { 'content-type': contentType };
    if (framing === 'gzip') headers['content-encoding'] = 'gzip';
    if (framing !== 'chunked') headers['content-length'] = String(payload.length);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path: '/', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
      });
      req.on('error', reject);
      if (framing === 'chunked') {
        // Two chunks, split inside a multi-byte character when there is one.
        const cut = Math.max(1, payload.length - 2);
        req.write(payload.subarray(0, cut));
        req.end(payload.subarray(cut));
      } else req.end(payload);
    });
  }
  const framings: Framing[] = ['length', 'chunked', 'gzip'];

  it('parses objects and arrays, multi-byte text and a leading byte order mark the same way', async () => {
    for (const framing of framings) {
      expect((await send('{"amount":"0.05","metadata":{"note":"Grüße 🦄"}}', framing)).body, framing).to.deep.equal({ body: { amount: '0.05', metadata: { note: 'Grüße 🦄' } } });
      expect((await send(' [1,2]', framing)).body, framing).to.deep.equal({ body: [1, 2] });
      expect((await send('\uFEFF{"a":1}', framing)).body, framing).to.deep.equal({ body: { a: 1 } });
      expect((await send('{"a":1}', framing, 'application/json; charset=utf-8')).body, framing).to.deep.equal({ body: { a: 1 } });
    }
  });

  it('takes an empty body as {}', async () => {
    expect((await send('', 'length')).body).to.deep.equal({ body: {} });
    expect((await send('', 'chunked')).body).to.deep.equal({ body: {} });
  });

  it('refuses malformed JSON, bare values and __proto__ keys with 400 invalid_json', async () => {
    for (const framing of framings) {
      for (const bad of ['{"amount":', '42', '"str"', 'null', '{"a":1}x', '{"__proto__":{"polluted":true}}', '{"m":{"__proto__":1}}']) {
        expect(await send(bad, framing), `${framing} ${bad}`).to.deep.equal({ status: 400, body: { code: 'invalid_json' } });
      }
    }
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('refuses a body over 64 kB with 413, and one that is not JSON with 415', async () => {
    const big = JSON.stringify({ k: 'v'.repeat(70_000) });
    for (const framing of framings) {
      expect(await send(big, framing), framing).to.deep.equal({ status: 413, body: { code: 'body_too_large' } });
    }
    expect((await send('amount=1', 'length', 'text/plain')).status).to.equal(415);
  });

  it('survives a client that sends less than it announced and goes away, and answers the next request', async () => {
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"amount":');
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    expect((await send('{"a":1}', 'length')).body).to.deep.equal({ body: { a: 1 } });
  });
});
