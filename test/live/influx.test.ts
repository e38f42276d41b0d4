/**
 * The InfluxDB outputs of the live service against a real InfluxDB 1.x (DESIGN section 4, Outputs): after
 * replaying examples/anomalies.csv, InfluxQL finds one `magwatch_rmse` point per scored window, one
 * `magwatch_votes` point per final bucket of each group and of the global vote, and one `magwatch_events` point
 * per event (its `anomaly.end` replaces its `anomaly.start`), each with the tags and fields of the contract.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveService } from '../../src/service.js';
import type { AnomalyEvent, BucketVote, WindowScore } from '../../src/stream/types.js';
import { type Influxd, startInfluxd } from '../helpers/influxd.js';
import { ANOMALIES_CSV, collect, liveConfig, memoryLogger, replayFile, waitFor } from '../helpers/live.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const DATABASE = 'magwatch';

let broker: Mosquitto;
let influxd: Influxd;
let scores: WindowScore[];
let votes: BucketVote[];
let events: AnomalyEvent[];

beforeAll(async () => {
  [broker, influxd] = await Promise.all([startMosquitto(), startInfluxd()]);
  const { logger, lines } = memoryLogger();
  const config = liveConfig({
    mqttUrl: broker.url,
    pointsFile: '/nonexistent/unused.lp',
    influxUrl: `${influxd.url}/${DATABASE}`,
  });
  const service = await startLiveService(config, logger);
  scores = collect(service.detector.scores$);
  votes = collect(service.detector.votes$);
  events = collect(service.detector.events$);
  try {
    await replayFile(ANOMALIES_CSV, broker.url);
    await waitFor(
      () => scores.length >= 144,
      '144 window scores',
      45_000,
      () => `${JSON.stringify(service.detector.stats())}; log: ${lines().join('\n')}`,
    );
  } finally {
    // Flushes the InfluxDB buffer before it resolves.
    await service.stop();
  }
  expect(lines().filter((line) => /dropped|failed/.test(line))).toEqual([]);
}, 90_000);

afterAll(async () => {
  await broker?.stop();
  await influxd?.stop();
});

describe('InfluxDB points of the replayed example', () => {
  it('holds one magwatch_rmse point per scored window, with the channel tags and the score fields', async () => {
    const counts = await query('SELECT count(rmse) FROM magwatch_rmse GROUP BY channel');
    const perChannel = Object.fromEntries(counts.map((s) => [s.tags!['channel'], s.values[0]![1]]));
    expect(Object.keys(perChannel)).toHaveLength(9);
    expect(Object.values(perChannel).every((count) => count === 16)).toBe(true);

    const [series] = await query('SELECT * FROM magwatch_rmse');
    const rows = records(series!);
    expect(rows).toHaveLength(scores.length);
    const byKey = new Map(rows.map((row) => [`${row['channel']}@${row['time']}`, row]));
    for (const score of scores) {
      const row = byKey.get(`${score.channel}@${score.end}`);
      expect(row, `point of ${score.channel} at ${score.end}`).toBeDefined();
      expect(row).toMatchObject({
        sensor: score.sensor,
        component: score.component,
        group: score.group,
        anomalous: score.anomalous,
        threshold: score.threshold,
      });
      expect(row!['rmse'] as number).toBeCloseTo(score.rmse, 9);
    }
    expect(rows.some((row) => row['anomalous'] === true)).toBe(true);
  });

  it('holds one magwatch_votes point per final bucket of each group and of the global vote', async () => {
    const series = await query('SELECT votes, required, anomalous FROM magwatch_votes GROUP BY "group"');
    const byGroup = new Map(series.map((s) => [s.tags!['group']!, records(s)]));
    expect([...byGroup.keys()].sort()).toEqual(['OBS1', 'OBS2', 'global']);
    for (const [group, rows] of byGroup) {
      const expected = votes.filter((v) => v.group === group);
      expect(rows, group).toHaveLength(expected.length);
      expect(rows.map((row) => [row['time'], row['votes'], row['required'], row['anomalous']])).toEqual(
        expected.map((v) => [v.start, v.votes, v.required, v.anomalous]),
      );
    }
    expect(byGroup.get('global')).toHaveLength(1024);
  });

  it('holds one magwatch_events point per event, its end replacing its start, at the event start', async () => {
    expect(events.length).toBeGreaterThan(2);
    // The contract of eventPoint: an `anomaly.end` has the time and tags of its `anomaly.start` and replaces it.
    const latest = new Map<string, AnomalyEvent>();
    for (const event of events) latest.set(event.id, event);
    const [series] = await query('SELECT * FROM magwatch_events');
    const rows = records(series!);
    const found = rows
      .map((row) => [
        row['id'],
        row['group'],
        row['sensor'] ?? null,
        row['event'],
        row['time'],
        row['end'] ?? null,
      ])
      .sort(byId);
    const expected = [...latest.values()]
      .map((e) => [
        e.id,
        e.group,
        e.sensor ?? null,
        e.event,
        Date.parse(e.start),
        e.end ? Date.parse(e.end) : null,
      ])
      .sort(byId);
    expect(found).toEqual(expected);
    expect(rows.some((row) => row['event'] === 'anomaly.end')).toBe(true);
    expect(rows.some((row) => row['event'] === 'sensor.anomaly')).toBe(true);
  });
});

interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

function byId(a: unknown[], b: unknown[]): number {
  return String(a[0]).localeCompare(String(b[0]));
}

/** Runs one InfluxQL query over HTTP, times in epoch ms, and returns its series (none: an empty array). */
async function query(q: string): Promise<Series[]> {
  const url = `${influxd.url}/query?${new URLSearchParams({ db: DATABASE, q, epoch: 'ms' })}`;
  const response = await fetch(url);
  const body = (await response.json()) as { results: Array<{ series?: Series[]; error?: string }> };
  const result = body.results[0]!;
  if (result.error) throw new Error(`${q}: ${result.error}`);
  return result.series ?? [];
}

/** A series' rows as records keyed by column, with its group-by tags merged in. */
function records(series: Series): Array<Record<string, unknown>> {
  return series.values.map((values) => ({
    ...series.tags,
    ...Object.fromEntries(series.columns.map((column, i) => [column, values[i]])),
  }));
}
