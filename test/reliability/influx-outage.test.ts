/**
 * The live service writing to a real influxd that goes away: points are buffered up to the bound and written
 * after recovery with none lost; with a small bound the oldest are dropped, counted in /metrics and logged once.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { BucketVote } from '../../src/stream/types.js';
import { type Influxd, startInfluxd } from '../helpers/influxd.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import {
  connectClient,
  EXAMPLE_CHANNELS,
  exampleMessages,
  influxQuery,
  metricValue,
  publishAll,
  type RunningService,
  startService,
  waitFor,
} from './helpers.js';

const DATABASE = 'magwatch';

describe('live service while InfluxDB goes away', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  interface Setup {
    influxd: Influxd;
    running: RunningService;
    votes: BucketVote[];
    publisher: MqttClient;
  }

  async function setup(influx: object): Promise<Setup> {
    const mosquitto = await startMosquitto();
    cleanups.push(() => mosquitto.stop());
    const influxd = await startInfluxd();
    cleanups.push(() => influxd.stop());
    const running = await startService({
      mqtt: { url: mosquitto.url },
      influx: { url: `${influxd.url}/${DATABASE}`, flushIntervalMs: 200, ...influx },
    });
    cleanups.push(() => running.stop());
    const votes: BucketVote[] = [];
    running.service.detector.votes$.subscribe((vote) => votes.push(vote));
    const publisher = await connectClient(mosquitto.url);
    cleanups.push(() => publisher.endAsync(true));
    return { influxd, running, votes, publisher };
  }

  async function metrics(running: RunningService): Promise<string> {
    const response = await fetch(`${running.service.http!.url}/metrics`);
    return response.text();
  }

  async function count(influxd: Influxd, measurement: string, field: string): Promise<number> {
    const rows = await influxQuery(influxd.url, DATABASE, `SELECT count("${field}") FROM "${measurement}"`);
    return Number(rows[0]?.['count'] ?? 0);
  }

  it('buffers the points of an outage and writes every one after recovery', async () => {
    const { influxd, running, votes, publisher } = await setup({ batchSize: 50 });
    const { detector } = running.service;
    const messages = await exampleMessages();
    const half = messages.length / 2;

    await publishAll(publisher, messages.slice(0, half));
    await waitFor(
      async () => metricValue(await metrics(running), 'magwatch_points_written_total') > 0,
      'the first points in InfluxDB',
    );
    await influxd.halt();
    await publishAll(publisher, messages.slice(half));
    const windows = Math.floor(messages.length / 3 / 64) * EXAMPLE_CHANNELS;
    await waitFor(() => detector.stats().windowsScored === windows, 'every window to be scored', {
      detail: () => detector.stats(),
    });
    await waitFor(
      () => running.log.lines().some((l) => l['msg'] === 'influxdb unavailable; buffering points'),
      'the writer to notice the outage',
    );
    const buffered = metricValue(await metrics(running), 'magwatch_points_buffered');
    expect(buffered).toBeGreaterThan(windows / 2);

    await influxd.resume();
    const resumedAt = Date.now();
    await waitFor(
      () => running.log.lines().some((l) => l['msg'] === 'influxdb recovered'),
      'the writer to recover',
      { timeoutMs: 45_000 },
    );
    await waitFor(
      async () => metricValue(await metrics(running), 'magwatch_points_buffered') === 0,
      'the buffer to drain',
    );
    const recoverMs = Date.now() - resumedAt;
    await running.stop();

    const stopped = running.log.lines().find((l) => l['msg'] === 'magwatch stopped') as {
      points: { written: number; dropped: Record<string, number> };
      windowsScored: number;
      votes: number;
    };
    expect(stopped.points.dropped).toEqual({ overflow: 0, rejected: 0, invalid: 0, failed: 0, closed: 0 });
    expect(await count(influxd, 'magwatch_rmse', 'rmse')).toBe(stopped.windowsScored);
    expect(await count(influxd, 'magwatch_votes', 'votes')).toBe(votes.length);
    expect(stopped.windowsScored).toBe(windows);
    console.info(
      `influx outage: ${buffered} points buffered, 0 lost, buffer drained ${recoverMs} ms after InfluxDB was back`,
    );
  });

  it('drops the oldest points beyond a small bound, counts them in /metrics and logs the overflow once', async () => {
    const bound = 20;
    const { influxd, running, votes, publisher } = await setup({ batchSize: bound, maxBufferPoints: bound });
    const { detector } = running.service;
    await influxd.halt();
    const messages = await exampleMessages();
    await publishAll(publisher, messages);
    const windows = Math.floor(messages.length / 3 / 64) * EXAMPLE_CHANNELS;
    await waitFor(() => detector.stats().windowsScored === windows, 'every window to be scored');

    const during = await metrics(running);
    const overflow = metricValue(during, 'magwatch_points_dropped_total', 'reason="overflow"');
    expect(overflow).toBeGreaterThan(windows);
    expect(metricValue(during, 'magwatch_points_buffered')).toBeLessThanOrEqual(2 * bound);
    const overflowLines = () =>
      running.log.lines().filter((l) => l['msg'] === 'influxdb buffer full; dropping oldest points');
    expect(overflowLines()).toHaveLength(1);

    await influxd.resume();
    await waitFor(
      () => running.log.lines().some((l) => l['msg'] === 'influxdb recovered'),
      'the writer to recover',
      { timeoutMs: 45_000 },
    );
    await running.stop();
    expect(overflowLines()).toHaveLength(1);
    const stopped = running.log.lines().find((l) => l['msg'] === 'magwatch stopped') as {
      points: { written: number; dropped: { overflow: number } };
      windowsScored: number;
    };
    const stored =
      (await count(influxd, 'magwatch_rmse', 'rmse')) +
      (await count(influxd, 'magwatch_votes', 'votes')) +
      (await count(influxd, 'magwatch_events', 'id'));
    expect(stored).toBe(stopped.points.written);
    expect(stopped.points.dropped.overflow ?? 0).toBeGreaterThanOrEqual(overflow);
    // Every point produced is either stored or counted as an overflow drop.
    const produced = stopped.windowsScored + votes.length + running.events.length;
    expect(stopped.points.written + (stopped.points.dropped.overflow ?? 0)).toBe(produced);
    // Oldest first: the votes that survived are the latest ones.
    const storedVotes = await influxQuery(influxd.url, DATABASE, 'SELECT "votes" FROM "magwatch_votes"');
    const earliestStored = Math.min(...storedVotes.map((row) => Number(row['time'])));
    expect(earliestStored).toBeGreaterThan(Math.min(...votes.map((v) => v.start)));
    console.info(
      `influx outage, bound ${bound}: ${stopped.points.dropped.overflow} of ${produced} points dropped oldest-first and counted, 1 log line`,
    );
  });
});
