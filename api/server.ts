import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Config } from '../shared/config.js';

type Handler = (req: any, res: any) => void;

export interface ApiServer {
  listen(port: number, onListening: () => void): void;
  /**
   * Stops accepting (new connections are refused, never reset), lets requests in flight and those arriving on open
   * keep-alive connections within 1 s finish, and resolves when every connection has closed (forced after graceMs).
   */
  close(graceMs: number): Promise<void>;
  protocol: 'https' | 'http';
}

/**
 * The API's listener.
 *
 * - With TLS_CERT_FILE / TLS_KEY_FILE: HTTPS, HTTP/2 negotiated by ALPN, HTTP/1.1 for clients that do not offer h2.
 * - Without: plain HTTP on one port for both HTTP/1.1 and h2c (HTTP/2 with prior knowledge, as load balancers such
 *   as Envoy or a GCP backend speak it). The first bytes of a connection tell them apart: an HTTP/2 client starts
 *   with the preface `PRI * HTTP/2.0`, which no HTTP/1 request line does.
 */
export function createApiServer(config: Pick<Config, 'tlsCertFile' | 'tlsKeyFile'>, handler: Handler): ApiServer {
  const drain = connectionDrainer();

  if (config.tlsCertFile && config.tlsKeyFile) {
    const server = http2.createSecureServer(
      { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile), allowHTTP1: true },
      handler,
    );
    drain.watch(server);
    server.on('secureConnection', (socket: import('node:tls').TLSSocket) => drain.track(socket, socket.alpnProtocol === 'h2'));
    return {
      protocol: 'https',
      listen: (port, cb) => void server.listen(port, cb),
      close: async (graceMs) => {
        server.close();
        await drain.close(graceMs);
      },
    };
  }

  const h1 = http.createServer(handler);
  h1.keepAliveTimeout = 65_000; // longer than common load balancer idle timeouts, so they close first
  const h2c = http2.createServer({}, handler);
  drain.watch(h1);
  drain.watch(h2c);
  const front = net.createServer((socket) => {
    drain.track(socket, false);
    socket.once('readable', () => {
      const head: Buffer | null = socket.read();
      if (!head) return socket.destroy();
      socket.unshift(head);
      const isH2 = head.toString('latin1', 0, 3) === 'PRI';
      if (isH2) drain.markHttp2(socket);
      (isH2 ? h2c : h1).emit('connection', socket);
    });
  });
  return {
    protocol: 'http',
    listen: (port, cb) => void front.listen(port, cb),
    close: async (graceMs) => {
      front.close();
      await drain.close(graceMs);
    },
  };
}

/** Requests in flight on an HTTP/1 socket, and a response's socket (which Node detaches when the response ends). */
const kInFlight = Symbol('requestsInFlight');
const kSocket = Symbol('socket');
type TrackedSocket = net.Socket & { [kInFlight]?: number };
type TrackedResponse = http.ServerResponse & { [kSocket]?: TrackedSocket };

/** How long keep-alive connections may still bring a (last) request after SIGTERM. */
const IDLE_CONNECTION_DRAIN_MS = 1000;

/**
 * Graceful close for connections handed around by hand (the h1/h2c split above means Node's own
 * closeIdleConnections cannot see them): idle HTTP/1 keep-alive sockets are closed at once, busy ones right after
 * their response; HTTP/2 sessions get GOAWAY and finish their streams. Whatever is left after graceMs is destroyed.
 */
function connectionDrainer() {
  const sockets = new Set<net.Socket>();
  const h2Sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  let closing = false;
  /**
   * A response ends: one fewer request in flight on its socket. One function for all responses, and the count kept
   * on the socket, not in a Map with a closure per request: with that per-request bookkeeping V8 ran a full
   * collection about every second under /health load (README "Performance", eighth session).
   */
  function onResponseClose(this: TrackedResponse) {
    const socket = this[kSocket]!;
    const n = (socket[kInFlight] ?? 1) - 1;
    socket[kInFlight] = n;
    // Only after an answer that said `Connection: close`: one that promised keep-alive (it started before the
    // drain) may be followed by the client's next request at once, which must be answered, not reset.
    if (n === 0 && closing && String(this.getHeader('connection')).toLowerCase() === 'close') socket.end();
  }
  return {
    /** Every accepted connection, from its first moment, so none is forgotten while its first request is on its way. */
    track(socket: net.Socket, isH2: boolean) {
      sockets.add(socket);
      if (isH2) h2Sockets.add(socket);
      socket.once('close', () => {
        sockets.delete(socket);
        h2Sockets.delete(socket);
      });
    },
    /** HTTP/2 sockets are closed by their session's GOAWAY, never by us while streams run. */
    markHttp2(socket: net.Socket) {
      h2Sockets.add(socket);
    },
    watch(server: http.Server | http2.Http2Server | http2.Http2SecureServer) {
      server.on('session', (session: http2.Http2Session) => {
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
        if (closing) session.close();
      });
      server.on('request', (req: http.IncomingMessage, res: TrackedResponse) => {
        if (req.httpVersionMajor !== 1) return;
        const socket: TrackedSocket = req.socket;
        socket[kInFlight] = (socket[kInFlight] ?? 0) + 1;
        res[kSocket] = socket;
        res.on('close', onResponseClose);
      });
    },
    async close(graceMs: number) {
      closing = true;
      for (const session of sessions) session.close();
      // Keep idle keep-alive connections a moment: a request already on its way over one is answered (with
      // `Connection: close`, set by api/main.ts) instead of meeting a closed socket and a reset.
      await new Promise((r) => setTimeout(r, Math.min(IDLE_CONNECTION_DRAIN_MS, graceMs)));
      for (const socket of sockets) if (!(socket as TrackedSocket)[kInFlight] && !h2Sockets.has(socket)) socket.end();
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const socket of sockets) socket.destroy();
    },
  };
}
