import { readFileSync } from 'node:fs';
import { connectAsync } from 'mqtt';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeImpf,
  formatCadence,
  IMPF_TOPIC_PATTERN,
  impfElementOf,
  parseCadence,
} from '../../src/ingest/impf.js';
import { MqttIngest } from '../../src/ingest/mqtt.js';
import { groupOf } from '../../src/ingest/table.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const example1 = readFileSync(new URL('../fixtures/impf/ImagMQTTExample1.json', import.meta.url));
const example2 = readFileSync(new URL('../fixtures/impf/ImagMQTTExample2.json', import.meta.url));
const START = Date.UTC(2023, 0, 1);
const ESK_PT1M = { iaga: 'esk', cadence: 'pt1m', level: '1', elements: 'xyzs' };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('decodeImpf', () => {
  it('decodes official example 1: three XYZ samples a minute apart, the missing X kept as null', () => {
    const result = decodeImpf(ESK_PT1M, example1);
    expect(result.invalid).toEqual([]);
    expect(result.samples).toEqual([
      { sensor: 'ESK', timestamp: START, values: { X: 17595.02, Y: -329.19, Z: 46702.7 } },
      { sensor: 'ESK', timestamp: START + 60_000, values: { X: null, Y: -329.18, Z: 46703.01 } },
      { sensor: 'ESK', timestamp: START + 120_000, values: { X: 17594.99, Y: -329.21, Z: 46703.24 } },
    ]);
  });

  it('decodes official example 2: scalar S only, its metadata ignored, one second apart at pt1s', () => {
    const result = decodeImpf({ ...ESK_PT1M, iaga: 'ler', cadence: 'pt1s' }, example2);
    expect(result.invalid).toEqual([]);
    expect(result.samples.map((s) => [s.sensor, s.timestamp - START, s.values])).toEqual([
      ['LER', 0, { S: 49000 }],
      ['LER', 1000, { S: 49000.21 }],
      ['LER', 2000, { S: 49000.34 }],
    ]);
  });

  it('names channels like an IAGA-2002 file would, in the reference group by default', () => {
    const [sample] = decodeImpf(ESK_PT1M, example1).samples;
    expect(sample?.group).toBeUndefined();
    expect(groupOf(sample!.sensor)).toBe('OBS_ALL');
    expect(decodeImpf(ESK_PT1M, example1, { group: 'UK' }).samples[0]?.group).toBe('UK');
  });

  it('reads the older draft: topic <iaga>/<cadence>/<level>, code and cadence in the payload', () => {
    const payload = json({
      iagaCode: 'HAD',
      cadence: 'PT1M',
      startDate: '2023-01-01T00:10Z',
      geomagneticFieldH: [1, 2],
    });
    const result = decodeImpf({}, payload);
    expect(result.samples.map((s) => [s.sensor, s.timestamp - START, s.values])).toEqual([
      ['HAD', 600_000, { H: 1 }],
      ['HAD', 660_000, { H: 2 }],
    ]);
  });

  it('rejects arrays of unequal length as a whole', () => {
    const payload = json({
      startDate: '2023-01-01T00:00',
      geomagneticFieldX: [1, 2, 3],
      geomagneticFieldY: [1, 2],
    });
    const result = decodeImpf(ESK_PT1M, payload);
    expect(result.samples).toEqual([]);
    expect(result.invalid).toEqual([
      { reason: 'unequal_lengths', detail: 'element arrays differ in length (X=3, Y=2)' },
    ]);
  });

  it.each([
    ['bad_cadence', { ...ESK_PT1M, cadence: 'often' }, { startDate: '2023-01-01', geomagneticFieldS: [1] }],
    ['bad_timestamp', ESK_PT1M, { startDate: 'new year', geomagneticFieldS: [1] }],
    ['bad_shape', ESK_PT1M, { geomagneticFieldS: [1] }],
    ['bad_shape', ESK_PT1M, { startDate: '2023-01-01', geomagneticFieldS: 'full' }],
    ['no_components', ESK_PT1M, { startDate: '2023-01-01' }],
    ['no_sensor', { cadence: 'pt1m' }, { startDate: '2023-01-01', geomagneticFieldS: [1] }],
  ])('reports %s', (reason, topic, payload) => {
    const result = decodeImpf(topic, json(payload));
    expect(result.samples).toEqual([]);
    expect(result.invalid.map((i) => i.reason)).toEqual([reason]);
  });

  it('drops only the bad samples of a message', () => {
    const payload = json({
      startDate: '2023-01-01T00:00',
      geomagneticFieldX: [1, 'NaN', 3],
      geomagneticFieldZ: [4, 5, 'x'],
    });
    const result = decodeImpf(ESK_PT1M, payload);
    expect(result.samples.map((s) => s.values)).toEqual([{ X: 1, Z: 4 }]);
    expect(result.invalid).toEqual([
      { reason: 'not_finite', detail: 'geomagneticFieldX[1]="NaN"' },
      { reason: 'bad_shape', detail: 'geomagneticFieldZ[2]="x"' },
    ]);
  });

  it('reads the IAGA-2002 missing markers 99999 and 88888 as null', () => {
    const payload = json({ startDate: '2023-01-01', geomagneticFieldF: [99999, 88888, 48000] });
    expect(decodeImpf(ESK_PT1M, payload).samples.map((s) => s.values['F'])).toEqual([null, null, 48000]);
  });

  it('rejects samples later than the allowed time ahead', () => {
    const payload = json({ startDate: '2023-01-01T00:00', geomagneticFieldS: [1, 2, 3] });
    const result = decodeImpf(ESK_PT1M, payload, { now: () => START, maxFutureMs: 60_000 });
    expect(result.samples).toHaveLength(2);
    expect(result.invalid.map((i) => i.reason)).toEqual(['bad_timestamp']);
  });
});

describe('impf cadence and elements', () => {
  it.each([
    ['pt1m', 60_000],
    ['PT1S', 1000],
    ['1hz', 1000],
    ['10hz', 100],
    ['pt0.5s', 500],
    ['pt1h', 3_600_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseCadence(text)).toBe(ms);
  });

  it('refuses cadences that are not durations or rates', () => {
    for (const text of ['', 'minute', 'pt0s', 'p1d', '0hz']) expect(parseCadence(text)).toBeUndefined();
  });

  it('formats cadences that read back to the same spacing', () => {
    for (const ms of [60_000, 1000, 100, 250, 10_000, 3_600_000])
      expect(parseCadence(formatCadence(ms))).toBe(ms);
    expect(formatCadence(60_000)).toBe('pt1m');
    expect(formatCadence(1000)).toBe('pt1s');
  });

  it('maps long-format components to element letters', () => {
    expect(['b_x', 'B_Y', 'b_z', 'X', 'f', 'temperature'].map(impfElementOf)).toEqual([
      'X',
      'Y',
      'Z',
      'X',
      'F',
      undefined,
    ]);
  });
});

describe('impf through mosquitto', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('ingests both official examples published on impf topics', async () => {
    const ingest = new MqttIngest({
      url: broker.url,
      subscriptions: [{ topic: IMPF_TOPIC_PATTERN, format: 'impf' }],
    });
    const received = firstValueFrom(ingest.samples$.pipe(take(6), toArray(), timeout(10_000)));
    await ingest.start();
    const publisher = await connectAsync(broker.url);
    await publisher.publishAsync('impf/esk/pt1m/1/xyzs', example1, { qos: 1 });
    await publisher.publishAsync('impf/ler/pt1s/3/xyzs', example2, { qos: 1 });
    await publisher.endAsync();

    const samples = await received;
    await ingest.close();
    expect(samples.map((s) => [s.sensor, s.timestamp - START, s.values])).toEqual([
      ['ESK', 0, { X: 17595.02, Y: -329.19, Z: 46702.7 }],
      ['ESK', 60_000, { X: null, Y: -329.18, Z: 46703.01 }],
      ['ESK', 120_000, { X: 17594.99, Y: -329.21, Z: 46703.24 }],
      ['LER', 0, { S: 49000 }],
      ['LER', 1000, { S: 49000.21 }],
      ['LER', 2000, { S: 49000.34 }],
    ]);
    expect(ingest.counters()).toMatchObject({ messages: 2, samples: 6, invalid: {} });
  });
});
