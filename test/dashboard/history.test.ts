import { describe, expect, it } from 'vitest';
import { DashboardHistory, type HistoryOptions } from '../../src/dashboard/history.js';
import { anomalyEvent, bundleOf } from './fixture.js';

const OPTIONS: HistoryOptions = {
  historyMs: 60_000,
  maxPointsPerSeries: 1_000,
  resolutionMs: 1_000,
  maxEvents: 10,
};
const bundle = bundleOf({ OBS1: ['S1_OBS1', 'S2_OBS1'], OBS2: ['S3_OBS2'] });

function history(options: Partial<HistoryOptions> = {}) {
  return new DashboardHistory(bundle, { ...OPTIONS, ...options });
}

const xyz = (x: number | null, y: number | null = 0, z: number | null = 0) => ({ b_x: x, b_y: y, b_z: z });

describe('DashboardHistory', () => {
  it('lays out groups and sensors in name order with their thresholds', () => {
    const layout = history().groups;
    expect(layout.map((g) => [g.group, g.sensors.map((s) => s.sensor)])).toEqual([
      ['OBS1', ['S1_OBS1', 'S2_OBS1']],
      ['OBS2', ['S3_OBS2']],
    ]);
    expect(layout[0]!.sensors[0]!.components).toEqual([
      { component: 'b_x', channel: 'S1_OBS1__b_x', threshold: bundle.thresholds['S1_OBS1__b_x'] },
      { component: 'b_y', channel: 'S1_OBS1__b_y', threshold: bundle.thresholds['S1_OBS1__b_y'] },
      { component: 'b_z', channel: 'S1_OBS1__b_z', threshold: bundle.thresholds['S1_OBS1__b_z'] },
    ]);
  });

  it('keeps the first sample of each sensor per resolution slot', () => {
    const h = history();
    for (const [timestamp, x] of [
      [10_000, 1],
      [10_100, 2],
      [10_900, 3],
      [11_000, 4],
      [11_500, 5],
      [13_200, 6],
    ] as const) {
      h.addSample({ sensor: 'S1_OBS1', timestamp, values: xyz(x) });
    }
    const series = h.snapshot('t', 0, bundle.manifest.vote).fields['S1_OBS1']!;
    expect(series[0]).toEqual([10_000, 11_000, 13_200]);
    expect(series[1]).toEqual([1, 4, 6]);
  });

  it('keeps missing components as null and skips samples with none of the bundle components', () => {
    const h = history();
    h.addSample({ sensor: 'S1_OBS1', timestamp: 1_000, values: { F: 5 } });
    h.addSample({ sensor: 'S1_OBS1', timestamp: 1_200, values: xyz(7, null, Number.NaN) });
    h.addSample({ sensor: 'unknown', timestamp: 1_300, values: xyz(1) });
    const fields = h.snapshot('t', 0, bundle.manifest.vote).fields;
    expect(fields).toEqual({ S1_OBS1: [[1_200], [7], [null], [null]] });
  });

  it('ignores scores of unknown channels and points older than their series', () => {
    const h = history();
    const score = {
      sensor: 'S1_OBS1',
      component: 'b_x',
      group: 'OBS1',
      start: 0,
      threshold: 1,
      anomalous: false,
    };
    h.addScore({ ...score, channel: 'S1_OBS1__b_x', end: 5_000, rmse: 0.5 });
    h.addScore({ ...score, channel: 'S1_OBS1__b_x', end: 4_000, rmse: 0.9 });
    h.addScore({ ...score, channel: 'S9__b_x', end: 6_000, rmse: 0.9 });
    h.addVote({ group: 'OBS1', start: 3_000, votes: 2, required: 3, anomalous: false });
    h.addVote({ group: 'OBS1', start: 3_000, votes: 3, required: 3, anomalous: true });
    const snapshot = h.snapshot('t', 0, bundle.manifest.vote);
    expect(snapshot.rmse).toEqual({ S1_OBS1__b_x: [[5_000], [0.5]] });
    expect(snapshot.votes).toEqual({ OBS1: [[3_000], [2], [3]] });
  });

  it('drops points older than the history before the newest point', () => {
    const h = history({ historyMs: 10_000 });
    for (let t = 0; t <= 30_000; t += 1_000)
      h.addVote({ group: 'global', start: t, votes: 0, required: 3, anomalous: false });
    const times = h.snapshot('t', 0, bundle.manifest.vote).votes['global']![0]!;
    expect(times[0]).toBe(20_000);
    expect(times.at(-1)).toBe(30_000);
  });

  it('keeps at most maxPointsPerSeries points, the newest', () => {
    const h = history({ maxPointsPerSeries: 5 });
    for (let t = 0; t < 20; t++)
      h.addVote({ group: 'OBS2', start: t * 1_000, votes: t, required: 3, anomalous: t >= 3 });
    expect(h.snapshot('t', 0, bundle.manifest.vote).votes['OBS2']).toEqual([
      [15_000, 16_000, 17_000, 18_000, 19_000],
      [15, 16, 17, 18, 19],
      [3, 3, 3, 3, 3],
    ]);
  });

  it('hands out the additions since the last update once', () => {
    const h = history();
    expect(h.takeUpdate()).toBeNull();
    h.addSample({ sensor: 'S2_OBS1', timestamp: 1_000, values: xyz(1, 2, 3) });
    h.addSample({ sensor: 'S2_OBS1', timestamp: 2_000, values: xyz(4, 5, 6) });
    h.addVote({ group: 'OBS1', start: 1_000, votes: 1, required: 3, anomalous: false });
    expect(h.takeUpdate()).toEqual({
      fields: {
        S2_OBS1: [
          [1_000, 2_000],
          [1, 4],
          [2, 5],
          [3, 6],
        ],
      },
      rmse: {},
      votes: { OBS1: [[1_000], [1], [3]] },
      events: [],
    });
    expect(h.takeUpdate()).toBeNull();
    h.addSample({ sensor: 'S2_OBS1', timestamp: 3_000, values: xyz(7, 8, 9) });
    expect(h.takeUpdate()?.fields).toEqual({ S2_OBS1: [[3_000], [7], [8], [9]] });
    expect(h.snapshot('t', 0, bundle.manifest.vote).fields['S2_OBS1']![0]).toEqual([1_000, 2_000, 3_000]);
  });

  it('merges the start and end of an event into one record', () => {
    const h = history();
    const channels = [{ channel: 'S1_OBS1__b_x', rmse: 2.5, threshold: 1.1 }];
    h.addEvent(
      anomalyEvent({
        id: 'OBS1-1000',
        event: 'anomaly.start',
        group: 'OBS1',
        start: '1970-01-01T00:00:01.000Z',
        peakVotes: 3,
        requiredVotes: 3,
        channels,
      }),
    );
    expect(h.takeUpdate()?.events).toEqual([
      expect.objectContaining({
        id: 'OBS1-1000',
        kind: 'anomaly',
        open: true,
        start: 1_000,
        end: null,
        channels,
      }),
    ]);
    h.addEvent(
      anomalyEvent({
        id: 'OBS1-1000',
        event: 'anomaly.end',
        group: 'OBS1',
        start: '1970-01-01T00:00:01.000Z',
        end: '1970-01-01T00:00:09.000Z',
        peakVotes: 4,
        requiredVotes: 3,
        channels,
      }),
    );
    const events = h.snapshot('t', 0, bundle.manifest.vote).events;
    expect(events).toEqual([
      {
        id: 'OBS1-1000',
        kind: 'anomaly',
        event: 'anomaly.end',
        scope: 'group',
        group: 'OBS1',
        start: 1_000,
        end: 9_000,
        open: false,
        peakVotes: 4,
        requiredVotes: 3,
        channels,
      },
    ]);
  });

  it('collects the channels of one silence episode and turns NaN RMSE into null', () => {
    const h = history();
    const silent = (channel: string) => ({ channel, rmse: Number.NaN, threshold: 1 });
    const base = {
      id: 'S1_OBS1-0',
      group: 'OBS1',
      sensor: 'S1_OBS1',
      scope: 'sensor',
      start: '1970-01-01T00:00:00.000Z',
    } as const;
    h.addEvent(anomalyEvent({ ...base, event: 'sensor.silent', channels: [silent('S1_OBS1__b_x')] }));
    h.addEvent(anomalyEvent({ ...base, event: 'sensor.silent', channels: [silent('S1_OBS1__b_y')] }));
    const [event] = h.snapshot('t', 0, bundle.manifest.vote).events;
    expect(event).toMatchObject({ kind: 'silence', open: true, sensor: 'S1_OBS1' });
    expect(event!.channels).toEqual([
      { channel: 'S1_OBS1__b_x', rmse: null, threshold: 1 },
      { channel: 'S1_OBS1__b_y', rmse: null, threshold: 1 },
    ]);
  });

  it('keeps open events and drops the oldest ended ones beyond maxEvents', () => {
    const h = history({ maxEvents: 3, historyMs: 3_600_000 });
    const iso = (s: number) => new Date(s * 1_000).toISOString();
    h.addEvent(anomalyEvent({ id: 'open', event: 'anomaly.start', group: 'OBS1', start: iso(0) }));
    for (let i = 1; i <= 4; i++) {
      h.addEvent(
        anomalyEvent({
          id: `e${i}`,
          event: 'anomaly.end',
          group: 'OBS2',
          start: iso(i * 10),
          end: iso(i * 10 + 5),
        }),
      );
    }
    const ids = h.snapshot('t', 0, bundle.manifest.vote).events.map((e) => e.id);
    expect(ids).toEqual(['open', 'e3', 'e4']);
  });

  it('drops ended events that ended more than the history before the newest start', () => {
    const h = history({ historyMs: 60_000 });
    const iso = (s: number) => new Date(s * 1_000).toISOString();
    h.addEvent(anomalyEvent({ id: 'old', event: 'anomaly.end', group: 'OBS1', start: iso(0), end: iso(10) }));
    h.addEvent(anomalyEvent({ id: 'new', event: 'anomaly.start', group: 'OBS1', start: iso(200) }));
    expect(h.snapshot('t', 0, bundle.manifest.vote).events.map((e) => e.id)).toEqual(['new']);
  });
});
