/**
 * What a subscriber of magwatch's MQTT outputs sees when examples/anomalies.csv is replayed (DESIGN section 4,
 * Streaming and Outputs).
 *
 * The example network: OBS1 has 6 channels (S1_OBS1_1, S2_OBS1_2), OBS2 has 3 (S3_OBS2_1); the bundle's vote
 * rule is `minChannels: 5` for every group and the global vote, so OBS2 alone can never be anomalous. The
 * injected anomalies (examples/anomalies.labels.csv) and the events they must cause:
 * - storm, all 9 channels: OBS1 and the global vote are anomalous together, and channels of both groups voted,
 *   so OBS1 raises one `anomaly.start`/`anomaly.end` pair of scope `global` (groups OBS1, OBS2) and the global
 *   vote raises its own pair on `anomalies/global`; OBS2 raises none (3 channels < 5 votes), and its flagged
 *   channels are carried by the global vote, so they are no sensor events either.
 * - object, OBS1's 6 channels: six channels of one observatory pass the global vote's 5 too, but the channels
 *   carrying it belong to one group, so by the scope rule of GroupEvents (src/stream/events.ts) it is a local
 *   disturbance: one OBS1 pair of scope `group` (without `groups`), and no pair of the global vote, whose own
 *   events are for what several groups carry.
 * - glitch, S1_OBS1_1__b_z alone: no vote carries it, so no anomaly event; one `sensor.anomaly` on
 *   `sensors/S1_OBS1_1`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveService } from '../../src/service.js';
import {
  ANOMALIES_CSV,
  liveConfig,
  memoryLogger,
  type ReceivedMessage,
  recordTopics,
  replayFile,
  type TopicRecorder,
  waitFor,
} from '../helpers/live.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const STORM = { start: '2026-01-15T00:28:48.000Z', end: '2026-01-15T00:32:00.000Z' };
const OBJECT = { start: '2026-01-15T00:35:12.000Z', end: '2026-01-15T00:37:20.000Z' };
const GLITCH = { start: '2026-01-15T00:39:28.000Z' };
const OBS1_CHANNELS = ['S1_OBS1_1', 'S2_OBS1_2'].flatMap((s) =>
  ['b_x', 'b_y', 'b_z'].map((c) => `${s}__${c}`),
);

let broker: Mosquitto;
let dir: string;
/** Everything on the anomaly and sensor topics during the run. */
let recorder: TopicRecorder;

beforeAll(async () => {
  broker = await startMosquitto();
  dir = await mkdtemp(join(tmpdir(), 'magwatch-events-'));
  recorder = await recordTopics(broker.url, ['magwatch/anomalies/#', 'magwatch/sensors/#']);
  const { logger, lines } = memoryLogger();
  const service = await startLiveService(
    liveConfig({ mqttUrl: broker.url, pointsFile: join(dir, 'points.lp') }),
    logger,
  );
  try {
    await replayFile(ANOMALIES_CSV, broker.url);
    await waitFor(
      () => service.detector.stats().windowsScored >= 144,
      '144 window scores',
      45_000,
      () => `${JSON.stringify(service.detector.stats())}; log: ${lines().join('\n')}`,
    );
  } finally {
    // Publishes whatever events the flush ends and waits for the broker's acknowledgements.
    await service.stop();
  }
  // Storm: a start and an end on OBS1 and on the global vote; the object, which only OBS1 carries: a start and
  // an end on OBS1; the glitch: one sensor event.
  const expected = 2 * 2 + 2 + 1;
  await waitFor(
    () => recorder.messages.length >= expected,
    `${expected} event messages`,
    10_000,
    () => describeMessages(recorder.messages),
  );
});

afterAll(async () => {
  await recorder?.close();
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('events of the replayed example on MQTT', () => {
  it('raises one start and one end per group-wide anomaly on its group, and on the global vote when several groups carry it', () => {
    const anomalies = recorder.messages.filter((m) => m.topic.startsWith('magwatch/anomalies/'));
    expect(anomalies.every((m) => !m.retain)).toBe(true);
    expect(summary(anomalies), describeMessages(recorder.messages)).toEqual([
      ['magwatch/anomalies/OBS1', 'anomaly.start', 'global', STORM.start, undefined, ['OBS1', 'OBS2']],
      ['magwatch/anomalies/global', 'anomaly.start', 'global', STORM.start, undefined, ['OBS1', 'OBS2']],
      ['magwatch/anomalies/OBS1', 'anomaly.end', 'global', STORM.start, STORM.end, ['OBS1', 'OBS2']],
      ['magwatch/anomalies/global', 'anomaly.end', 'global', STORM.start, STORM.end, ['OBS1', 'OBS2']],
      ['magwatch/anomalies/OBS1', 'anomaly.start', 'group', OBJECT.start, undefined, undefined],
      ['magwatch/anomalies/OBS1', 'anomaly.end', 'group', OBJECT.start, OBJECT.end, undefined],
    ]);
  });

  it('reports the glitch of one channel as a sensor event on its sensor topic, and nothing else there', () => {
    const sensors = recorder.messages.filter((m) => m.topic.startsWith('magwatch/sensors/'));
    expect(sensors.map((m) => [m.topic, m.payload['event'], m.payload['scope'], m.payload['start']])).toEqual(
      [['magwatch/sensors/S1_OBS1_1', 'sensor.anomaly', 'sensor', GLITCH.start]],
    );
    const channels = sensors[0]!.payload['channels'] as Array<{ channel: string }>;
    expect(channels.map((c) => c.channel)).toEqual(['S1_OBS1_1__b_z']);
  });

  it('explains the storm start with the channels that voted, their RMSE above threshold and the bundle', () => {
    const start = recorder.messages.find(
      (m) => m.topic === 'magwatch/anomalies/OBS1' && m.payload['event'] === 'anomaly.start',
    )!;
    const channels = start.payload['channels'] as Array<{ channel: string; rmse: number; threshold: number }>;
    for (const c of channels) expect(c.rmse).toBeGreaterThan(c.threshold);
    const names = channels.map((c) => c.channel);
    expect(names).toEqual([...names].sort());
    expect(names.every((name) => OBS1_CHANNELS.includes(name))).toBe(true);
    expect(channels.length).toBeGreaterThanOrEqual(start.payload['requiredVotes'] as number);
    const masked = {
      ...start.payload,
      channels: channels.map((c) => c.channel),
      bundleVersion: String(start.payload['bundleVersion']).replace(/-[0-9a-f]{12}$/, '-<digest>'),
    };
    expect(masked).toMatchInlineSnapshot(`
      {
        "bundleVersion": "v1-<digest>",
        "channels": [
          "S1_OBS1_1__b_x",
          "S1_OBS1_1__b_y",
          "S1_OBS1_1__b_z",
          "S2_OBS1_2__b_x",
          "S2_OBS1_2__b_y",
          "S2_OBS1_2__b_z",
        ],
        "event": "anomaly.start",
        "group": "OBS1",
        "groups": [
          "OBS1",
          "OBS2",
        ],
        "id": "OBS1-1768436928000",
        "peakVotes": 6,
        "requiredVotes": 5,
        "scope": "global",
        "start": "2026-01-15T00:28:48.000Z",
      }
    `);
  });

  it('keeps the current state of each group retained for a subscriber that comes late', async () => {
    const late = await recordTopics(broker.url, ['magwatch/status/+']);
    try {
      await waitFor(
        () => late.messages.length >= 2,
        'the retained status of OBS1 and OBS2',
        10_000,
        () => describeMessages(late.messages),
      );
      const status = new Map(late.messages.map((m) => [m.topic, m]));
      const obs1 = status.get('magwatch/status/OBS1')!;
      expect(obs1.retain).toBe(true);
      // The last OBS1 event ended the object anomaly: the group is normal since that end.
      expect(obs1.payload).toMatchObject({
        group: 'OBS1',
        state: 'normal',
        since: OBJECT.end,
        lastEventId: `OBS1-${Date.parse(OBJECT.start)}`,
      });
      const obs2 = status.get('magwatch/status/OBS2')!;
      expect(obs2.retain).toBe(true);
      expect(obs2.payload).toMatchObject({ group: 'OBS2', state: 'normal' });
      expect(obs2.payload['lastEventId']).toBeUndefined();
    } finally {
      await late.close();
    }
  });
});

function summary(messages: readonly ReceivedMessage[]): unknown[][] {
  return messages.map((m) => [
    m.topic,
    m.payload['event'],
    m.payload['scope'],
    m.payload['start'],
    m.payload['end'],
    m.payload['groups'],
  ]);
}

function describeMessages(messages: readonly ReceivedMessage[]): string {
  return messages.map((m) => `${m.topic} ${JSON.stringify(m.payload)}`).join('\n');
}
