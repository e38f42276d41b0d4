/**
 * The operations endpoints: `/healthz` (the process runs), `/readyz` (it can do its job), `/metrics`
 * (Prometheus text), and whatever routes a caller adds (the dashboard).
 *
 * With a token, every path but `/healthz` needs `Authorization: Bearer <token>` or `?token=<token>`; liveness
 * stays open so that an orchestrator can probe it without the secret.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { MagwatchError } from '../errors.js';

/** What `/readyz` reports: a plain flag, or a flag with the state of each dependency. */
export type Readiness =
  | boolean
  | { readonly ready: boolean; readonly checks?: Readonly<Record<string, boolean>> };

/** Handles one request; `url` is parsed against the server's address. */
export type RouteHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
) => void | Promise<void>;

export interface HttpServerOptions {
  /** Listen address. Default `127.0.0.1`. */
  readonly host?: string;
  /** Listen port; 0 picks a free one. */
  readonly port: number;
  /** Bearer token required on every path but `/healthz`. */
  readonly token?: string;
  /** Called on every `/readyz`: e.g. broker connected and model loaded. */
  readonly ready: () => Readiness;
  /** Registry served on `/metrics`. */
  readonly registry: Registry;
  /**
   * Extra routes by exact path, or by prefix when the key ends in `/*` (`/dashboard/*` matches `/dashboard/`
   * and below). They pass the token check first; built-in paths cannot be replaced.
   */
  readonly routes?: Readonly<Record<string, RouteHandler>>;
  /** Receives handler errors, which are answered with 500. */
  readonly onError?: (error: unknown, path: string) => void;
}

export interface HttpServer {
  /** `http://<host>:<port>` as bound. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/**
 * Starts the operations HTTP server.
 * @throws MagwatchError `MW_HTTP_LISTEN` when the address cannot be bound (port in use, no such interface).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const host = options.host ?? '127.0.0.1';
  const tokenDigest = options.token ? digest(options.token) : undefined;
  const routes = Object.entries(options.routes ?? {});

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    handle(request, response, url).catch((error: unknown) => {
      options.onError?.(error, url.pathname);
      if (!response.headersSent) send(response, 500, 'text/plain', 'internal error\n');
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    if (path === '/healthz')
      return builtin(request, response, () => send(response, 200, 'text/plain', 'ok\n'));

    if (tokenDigest && !authorized(request, url, tokenDigest)) {
      response.setHeader('www-authenticate', 'Bearer realm="magwatch"');
      return send(response, 401, 'text/plain', 'unauthorized: send Authorization: Bearer <token>\n');
    }

    if (path === '/readyz') {
      return builtin(request, response, () => {
        const readiness = options.ready();
        const state = typeof readiness === 'boolean' ? { ready: readiness } : readiness;
        send(response, state.ready ? 200 : 503, 'application/json', `${JSON.stringify(state)}\n`);
      });
    }
    if (path === '/metrics') {
      return builtin(request, response, async () => {
        const text = await options.registry.metrics();
        send(response, 200, options.registry.contentType, text);
      });
    }

    const route = routes.find(([key]) =>
      key.endsWith('/*') ? path === key.slice(0, -2) || path.startsWith(key.slice(0, -1)) : path === key,
    );
    if (route) return route[1](request, response, url);
    send(response, 404, 'text/plain', 'not found\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new MagwatchError(
          'MW_HTTP_LISTEN',
          `http server cannot listen on ${host}:${options.port} (${error.code ?? error.message}); set http.port (MAGWATCH_HTTP_PORT) to a free port or http.enabled to false`,
          { cause: error },
        ),
      );
    });
    server.listen(options.port, host, () => resolve());
  });

  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function builtin(
  request: IncomingMessage,
  response: ServerResponse,
  answer: () => void | Promise<void>,
): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return send(response, 405, 'text/plain', 'method not allowed\n');
  }
  await answer();
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

function authorized(request: IncomingMessage, url: URL, expected: Buffer): boolean {
  const header = request.headers.authorization;
  const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  const given = bearer ?? url.searchParams.get('token');
  // Digests have equal length, which timingSafeEqual needs, and hide the token's length.
  return given !== null && given !== undefined && timingSafeEqual(digest(given), expected);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
