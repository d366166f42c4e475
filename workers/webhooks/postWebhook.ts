import http from 'node:http';
import https from 'node:https';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { METADATA_ADDRESSES } from '../../shared/webhooks/urlPolicy.js';


/** What a receiver answered. Only a short prefix of the body is read: receivers may send anything. */
export interface WebhookResponse {
  statusCode: number;
  retryAfter: string | undefined;
  snippet: string;
}

/** The request never got an HTTP answer: timed out, refused by the SSRF filter, or a network error. */
export class WebhookTransportError extends Error {
  override name = 'WebhookTransportError';
  constructor(
    readonly kind: 'timeout' | 'address_not_allowed' | 'network',
    message: string,
  ) {
    super(message);
  }
}

export const SNIPPET_CHARS = 512;
const SNIPPET_READ_BYTES = 4096;

export type WebhookPoster = (url: string, headers: Record<string, string>, body: string) => Promise<WebhookResponse>;

/**
 * How long a connection to a receiver stays open unused for the next attempt. Short, so it is closed by us before
 * the receiver drops it (Node's servers wait 5 s, gunicorn 2 s) — a request sent just as the receiver closes the
 * connection would fail; a receiver's `Keep-Alive: timeout=N` shortens it further (Node's agent honours it).
 */
export const KEEP_ALIVE_IDLE_MS = 1000;

/**
 * POSTs webhooks through agents that check the address each connection actually goes to, after DNS
 * (request-filtering-agent): the delivery-time half of the SSRF guard, which also catches DNS rebinding. The check
 * runs whenever a connection is opened; connections are kept alive between attempts (per host and port, idle at
 * most KEEP_ALIVE_IDLE_MS), and a reused one still goes to the address checked when it was opened, so a DNS
 * answer that changes meanwhile is met, and refused, by the next new connection. Redirects are not followed (a 3xx
 * is a failure). `timeoutMs` bounds the whole attempt: connect, response and the read of the snippet.
 */
export function createWebhookPoster(opts: { allowPrivate: boolean; timeoutMs: number; keepAliveIdleMs?: number }): WebhookPoster {
  const options = {
    allowPrivateIPAddress: opts.allowPrivate,
    allowMetaIPAddress: false,
    denyIPAddressList: METADATA_ADDRESSES,
    keepAlive: true,
    // On a free socket this is its idle timeout (the agent then closes it); an attempt's own timer bounds the rest.
    timeout: opts.keepAliveIdleMs ?? KEEP_ALIVE_IDLE_MS,
    // The most recently used connection first: the least likely to have been closed by the receiver.
    scheduling: 'lifo' as const,
  };
  const agents = { 'http:': new RequestFilteringHttpAgent(options), 'https:': new RequestFilteringHttpsAgent(options) };

  return (url, headers, body) =>
    new Promise<WebhookResponse>((resolve, reject) => {
      const target = new URL(url);
      const protocol = target.protocol as 'http:' | 'https:';
      if (!(protocol in agents)) return reject(new WebhookTransportError('network', `unsupported protocol ${target.protocol}`));
      let settled = false;
      const finish = (err: WebhookTransportError | null, res?: WebhookResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(res!);
      };
      const request = (protocol === 'https:' ? https : http).request(target, {
        method: 'POST',
        agent: agents[protocol],
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      });
      const timer = setTimeout(() => {
        finish(new WebhookTransportError('timeout', `timeout after ${opts.timeoutMs} ms`));
        request.destroy();
      }, opts.timeoutMs);
      request.on('error', (err) => {
        const blocked = /is not allowed/.test(err.message);
        finish(new WebhookTransportError(blocked ? 'address_not_allowed' : 'network', blocked ? `address not allowed: ${err.message}` : err.message));
      });
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        // A body read to its end leaves the connection reusable; one cut at the snippet's length cannot be.
        const done = (complete: boolean) => {
          if (!complete) res.destroy();
          finish(null, {
            statusCode: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            snippet: Buffer.concat(chunks).toString('utf8').slice(0, SNIPPET_CHARS),
          });
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          bytes += chunk.length;
          if (bytes >= SNIPPET_READ_BYTES) done(false);
        });
        res.on('end', () => done(true));
        res.on('error', () => done(false));
      });
      request.end(body);
    });
}
