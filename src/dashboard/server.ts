/**
 * The live dashboard: routes for the operations HTTP server (`src/ops/http.ts`) that serve one page, its
 * script, uPlot from the installed package, a JSON snapshot of the recent history and a server-sent event
 * stream of updates. Nothing is fetched from the network.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type Observable, Subject, type Subscription } from 'rxjs';
import type { Bundle } from '../detector/bundle.js';
import { MagwatchError } from '../errors.js';
import type { RouteHandler } from '../ops/http.js';
import type { AnomalyEvent, BucketVote, Sample, WindowScore } from '../stream/types.js';
import { DashboardHistory, type DashboardSnapshot, type DashboardUpdate } from './history.js';

export interface DashboardOptions {
  /** Channels, their sensors, components, groups and thresholds, and the vote rule. */
  readonly bundle: Pick<Bundle, 'manifest' | 'thresholds'>;
  /** Raw samples as ingest decoded them; downsampled to one per sensor per `resolutionMs`. */
  readonly samples$: Observable<Sample>;
  readonly scores$: Observable<WindowScore>;
  readonly votes$: Observable<BucketVote>;
  readonly events$: Observable<AnomalyEvent>;
  /** Page title. Default `magwatch`. */
  readonly title?: string;
  /** History kept and shown, ms of data time. Default 900,000 (15 min). */
  readonly historyMs?: number;
  /** Points kept per series at most. Default 3,600. */
  readonly maxPointsPerSeries?: number;
  /** Field values kept per sensor at most once per this many ms. Default 1,000. */
  readonly resolutionMs?: number;
  /** Period (ms, clock) of the update messages; updates in between are sent together. Default 250. */
  readonly updateIntervalMs?: number;
  /** Period (ms, clock) of the keep-alive comments on idle event streams. Default 15,000. */
  readonly heartbeatMs?: number;
  /** Events kept at most. Default 200. */
  readonly maxEvents?: number;
  /** Open event streams at most; more are answered 503. Default 32. */
  readonly maxClients?: number;
}

export const DASHBOARD_DEFAULTS = {
  title: 'magwatch',
  historyMs: 900_000,
  maxPointsPerSeries: 3_600,
  resolutionMs: 1_000,
  updateIntervalMs: 250,
  heartbeatMs: 15_000,
  maxEvents: 200,
  maxClients: 32,
} as const;

export interface Dashboard {
  /** Routes for `startHttpServer({ routes })`: `/`, `/dashboard.js`, `/uplot.min.js`, `/uplot.min.css`, `/events`, `/snapshot`. */
  readonly routes: Readonly<Record<string, RouteHandler>>;
  /** The update batches as sent to the event streams, one per update period with news. */
  readonly updates$: Observable<DashboardUpdate>;
  /** The layout and whole history, as `/snapshot` answers and each event stream starts with. */
  snapshot(): DashboardSnapshot;
  /** Open event streams. */
  readonly clients: number;
  /**
   * Stops listening to the live path and ends the open event streams. Happens by itself when any input stream
   * completes (ingest or detector closed); the timers never keep the process alive.
   */
  close(): void;
}

/** Bytes queued for one event stream beyond which the client is too slow and is dropped. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** The page files, beside this module: in the sources, and in `dist/`, where the build copies them. */
const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

interface Asset {
  readonly contentType: string;
  readonly body: Buffer;
}

/**
 * Builds the dashboard over the live path's streams. The streams are subscribed at once; the routes can be
 * handed to the HTTP server later.
 * @throws MagwatchError `MW_DASHBOARD_ASSET` when the page or uPlot files are missing from the installation.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const settings = { ...DASHBOARD_DEFAULTS, ...definedOnly(options) };
  checkOptions(settings);
  const history = new DashboardHistory(options.bundle, settings);
  const vote = options.bundle.manifest.vote;
  const snapshot = () => history.snapshot(settings.title, Date.now(), vote);

  const assets = loadAssets();
  const clients = new Set<ServerResponse>();
  const updates = new Subject<DashboardUpdate>();
  let closed = false;

  const send = (text: string) => {
    for (const response of clients) {
      response.write(text);
      if (response.writableLength > MAX_QUEUED_BYTES) {
        clients.delete(response);
        response.destroy();
      }
    }
  };

  const flush = () => {
    const update = history.takeUpdate();
    if (!update) return;
    updates.next(update);
    send(message('update', update));
  };
  // Plain timers, unreferenced: a dashboard nobody closed must not hold the process open at shutdown.
  const timers = [
    setInterval(flush, settings.updateIntervalMs),
    setInterval(() => send(': heartbeat\n\n'), settings.heartbeatMs),
  ];
  for (const timer of timers) timer.unref();

  const subscriptions: Subscription[] = [];
  const listen = <T>(source: Observable<T>, next: (value: T) => void) => {
    // The live path reports its own errors; here an ended or failed input only means nothing more will come.
    const subscription = source.subscribe({ next, complete: () => close(), error: () => close() });
    if (closed) subscription.unsubscribe();
    else subscriptions.push(subscription);
  };
  listen(options.samples$, (sample) => history.addSample(sample));
  listen(options.scores$, (score) => history.addScore(score));
  listen(options.votes$, (bucket) => history.addVote(bucket));
  listen(options.events$, (event) => history.addEvent(event));

  function close(): void {
    if (closed) return;
    closed = true;
    for (const timer of timers) clearInterval(timer);
    // What came in since the last period still reaches the open pages before their streams end.
    flush();
    for (const subscription of subscriptions) subscription.unsubscribe();
    for (const response of clients) response.end();
    clients.clear();
    updates.complete();
  }

  const stream: RouteHandler = (request, response) => {
    if (!allowGet(request, response)) return;
    if (closed || clients.size >= settings.maxClients) {
      response.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' });
      response.end('dashboard: too many open event streams\n');
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold the stream back in their buffers.
      'x-accel-buffering': 'no',
    });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    // The snapshot comes first on the stream itself, so no update falls between it and the first update; the
    // pending update goes out to the other pages first, so that the new one does not get its points twice.
    flush();
    response.write(`retry: 3000\n\n${message('snapshot', snapshot())}`);
    clients.add(response);
    const remove = () => clients.delete(response);
    request.on('close', remove);
    response.on('error', remove);
  };

  const routes: Record<string, RouteHandler> = {
    '/': (request, response, url) => {
      // With a token in the address, the page's own files need it too: a browser sends no bearer header.
      const token = url.searchParams.get('token');
      const query = token === null ? '' : `?token=${encodeURIComponent(token)}`;
      const page = Buffer.from(assets.page.body.toString('utf8').replaceAll('{{query}}', query));
      serveAsset({ contentType: assets.page.contentType, body: page })(request, response, url);
    },
    '/dashboard.js': serveAsset(assets.script),
    '/uplot.min.js': serveAsset(assets.uplotScript),
    '/uplot.min.css': serveAsset(assets.uplotStyle),
    '/snapshot': (request, response) => {
      if (!allowGet(request, response)) return;
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : JSON.stringify(snapshot()));
    },
    '/events': stream,
  };

  return {
    routes,
    updates$: updates.asObservable(),
    snapshot,
    get clients() {
      return clients.size;
    },
    close,
  };
}

/** One server-sent event; JSON text has no line breaks, so it fits one `data:` line. */
function message(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function allowGet(request: IncomingMessage, response: ServerResponse): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return true;
  response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
  response.end('method not allowed\n');
  return false;
}

function serveAsset(asset: Asset): RouteHandler {
  return (request, response) => {
    if (!allowGet(request, response)) return;
    response.writeHead(200, {
      'content-type': asset.contentType,
      'content-length': asset.body.length,
      'cache-control': 'no-cache',
    });
    response.end(request.method === 'HEAD' ? undefined : asset.body);
  };
}

function loadAssets() {
  const require = createRequire(import.meta.url);
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new MagwatchError(
        'MW_DASHBOARD_ASSET',
        `dashboard: cannot read ${what} at ${file} (${(error as NodeJS.ErrnoException).code ?? error}); reinstall magwatch or set dashboard.enabled to false`,
        { cause: error },
      );
    }
  };
  const resolveUplot = (file: string) => {
    try {
      return require.resolve(`uplot/dist/${file}`);
    } catch (error) {
      throw new MagwatchError(
        'MW_DASHBOARD_ASSET',
        `dashboard: package 'uplot' (${file}) is not installed; run npm install or set dashboard.enabled to false`,
        { cause: error },
      );
    }
  };
  return {
    page: { contentType: 'text/html; charset=utf-8', body: read(`${STATIC_DIR}index.html`, 'the page') },
    script: {
      contentType: 'text/javascript; charset=utf-8',
      body: read(`${STATIC_DIR}dashboard.js`, 'the page script'),
    },
    uplotScript: {
      contentType: 'text/javascript; charset=utf-8',
      body: read(resolveUplot('uPlot.iife.min.js'), 'uPlot'),
    },
    uplotStyle: {
      contentType: 'text/css; charset=utf-8',
      body: read(resolveUplot('uPlot.min.css'), 'uPlot'),
    },
  };
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function checkOptions(settings: Readonly<Record<string, unknown>>): void {
  for (const key of [
    'historyMs',
    'maxPointsPerSeries',
    'resolutionMs',
    'updateIntervalMs',
    'heartbeatMs',
    'maxEvents',
    'maxClients',
  ] as const) {
    const value = settings[key];
    if (typeof value !== 'number' || !(value > 0)) {
      throw new MagwatchError(
        'MW_DASHBOARD_BAD_OPTION',
        `dashboard option '${key}' must be a positive number, got ${value}; fix the caller's options`,
      );
    }
  }
}
