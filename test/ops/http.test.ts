import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type HttpServer, type HttpServerOptions, startHttpServer } from '../../src/ops/http.js';
import { createMetrics } from '../../src/ops/metrics.js';
import type { SinkStats } from '../../src/sinks/points.js';

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: Partial<HttpServerOptions> = {}) {
  const metrics = createMetrics({ processMetrics: false });
  const server = await startHttpServer({
    port: 0,
    ready: () => true,
    registry: metrics.registry,
    ...options,
  });
  servers.push(server);
  return { server, metrics };
}

describe('startHttpServer', () => {
  it('answers /healthz and a 404 elsewhere', async () => {
    const { server } = await serve();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    expect((await fetch(`${server.url}/nothing`)).status).toBe(404);
  });

  it('answers /readyz with 503 until ready, with the checks', async () => {
    let state = { ready: false, checks: { broker: false, model: true } };
    const { server } = await serve({ ready: () => state });
    const before = await fetch(`${server.url}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual(state);
    state = { ready: true, checks: { broker: true, model: true } };
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('serves the metrics in Prometheus text format', async () => {
    const { server, metrics } = await serve();
    metrics.samples.inc(30);
    metrics.invalid.inc({ reason: 'bad_json' });
    metrics.batchSize.observe(12);
    metrics.inferenceSeconds.observe(0.004);
    metrics.queueDepth.set(7);
    metrics.events.inc({ kind: 'anomaly.start' });
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('magwatch_ingest_samples_total 30');
    expect(text).toContain('magwatch_ingest_invalid_total{reason="bad_json"} 1');
    expect(text).toContain('magwatch_inference_batch_size_bucket{le="16"} 1');
    expect(text).toContain('magwatch_inference_duration_seconds_bucket{le="0.005"} 1');
    expect(text).toContain('magwatch_queue_depth 7');
    expect(text).toContain('magwatch_events_total{kind="anomaly.start"} 1');
  });

  it('needs the token everywhere but /healthz, as a header or a query parameter', async () => {
    const { server } = await serve({
      token: 's3cret',
      routes: { '/dashboard/*': (_q, r) => void r.end('dash') },
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    for (const path of ['/readyz', '/metrics', '/dashboard/', '/nothing']) {
      const denied = await fetch(`${server.url}${path}`);
      expect(denied.status, path).toBe(401);
      expect(denied.headers.get('www-authenticate')).toBe('Bearer realm="magwatch"');
      const wrong = await fetch(`${server.url}${path}`, { headers: { authorization: 'Bearer s3cre' } });
      expect(wrong.status, path).toBe(401);
    }
    const header = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer s3cret' } });
    expect(header.status).toBe(200);
    expect((await fetch(`${server.url}/readyz?token=s3cret`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/dashboard/app.js?token=s3cret`)).text()).toBe('dash');
  });

  it('routes added paths, by exact path or prefix, and answers a failing route with 500', async () => {
    const errors: string[] = [];
    const { server } = await serve({
      routes: {
        '/dashboard': (_request, response) => void response.end('root'),
        '/dashboard/*': (_request, response, url) => void response.end(`file ${url.pathname}`),
        '/broken': () => {
          throw new Error('boom');
        },
      },
      onError: (_error, path) => errors.push(path),
    });
    expect(await (await fetch(`${server.url}/dashboard`)).text()).toBe('root');
    expect(await (await fetch(`${server.url}/dashboard/app.js`)).text()).toBe('file /dashboard/app.js');
    expect((await fetch(`${server.url}/dashboardx`)).status).toBe(404);
    expect((await fetch(`${server.url}/broken`)).status).toBe(500);
    expect(errors).toEqual(['/broken']);
  });

  it('refuses methods other than GET and HEAD on its own paths', async () => {
    const { server } = await serve();
    const response = await fetch(`${server.url}/metrics`, { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${server.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
  });

  it('names the port when it cannot listen', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(serve({ port })).rejects.toMatchObject({
        code: 'MW_HTTP_LISTEN',
        message: expect.stringContaining(`127.0.0.1:${port} (EADDRINUSE)`),
      });
    } finally {
      blocker.close();
    }
  });
});

describe('createMetrics', () => {
  it('reads sink counters at each scrape without counting twice', async () => {
    const metrics = createMetrics({ processMetrics: false });
    let stats: SinkStats = {
      written: 10,
      retried: 1,
      buffered: 4,
      dropped: { overflow: 2, rejected: 0, invalid: 1, failed: 0, closed: 0 },
    };
    metrics.trackSink({ stats: () => stats });

    const first = await metrics.registry.metrics();
    expect(first).toContain('magwatch_points_written_total 10');
    expect(first).toContain('magwatch_points_dropped_total{reason="overflow"} 2');
    expect(first).toContain('magwatch_points_buffered 4');

    stats = { ...stats, written: 15, buffered: 0, dropped: { ...stats.dropped, overflow: 5 } };
    await metrics.registry.metrics();
    const third = await metrics.registry.metrics();
    expect(third).toContain('magwatch_points_written_total 15');
    expect(third).toContain('magwatch_points_dropped_total{reason="overflow"} 5');
    expect(third).toContain('magwatch_points_dropped_total{reason="invalid"} 1');
    expect(third).toContain('magwatch_points_buffered 0');
  });

  it('keeps separate registries apart and exports process metrics by default', async () => {
    const a = createMetrics();
    const b = createMetrics({ processMetrics: false });
    a.samples.inc(3);
    expect(await a.registry.metrics()).toContain('magwatch_process_cpu_seconds_total');
    expect(await b.registry.metrics()).toContain('magwatch_ingest_samples_total 0');
  });
});
