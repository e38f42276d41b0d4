/**
 * The compose stack's service files against the real programs, where Docker cannot run them: the
 * Mosquitto configuration with Debian's mosquitto 2, and every dashboard query against influxd 1.x holding
 * the points that magwatch's own point builders write.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePoints } from '../../src/sinks/line-protocol.js';
import { eventPoint, INTEGER_FIELDS, rmsePoint, votePoint } from '../../src/sinks/points.js';
import type { AnomalyEvent, Point } from '../../src/stream/types.js';
import {
  type ComposeInflux,
  type ComposeMosquitto,
  startComposeInflux,
  startComposeMosquitto,
} from './services.js';
import {
  dashboardQueries,
  influxqlNames,
  MOSQUITTO_CONF_PATH,
  readCompose,
  readDashboard,
  readText,
  selectedColumns,
  service,
} from './stack.js';

describe('config/compose/mosquitto.conf', () => {
  let broker: ComposeMosquitto;

  beforeAll(async () => {
    broker = await startComposeMosquitto();
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it("answers the compose health check's subscription to the broker's retained uptime at once", async () => {
    // The mosquitto service's health check: mosquitto_sub -t '$SYS/broker/uptime' -C 1 -W 3 (compose unescapes $$).
    const test = service(readCompose(), 'mosquitto').healthcheck!.test!;
    const topic = test[test.indexOf('-t') + 1]!.replaceAll('$$', '$');
    const waitS = Number(test[test.indexOf('-W') + 1]);
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    try {
      const received = new Promise<string>((resolve) => client.on('message', (t) => resolve(t)));
      await client.subscribeAsync(topic);
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('nothing'), waitS * 1000));
      expect(await Promise.race([received, timeout])).toBe('$SYS/broker/uptime');
    } finally {
      await client.endAsync();
    }
  });

  it('listens on the port of the compose file and lets an anonymous client publish and subscribe', async () => {
    const listener = /^listener (\d+)$/m.exec(readText(MOSQUITTO_CONF_PATH))?.[1];
    const url = new URL(service(readCompose(), 'magwatch').environment!['MAGWATCH_MQTT_URL']!);
    expect(url.port).toBe(listener);

    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    try {
      const received = new Promise<string>((resolve) => {
        client.on('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`));
      });
      await client.subscribeAsync('magwatch/raw/+', { qos: 1 });
      await client.publishAsync('magwatch/raw/S1_OBS1_1', '{"ts":0,"b_x":1,"b_y":2,"b_z":3}', { qos: 1 });
      expect(await received).toBe('magwatch/raw/S1_OBS1_1 {"ts":0,"b_x":1,"b_y":2,"b_z":3}');
    } finally {
      await client.endAsync();
    }
  });
});

// Two observatories, one sensor each, over two minutes; OBS1 sees an anomaly that the global vote carries.
const START = Date.UTC(2026, 0, 15);
const CHANNELS = ['S1_OBS1_1', 'S2_OBS2_1'].flatMap((sensor) =>
  ['b_x', 'b_y', 'b_z'].map((component) => ({
    channel: `${sensor}__${component}`,
    sensor,
    component,
    group: sensor.includes('OBS1') ? 'OBS1' : 'OBS2',
  })),
);
const GROUPS = ['OBS1', 'OBS2'];

function storedPoints(): Point[] {
  const points: Point[] = [];
  for (const c of CHANNELS) {
    for (let w = 0; w < 18; w++) {
      const anomalous = c.group === 'OBS1' && w >= 8 && w < 11;
      const end = START + (w + 1) * 6400;
      points.push(
        rmsePoint({ ...c, start: end - 6300, end, rmse: anomalous ? 2.5 : 0.3, threshold: 1.2, anomalous }),
      );
    }
  }
  for (const group of [...GROUPS, 'global']) {
    for (let b = 0; b < 120; b++) {
      const votes = group !== 'OBS2' && b >= 51 && b < 70 ? 3 : 0;
      points.push(votePoint({ group, start: START + b * 1000, votes, required: 3, anomalous: votes >= 3 }));
    }
  }
  // Events of one group at one start time share a series key and a timestamp in InfluxDB, so each stored
  // event here starts at its own time or in its own group.
  const event = (kind: AnomalyEvent['event'], group: string, atS: number): AnomalyEvent => ({
    id: `${group}-${atS}`,
    event: kind,
    scope: kind.startsWith('sensor.') ? 'sensor' : group === 'global' ? 'global' : 'group',
    group,
    ...(kind.startsWith('sensor.') ? { sensor: 'S2_OBS2_1' } : {}),
    start: new Date(START + atS * 1000).toISOString(),
    ...(kind.startsWith('sensor.') ? {} : { peakVotes: 3, requiredVotes: 3 }),
    channels: CHANNELS.filter((c) => c.group === group || group === 'global').map((c) => ({
      channel: c.channel,
      rmse: 2.5,
      threshold: 1.2,
    })),
    bundleVersion: 'test',
  });
  points.push(
    eventPoint(event('anomaly.start', 'OBS1', 51)),
    eventPoint(event('anomaly.start', 'global', 51)),
    eventPoint(event('sensor.silent', 'OBS2', 90)),
  );
  return points;
}

/** A query as Grafana sends it with every group and channel selected and the whole test range shown. */
function asGrafanaSendsIt(query: string): string {
  const all = (values: string[]) => `(${values.join('|')})`;
  return query
    .replaceAll('$timeFilter', `time >= ${START}ms and time <= ${START + 180_000}ms`)
    .replaceAll('$__interval', '10s')
    .replaceAll('$group', all(GROUPS))
    .replaceAll('$channel', all(CHANNELS.map((c) => c.channel)));
}

describe('dashboard queries on InfluxDB 1.x', () => {
  let influx: ComposeInflux;

  beforeAll(async () => {
    influx = await startComposeInflux();
    const body = encodePoints(storedPoints(), { precision: 'ms', integerFields: INTEGER_FIELDS });
    const write = new URL(influx.url);
    const response = await fetch(`${write.origin}/write?db=${influx.database}&precision=ms`, {
      method: 'POST',
      body,
    });
    expect(response.status, await response.text()).toBe(204);
  });

  afterAll(async () => {
    await influx?.stop();
  });

  it('answers every panel, annotation and variable query with data in each selected column', async () => {
    const dashboard = readDashboard();
    for (const { where, query } of dashboardQueries(dashboard)) {
      const result = await influx.query(asGrafanaSendsIt(query));
      expect(result.error, where).toBeUndefined();
      expect(result.series?.length, `${where} returns series`).toBeGreaterThan(0);
      const measurement = influxqlNames(query).measurements[0]!;
      for (const column of selectedColumns(query)) {
        const values = result.series!.flatMap((s) => s.values.map((row) => row[s.columns.indexOf(column)]));
        expect(
          values.some((v) => v !== null && v !== undefined),
          `${where}: column ${column} of ${measurement}`,
        ).toBe(true);
      }
    }
  });

  it('lists the groups and channels that magwatch writes as variable values', async () => {
    const variables = Object.fromEntries(readDashboard().templating.list.map((v) => [v.name, v.query]));
    const values = async (query: string) =>
      ((await influx.query(asGrafanaSendsIt(query))).series ?? []).flatMap((s) =>
        s.values.map((row) => row[1]),
      );
    expect(await values(variables['group']!)).toEqual(GROUPS);
    expect(await values(variables['channel']!)).toEqual(CHANNELS.map((c) => c.channel).sort());
  });

  it('finds the anomaly events for the annotations, with their kind and group', async () => {
    const annotation = readDashboard().annotations.list.find((a) => !a.builtIn)!;
    const result = await influx.query(asGrafanaSendsIt(annotation.query!));
    const [series] = result.series!;
    const rows = series!.values.map((row) => Object.fromEntries(series!.columns.map((c, i) => [c, row[i]])));
    expect(rows.map((r) => `${r['group']} ${r[annotation.titleColumn!]}`).sort()).toEqual([
      'OBS1 anomaly.start',
      'OBS2 sensor.silent',
      'global anomaly.start',
    ]);
    expect(rows.every((r) => typeof r[annotation.textColumn!] === 'string')).toBe(true);
  });
});
