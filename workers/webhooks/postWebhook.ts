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
 * POSTs webhooks through agents that check the address each connection actually goes to, after DNS
 * (request-filtering-agent): the delivery-time half of the SSRF guard, which also catches DNS rebinding. No
 * keep-alive, so every attempt resolves and is checked afresh; redirects are not followed (a 3xx is a failure).
 * `timeoutMs` bounds the whole attempt: connect, response and the read of the snippet.
 */
export function createWebhookPoster(opts: { allowPrivate: boolean; timeoutMs: number }): WebhookPoster {
  const filter = {
    allowPrivateIPAddress: opts.allowPrivate,
    allowMetaIPAddress: false,
    denyIPAddressList: METADATA_ADDRESSES,
  };
  const agents = { 'http:': new RequestFilteringHttpAgent(filter), 'https:': new RequestFilteringHttpsAgent(filter) };

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
        const done = () => {
          res.destroy();
          finish(null, {
            statusCode: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            snippet: Buffer.concat(chunks).toString('utf8').slice(0, SNIPPET_CHARS),
          });
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          bytes += chunk.length;
          if (bytes >= SNIPPET_READ_BYTES) done();
        });
        res.on('end', done);
        res.on('error', done);
      });
      request.end(body);
    });
}
