import { Registry } from 'prom-client';
import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DashboardSnapshot } from '../../src/dashboard/history.js';
import { dashboardRoutes } from '../../src/dashboard/wire.js';
import { type HttpServer, startHttpServer } from '../../src/ops/http.js';
import type { LiveService } from '../../src/service.js';
import type { AnomalyEvent, BucketVote, Sample, WindowScore } from '../../src/stream/types.js';
import { bundleOf } from './fixture.js';

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function service() {
  const json = bundleOf({ OBS1: ['S1_OBS1'] });
  const detector = {
    scores$: new Subject<WindowScore>(),
    votes$: new Subject<BucketVote>(),
    events$: new Subject<AnomalyEvent>(),
  };
  const samples$ = new Subject<Sample>();
  const live = {
    bundle: { ...json, dir: '/srv/models/site-a', scalers: {}, models: [] },
    detector: detector as unknown as LiveService['detector'],
    samples$,
  };
  return { live, detector, samples$ };
}

describe('dashboardRoutes', () => {
  it('serves the service streams under a title naming the bundle', async () => {
    const { live, detector, samples$ } = service();
    const server = await startHttpServer({
      port: 0,
      ready: () => true,
      registry: new Registry(),
      routes: dashboardRoutes(live),
    });
    servers.push(server);
    samples$.next({ sensor: 'S1_OBS1', timestamp: 1_000, values: { b_x: 1, b_y: 2, b_z: 3 } });
    detector.votes$.next({ group: 'OBS1', start: 1_000, votes: 0, required: 3, anomalous: false });
    const snapshot = (await (await fetch(`${server.url}/snapshot`)).json()) as DashboardSnapshot;
    expect(snapshot.title).toBe('magwatch · site-a');
    expect(snapshot.fields['S1_OBS1']).toEqual([[1_000], [1], [2], [3]]);
    expect(snapshot.votes['OBS1']).toEqual([[1_000], [0], [3]]);
  });

  it('ends the event streams when the detector closes', async () => {
    const { live, detector } = service();
    const server = await startHttpServer({
      port: 0,
      ready: () => true,
      registry: new Registry(),
      routes: dashboardRoutes(live, { title: 'T' }),
    });
    servers.push(server);
    const response = await fetch(`${server.url}/events`);
    const reader = response.body!.getReader();
    await reader.read();
    detector.events$.complete();
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
    expect((await fetch(`${server.url}/events`)).status).toBe(503);
  });
});
