/**
 * Sensor and group ids come from outside (a bundle trained on someone's CSV, a payload's `sensor` field) and are
 * data: `/`, `+`, `#`, spaces, quotes, commas, `=`, backslashes and non-ASCII must neither add topic levels nor
 * become wildcards nor break line protocol. The example bundle is renamed to such ids and run end to end against
 * a real mosquitto and a real influxd.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnomalyEvent } from '../../src/stream/types.js';
import { type Influxd, startInfluxd } from '../helpers/influxd.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import {
  BUNDLE,
  connectClient,
  EXAMPLE_CHANNELS,
  exampleMessages,
  influxQuery,
  publishAll,
  type RunningService,
  startService,
  waitFor,
} from './helpers.js';

/** The example sensors renamed to ids that are hostile to MQTT topics and to line protocol. */
const SENSORS: Readonly<Record<string, string>> = {
  S1_OBS1_1: 'S1/OBS1 +#',
  S2_OBS1_2: 'S2 "quoted",x=1\\',
  S3_OBS2_1: 'S3 Ørsted–北京 $',
};
const GROUPS: Readonly<Record<string, string>> = { OBS1: 'OBS1/a+b', OBS2: '$OBS 2,"x"=#' };
const DATABASE = 'hostile';

/** Copies the example bundle with every sensor, group and channel renamed. */
async function hostileBundle(dir: string): Promise<string> {
  const bundle = join(dir, 'bundle');
  await cp(BUNDLE, bundle, { recursive: true });
  const rename = (channel: string) => {
    const [sensor, component] = channel.split('__') as [string, string];
    return `${SENSORS[sensor]}__${component}`;
  };
  const renameKeys = (record: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(record).map(([channel, value]) => [rename(channel), value]));
  const read = async (file: string) => JSON.parse(await readFile(join(bundle, file), 'utf8'));
  const manifest = await read('manifest.json');
  manifest.channels = Object.fromEntries(
    Object.entries(manifest.channels as Record<string, { sensor: string; group: string }>).map(
      ([channel, c]) => [rename(channel), { ...c, sensor: SENSORS[c.sensor], group: GROUPS[c.group] }],
    ),
  );
  await writeFile(join(bundle, 'manifest.json'), JSON.stringify(manifest));
  for (const file of ['scalers.json', 'thresholds.json', 'training.json']) {
    await writeFile(join(bundle, file), JSON.stringify(renameKeys(await read(file))));
  }
  return bundle;
}

/**
 * The one documented loss (src/sinks/line-protocol.ts): InfluxDB 1.x cannot store a backslash that ends a tag
 * value or stands before `,`, `=` or a space, so that backslash is written as `%5C`; everything else is kept.
 */
function storedTag(value: string): string {
  return value.replace(/\\(?=$|[,= ])/g, '%5C');
}

describe('hostile sensor and group ids end to end', () => {
  let dir: string;
  let mosquitto: Mosquitto;
  let influxd: Influxd;
  let running: RunningService;
  const received: Array<{ topic: string; event: AnomalyEvent }> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magwatch-hostile-'));
    const bundle = await hostileBundle(dir);
    mosquitto = await startMosquitto();
    influxd = await startInfluxd();
    const subscriber = await connectClient(mosquitto.url);
    await subscriber.subscribeAsync('magwatch/#', { qos: 1 });
    subscriber.on('message', (topic, payload) => {
      if (!topic.startsWith('magwatch/status/'))
        received.push({ topic, event: JSON.parse(payload.toString()) });
    });
    // The topic carries no sensor level: the ids come in the payload, the only place a `/` can be a sensor's.
    running = await startService({
      mqtt: { url: mosquitto.url, topic: 'hostile/raw' },
      model: { path: bundle },
      influx: { url: `${influxd.url}/${DATABASE}`, flushIntervalMs: 200 },
    });
    const publisher = await connectClient(mosquitto.url);
    const messages = (await exampleMessages()).map((m) => {
      const sample = JSON.parse(m.payload) as Record<string, unknown>;
      const sensor = SENSORS[m.topic.split('/').pop()!];
      return { topic: 'hostile/raw', payload: JSON.stringify({ ...sample, sensor }) };
    });
    await publishAll(publisher, messages);
    await publisher.endAsync();
    const windows = Math.floor(messages.length / 3 / 64) * EXAMPLE_CHANNELS;
    await waitFor(
      () => running.service.detector.stats().windowsScored === windows,
      'every window to be scored',
      {
        detail: () => running.service.detector.stats(),
      },
    );
    await running.stop();
    await waitFor(
      () => running.events.every((e) => received.some((r) => r.event.id === e.id)),
      'every event on MQTT',
    );
    await subscriber.endAsync();
  }, 120_000);

  afterAll(async () => {
    await running?.stop();
    await mosquitto?.stop();
    await influxd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts every sample of the hostile sensors', () => {
    const stats = running.service.detector.stats();
    expect(stats.dropped.unknownChannel).toBe(0);
    expect(stats.accepted).toBe(stats.samples * 3);
  });

  it('publishes each event on one topic level per id, percent-encoded and reversible', () => {
    expect(running.events.some((e) => e.event === 'anomaly.start')).toBe(true);
    for (const { topic, event } of received) {
      const levels = topic.split('/');
      expect(levels, topic).toHaveLength(3);
      expect(topic).not.toMatch(/[+#]/);
      expect(levels[2]!.startsWith('$'), topic).toBe(false);
      const id = levels[1] === 'sensors' ? event.sensor : event.group;
      expect(decodeURIComponent(levels[2]!), topic).toBe(id);
    }
    const groups = new Set(received.filter((r) => r.topic.includes('/anomalies/')).map((r) => r.event.group));
    expect([...groups].every((g) => Object.values(GROUPS).includes(g) || g === 'global')).toBe(true);
  });

  it('writes line protocol that InfluxDB reads back with the same tag values', async () => {
    const rows = await influxQuery(
      influxd.url,
      DATABASE,
      'SELECT count("rmse") FROM "magwatch_rmse" GROUP BY "sensor", "group", "channel"',
    );
    const perChannel = Math.floor(running.service.detector.stats().windowsScored / EXAMPLE_CHANNELS);
    const expected = Object.entries(SENSORS).flatMap(([original, sensor]) =>
      ['b_x', 'b_y', 'b_z'].map((component) => ({
        sensor: storedTag(sensor),
        group: storedTag(GROUPS[original.includes('OBS1') ? 'OBS1' : 'OBS2']!),
        channel: storedTag(`${sensor}__${component}`),
        count: perChannel,
      })),
    );
    const stored = rows.map((r) => ({
      sensor: r['sensor'],
      group: r['group'],
      channel: r['channel'],
      count: r['count'],
    }));
    const byChannel = (a: { channel: unknown }, b: { channel: unknown }) =>
      String(a.channel).localeCompare(String(b.channel));
    expect(stored.sort(byChannel)).toEqual(expected.sort(byChannel));
  });

  it('stores one InfluxDB event point per event, whatever the ids', async () => {
    const rows = await influxQuery(
      influxd.url,
      DATABASE,
      'SELECT "id", "event", "group" FROM "magwatch_events"',
    );
    const stored = rows.map((r) => r['id']).sort();
    // An anomaly.end point replaces its anomaly.start point (same time and tags): one point per event id.
    expect(stored).toEqual([...new Set(running.events.map((e) => e.id))].sort());
  });
});
