import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Registry } from 'prom-client';
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DashboardSnapshot, DashboardUpdate } from '../../src/dashboard/history.js';
import { createDashboard, type Dashboard, type DashboardOptions } from '../../src/dashboard/server.js';
import { type HttpServer, startHttpServer } from '../../src/ops/http.js';
import type { AnomalyEvent, BucketVote, Sample, WindowScore } from '../../src/stream/types.js';
import { anomalyEvent, bundleOf } from './fixture.js';

const bundle = bundleOf({ OBS1: ['S1_OBS1', 'S2_OBS1'], OBS2: ['S3_OBS2'] });

function feeds() {
  return {
    samples$: new Subject<Sample>(),
    scores$: new Subject<WindowScore>(),
    votes$: new Subject<BucketVote>(),
    events$: new Subject<AnomalyEvent>(),
  };
}

const dashboards: Dashboard[] = [];
const servers: HttpServer[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const dashboard of dashboards.splice(0)) dashboard.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function dashboard(options: Partial<DashboardOptions> = {}) {
  const inputs = feeds();
  const created = createDashboard({ bundle, ...inputs, ...options });
  dashboards.push(created);
  return { dashboard: created, ...inputs };
}

async function serve(options: Partial<DashboardOptions> = {}, token?: string) {
  const made = dashboard(options);
  const server = await startHttpServer({
    port: 0,
    ready: () => true,
    registry: new Registry(),
    routes: made.dashboard.routes,
    ...(token ? { token } : {}),
  });
  servers.push(server);
  return { ...made, server };
}

type StreamMessage = { event: string; data: unknown } | { comment: string };

/** Reads server-sent events from a streamed response, one message (or comment) per `next()`. */
async function openStream(url: string) {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const next = async (): Promise<StreamMessage> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith(':')) return { comment: block.slice(1).trim() };
        const fields = Object.fromEntries(
          block
            .split('\n')
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
        );
        if (fields['event'] === undefined) continue;
        return { event: fields['event'], data: JSON.parse(fields['data']!) };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('event stream ended');
      buffer += value;
    }
  };
  const ended = async () => {
    for (;;) if ((await reader.read()).done) return true;
  };
  return { response, next, ended, close: () => controller.abort() };
}

async function until(check: () => boolean) {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
}

const xyz = (x: number, y: number, z: number) => ({ b_x: x, b_y: y, b_z: z });

describe('createDashboard', () => {
  it('sends one update per period, collecting everything pushed during it', async () => {
    vi.useFakeTimers();
    const { dashboard: d, samples$, votes$ } = dashboard({ updateIntervalMs: 250, resolutionMs: 10 });
    const updates: DashboardUpdate[] = [];
    d.updates$.subscribe((update) => updates.push(update));

    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_000, values: xyz(1, 2, 3) });
    vi.advanceTimersByTime(100);
    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_020, values: xyz(4, 5, 6) });
    votes$.next({ group: 'OBS1', start: 1_000, votes: 1, required: 3, anomalous: false });
    vi.advanceTimersByTime(100);
    expect(updates).toHaveLength(0);
    vi.advanceTimersByTime(50);
    expect(updates).toEqual([
      {
        fields: {
          S1_OBS1: [
            [1_000, 1_020],
            [1, 4],
            [2, 5],
            [3, 6],
          ],
        },
        rmse: {},
        votes: { OBS1: [[1_000], [1], [3]] },
        events: [],
      },
    ]);

    vi.advanceTimersByTime(1_000);
    expect(updates).toHaveLength(1);
    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_040, values: xyz(7, 8, 9) });
    vi.advanceTimersByTime(250);
    expect(updates).toHaveLength(2);
    expect(updates[1]!.fields).toEqual({ S1_OBS1: [[1_040], [7], [8], [9]] });
  });

  it('stops listening to the live path once closed', async () => {
    vi.useFakeTimers();
    const { dashboard: d, samples$ } = dashboard();
    d.close();
    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_000, values: xyz(1, 2, 3) });
    expect(d.snapshot().fields).toEqual({});
    expect(samples$.observed).toBe(false);
  });

  it('closes itself when an input completes, after a last update', () => {
    vi.useFakeTimers();
    const { dashboard: d, samples$, events$ } = dashboard();
    const updates: DashboardUpdate[] = [];
    let completed = false;
    d.updates$.subscribe({ next: (update) => updates.push(update), complete: () => (completed = true) });
    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_000, values: xyz(1, 2, 3) });
    events$.complete();
    expect(completed).toBe(true);
    expect(updates.map((u) => Object.keys(u.fields))).toEqual([['S1_OBS1']]);
    expect(samples$.observed).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects options that are not positive numbers', () => {
    expect(() => dashboard({ updateIntervalMs: 0 })).toThrow(
      expect.objectContaining({
        code: 'MW_DASHBOARD_BAD_OPTION',
        message: expect.stringContaining('updateIntervalMs'),
      }),
    );
    expect(() => dashboard({ historyMs: Number.NaN })).toThrow(/historyMs/);
  });
});

describe('dashboard routes over HTTP', () => {
  it('streams the snapshot first, then batches of updates', async () => {
    const {
      server,
      samples$,
      scores$,
      events$,
      dashboard: d,
    } = await serve({ updateIntervalMs: 50, title: 'Site A' });
    samples$.next({ sensor: 'S3_OBS2', timestamp: 5_000, values: xyz(10, 20, 30) });

    const stream = await openStream(`${server.url}/events`);
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const first = await stream.next();
    expect(first).toMatchObject({ event: 'snapshot' });
    const snapshot = (first as { data: DashboardSnapshot }).data;
    expect(snapshot.title).toBe('Site A');
    expect(snapshot.groups.map((g) => g.group)).toEqual(['OBS1', 'OBS2']);
    expect(snapshot.fields['S3_OBS2']).toEqual([[5_000], [10], [20], [30]]);
    await until(() => d.clients === 1);

    for (let t = 6_000; t <= 9_000; t += 1_000) {
      samples$.next({ sensor: 'S3_OBS2', timestamp: t, values: xyz(t, 0, 0) });
    }
    scores$.next({
      channel: 'S3_OBS2__b_x',
      sensor: 'S3_OBS2',
      component: 'b_x',
      group: 'OBS2',
      start: 1_000,
      end: 9_000,
      rmse: 3.5,
      threshold: 1.2,
      anomalous: true,
    });
    events$.next(
      anomalyEvent({
        id: 'OBS2-8000',
        event: 'anomaly.start',
        group: 'OBS2',
        start: '1970-01-01T00:00:08.000Z',
      }),
    );

    const update = await stream.next();
    expect(update).toMatchObject({
      event: 'update',
      data: {
        fields: {
          S3_OBS2: [
            [6_000, 7_000, 8_000, 9_000],
            [6_000, 7_000, 8_000, 9_000],
            [0, 0, 0, 0],
            [0, 0, 0, 0],
          ],
        },
        rmse: { S3_OBS2__b_x: [[9_000], [3.5]] },
        votes: {},
        events: [expect.objectContaining({ id: 'OBS2-8000', open: true, start: 8_000 })],
      },
    });
    stream.close();
  });

  it('gives a page that connects late no point twice', async () => {
    const { server, samples$, dashboard: d } = await serve({ updateIntervalMs: 40 });
    const early = await openStream(`${server.url}/events`);
    await early.next();
    await until(() => d.clients === 1);
    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_000, values: xyz(1, 2, 3) });
    const late = await openStream(`${server.url}/events`);
    const snapshot = (await late.next()) as { data: DashboardSnapshot };
    expect(snapshot.data.fields['S1_OBS1']![0]).toEqual([1_000]);
    expect(await early.next()).toMatchObject({
      event: 'update',
      data: { fields: { S1_OBS1: [[1_000], [1], [2], [3]] } },
    });

    samples$.next({ sensor: 'S1_OBS1', timestamp: 2_000, values: xyz(4, 5, 6) });
    expect(await late.next()).toMatchObject({
      event: 'update',
      data: { fields: { S1_OBS1: [[2_000], [4], [5], [6]] } },
    });
    early.close();
    late.close();
  });

  it('sends heartbeat comments on an idle stream', async () => {
    const { server } = await serve({ heartbeatMs: 30 });
    const stream = await openStream(`${server.url}/events`);
    expect(await stream.next()).toMatchObject({ event: 'snapshot' });
    expect(await stream.next()).toEqual({ comment: 'heartbeat' });
    stream.close();
  });

  it('forgets a client whose connection closes', async () => {
    const { server, dashboard: d } = await serve();
    const stream = await openStream(`${server.url}/events`);
    await stream.next();
    await until(() => d.clients === 1);
    stream.close();
    await until(() => d.clients === 0);
  });

  it('ends the open streams when closed', async () => {
    const { server, dashboard: d } = await serve();
    const stream = await openStream(`${server.url}/events`);
    await stream.next();
    d.close();
    expect(await stream.ended()).toBe(true);
    expect((await fetch(`${server.url}/events`)).status).toBe(503);
  });

  it('answers 503 beyond the most open streams', async () => {
    const { server } = await serve({ maxClients: 1 });
    const stream = await openStream(`${server.url}/events`);
    await stream.next();
    const refused = await fetch(`${server.url}/events`);
    expect(refused.status).toBe(503);
    stream.close();
  });

  it('answers /snapshot with the layout and history as JSON', async () => {
    const { server, votes$ } = await serve();
    votes$.next({ group: 'global', start: 2_000, votes: 4, required: 3, anomalous: true });
    const response = await fetch(`${server.url}/snapshot`);
    expect(response.headers.get('content-type')).toBe('application/json');
    const snapshot = (await response.json()) as DashboardSnapshot;
    expect(snapshot).toMatchObject({
      title: 'magwatch',
      historyMs: 900_000,
      vote: { minChannels: 3 },
      votes: { global: [[2_000], [4], [3]] },
    });
  });

  it('serves the page, its script and uPlot from the installed package', async () => {
    const { server } = await serve();
    const page = await fetch(`${server.url}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('<script src="dashboard.js"></script>');
    expect(html).not.toContain('{{query}}');

    const script = await fetch(`${server.url}/dashboard.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toBe(readFileSync('src/dashboard/static/dashboard.js', 'utf8'));

    const require = createRequire(import.meta.url);
    const uplot = await fetch(`${server.url}/uplot.min.js`);
    expect(await uplot.text()).toBe(readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'));
    const css = await fetch(`${server.url}/uplot.min.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${server.url}/events`, { method: 'POST' })).status).toBe(405);
  });

  it('passes the token in the address on to the page files', async () => {
    const { server } = await serve({}, 's3cret/+');
    expect((await fetch(`${server.url}/`)).status).toBe(401);
    const html = await (await fetch(`${server.url}/?token=s3cret%2F%2B`)).text();
    expect(html).toContain('<script src="dashboard.js?token=s3cret%2F%2B"></script>');
    expect(html).toContain('href="uplot.min.css?token=s3cret%2F%2B"');
    expect((await fetch(`${server.url}/dashboard.js?token=s3cret%2F%2B`)).status).toBe(200);
    expect((await fetch(`${server.url}/events`)).status).toBe(401);
    const stream = await openStream(`${server.url}/events?token=s3cret%2F%2B`);
    expect(await stream.next()).toMatchObject({ event: 'snapshot' });
    stream.close();
  });
});
