import { createServer } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { firstValueFrom, type Observable, take, timeout, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttIngest, type MqttIngestOptions, RateLimitedWarnings } from '../../src/ingest/mqtt.js';
import type { Sample } from '../../src/stream/types.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const T0 = Date.UTC(2024, 2, 1);

function collect(samples$: Observable<Sample>, count: number): Promise<Sample[]> {
  return firstValueFrom(samples$.pipe(take(count), toArray(), timeout(10_000)));
}

function recordingLogger() {
  const lines: Array<{ level: 'warn' | 'info'; bindings: Record<string, unknown>; message: string }> = [];
  return {
    lines,
    warn: (bindings: object, message: string) =>
      lines.push({ level: 'warn', bindings: { ...bindings }, message }),
    info: (bindings: object, message: string) =>
      lines.push({ level: 'info', bindings: { ...bindings }, message }),
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('MqttIngest', () => {
  let broker: Mosquitto;
  let publisher: MqttClient;
  const ingests: MqttIngest[] = [];
  const ingest = (options: Partial<MqttIngestOptions> = {}) => {
    const created = new MqttIngest({ url: broker.url, reconnectPeriodMs: 100, ...options });
    ingests.push(created);
    return created;
  };
  const publish = (topic: string, payload: unknown) =>
    publisher.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
      qos: 1,
    });

  beforeAll(async () => {
    broker = await startMosquitto();
    publisher = await connectAsync(broker.url, { reconnectPeriod: 100 });
  });
  afterEach(async () => {
    await Promise.all(ingests.splice(0).map((created) => created.close()));
  });
  afterAll(async () => {
    await publisher?.endAsync();
    await broker?.stop();
  });

  it('emits the samples of good messages with the sensor from the topic', async () => {
    const subscriber = ingest();
    const received = collect(subscriber.samples$, 3);
    await subscriber.start();
    await publish('magwatch/raw/S1_OBS1_1', { ts: T0, b_x: 1, b_y: 2, b_z: 3 });
    await publish('magwatch/raw/S2_OBS1_2', {
      samples: [
        { ts: T0, b_x: 4 },
        { ts: T0 + 1000, b_x: 5 },
      ],
    });
    expect(await received).toEqual([
      { sensor: 'S1_OBS1_1', timestamp: T0, values: { b_x: 1, b_y: 2, b_z: 3 } },
      { sensor: 'S2_OBS1_2', timestamp: T0, values: { b_x: 4 } },
      { sensor: 'S2_OBS1_2', timestamp: T0 + 1000, values: { b_x: 5 } },
    ]);
  });

  it('counts invalid messages by reason and keeps going', async () => {
    const logger = recordingLogger();
    const subscriber = ingest({ maxMessageBytes: 200, logger });
    const received = collect(subscriber.samples$, 3);
    await subscriber.start();
    await publish('magwatch/raw/S1', { ts: T0, b_x: 1 });
    await publish('magwatch/raw/S1', 'not json at all');
    await publish('magwatch/raw/S1', { ts: T0, b_x: 1, note: 'x'.repeat(300) });
    await publish('magwatch/raw/S1', [1, 2]);
    await publish('magwatch/raw/S1', {
      samples: [
        { ts: T0 + 1000, b_x: 'NaN' },
        { ts: 'later', b_x: 1 },
        { ts: T0 + 2000, b_x: 2 },
      ],
    });
    await publish('magwatch/raw/S1', { ts: T0 + 3000, temperature: 20 });
    await publish('magwatch/raw/S1', { ts: T0 + 4000, b_x: 3 });

    const samples = await received;
    expect(samples.map((s) => s.values['b_x'])).toEqual([1, 2, 3]);
    expect(subscriber.counters()).toMatchObject({
      messages: 7,
      samples: 3,
      connected: true,
      invalid: { not_json: 1, too_large: 1, bad_shape: 1, not_finite: 1, bad_timestamp: 1, no_components: 1 },
    });
    const warned = logger.lines.filter((line) => line.message === 'invalid ingest message');
    expect(warned.map((line) => line.bindings['reason']).sort()).toEqual([
      'bad_shape',
      'bad_timestamp',
      'no_components',
      'not_finite',
      'not_json',
      'too_large',
    ]);
    expect(
      warned.every((line) => line.bindings['topic'] === 'magwatch/raw/S1' && line.bindings['count'] === 1),
    ).toBe(true);
  });

  it('routes each topic to its subscription: named levels, format and group', async () => {
    const subscriber = ingest({
      subscriptions: [
        { topic: 'site/+observatory/+sensor', fields: { b_x: ['x'], b_y: ['y'] } },
        { topic: 'impf/+iaga/+cadence/+level/+elements', format: 'impf', group: 'INTERMAGNET' },
      ],
    });
    const received = collect(subscriber.samples$, 2);
    await subscriber.start();
    await publish('site/OBS3/S7', { ts: T0, x: 1, y: 2 });
    await publish('impf/esk/pt1m/1/xyzs', { startDate: '2024-03-01T00:00', geomagneticFieldS: [49000] });
    expect(await received).toEqual([
      { sensor: 'S7', group: 'OBS3', timestamp: T0, values: { b_x: 1, b_y: 2 } },
      { sensor: 'ESK', group: 'INTERMAGNET', timestamp: T0, values: { S: 49000 } },
    ]);
  });

  it('reconnects after the broker restarts and ingests again', async () => {
    const logger = recordingLogger();
    const subscriber = ingest({ logger });
    const received = collect(subscriber.samples$, 2);
    await subscriber.start();
    await publish('magwatch/raw/S1', { ts: T0, b_x: 1 });
    await until(() => subscriber.counters().samples === 1, 'the first sample');

    await broker.restart();
    await until(() => subscriber.counters().reconnects === 1, 'the ingest to reconnect');
    await until(() => publisher.connected, 'the publisher to reconnect');
    await publish('magwatch/raw/S1', { ts: T0 + 1000, b_x: 2 });

    expect((await received).map((s) => s.values['b_x'])).toEqual([1, 2]);
    expect(logger.lines.filter((line) => line.message === 'mqtt connected')).toHaveLength(2);
    expect(logger.lines.some((line) => line.message === 'mqtt disconnected')).toBe(true);
  });

  it('gets the QoS 1 messages published while it was away when its session is kept', async () => {
    const options = { clientId: 'magwatch-kept-session', clean: false };
    const first = ingest(options);
    await first.start();
    await first.close();

    await publish('magwatch/raw/S5', { ts: T0, b_x: 42 });
    const second = ingest(options);
    const received = collect(second.samples$, 1);
    await second.start();
    expect(await received).toEqual([{ sensor: 'S5', timestamp: T0, values: { b_x: 42 } }]);
  });

  it('backs off between reconnect attempts, doubling up to the maximum', async () => {
    const port = await closedPort();
    const logger = recordingLogger();
    const subscriber = new MqttIngest({
      url: `mqtt://127.0.0.1:${port}`,
      reconnectPeriodMs: 50,
      maxReconnectPeriodMs: 200,
      warnIntervalMs: 0,
      startTimeoutMs: 0,
      logger,
    });
    const started = subscriber.start();
    const retries = () => logger.lines.filter((line) => line.message === 'mqtt disconnected');
    await until(() => retries().length >= 5, 'five reconnect attempts');
    await subscriber.close();
    await expect(started).rejects.toMatchObject({ code: 'MW_MQTT_CLOSED' });
    expect(
      retries()
        .slice(0, 5)
        .map((line) => line.bindings['retryInMs']),
    ).toEqual([50, 100, 200, 200, 200]);
  });

  it('fails start when no broker answers within the start timeout', async () => {
    const port = await closedPort();
    const subscriber = new MqttIngest({
      url: `mqtt://127.0.0.1:${port}`,
      startTimeoutMs: 300,
      reconnectPeriodMs: 50,
    });
    const error = await subscriber.start().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'MW_MQTT_CONNECT' });
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('rejects a URL that is not MQTT with a one-line error', async () => {
    const subscriber = new MqttIngest({ url: 'http://user:secret@127.0.0.1:1883' });
    const error = await subscriber.start().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'MW_MQTT_URL' });
    expect((error as Error).message).not.toContain('secret');
  });

  it('names the TLS file it cannot read', async () => {
    const subscriber = new MqttIngest({ url: 'mqtts://127.0.0.1:8883', tls: { ca: '/nonexistent/ca.pem' } });
    await expect(subscriber.start()).rejects.toMatchObject({
      code: 'MW_MQTT_TLS_FILE',
      message: expect.stringContaining('/nonexistent/ca.pem'),
    });
  });

  it('rejects a bad subscription when it is built, naming what is wrong', () => {
    expect(
      () => new MqttIngest({ url: broker.url, subscriptions: [{ topic: 'a/+s', fieldz: {} } as never] }),
    ).toThrow(/subscription 1: .*fieldz/);
    expect(() => new MqttIngest({ url: broker.url, subscriptions: [{ topic: 'a/#/b' }] })).toThrow(/a\/#\/b/);
    expect(() => new MqttIngest({ url: broker.url, subscriptions: [{ format: 'csv' as 'impf' }] })).toThrow(
      /subscription 1: format/,
    );
  });
});

describe('MqttIngest against a broker that wants credentials', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto({ users: { magwatch: 'correct horse' } });
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('connects with the right username and password', async () => {
    const subscriber = new MqttIngest({ url: broker.url, username: 'magwatch', password: 'correct horse' });
    await subscriber.start();
    expect(subscriber.counters().connected).toBe(true);
    await subscriber.close();
  });

  it('fails start with the refusal instead of retrying for ever', async () => {
    const subscriber = new MqttIngest({
      url: broker.url,
      reconnectPeriodMs: 50,
      password: 'hunter2',
      username: 'magwatch',
    });
    const error = await subscriber.start().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'MW_MQTT_REFUSED' });
    expect((error as Error).message).not.toContain('hunter2');
  });
});

describe('RateLimitedWarnings', () => {
  it('logs once per key per interval and carries the count of the quiet ones', () => {
    let now = 0;
    const logger = recordingLogger();
    const warnings = new RateLimitedWarnings(logger, 60_000, () => now);
    for (let i = 0; i < 5; i++) warnings.warn('not_json', { reason: 'not_json' }, 'invalid ingest message');
    warnings.warn('too_large', { reason: 'too_large' }, 'invalid ingest message');
    now = 59_999;
    warnings.warn('not_json', { reason: 'not_json' }, 'invalid ingest message');
    now = 60_000;
    warnings.warn('not_json', { reason: 'not_json' }, 'invalid ingest message');
    expect(logger.lines.map((line) => [line.bindings['reason'], line.bindings['count']])).toEqual([
      ['not_json', 1],
      ['too_large', 1],
      ['not_json', 6],
    ]);
  });
});

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
}
