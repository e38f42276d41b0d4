import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerReplay } from '../../src/cli/replay.js';
import { IMPF_TOPIC_PATTERN } from '../../src/ingest/impf.js';
import { MqttIngest, type MqttIngestOptions } from '../../src/ingest/mqtt.js';
import { buildMessages, publishMessages } from '../../src/ingest/publish.js';
import type { Sample } from '../../src/stream/types.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/replay/long.csv', import.meta.url));
const T0 = Date.UTC(2024, 2, 1);

/** The fixture's samples as the ingest should see them: 10 s of two sensors, S2's b_z missing at 4 s. */
function expectedSamples(components: [string, string, string]): string[] {
  const rows: string[] = [];
  for (let i = 0; i < 10; i++) {
    const s1 = [17590 + i * 0.5, -320 - i * 0.25, 46700 + i];
    const s2 = [17600 - i * 0.5, -310 + i * 0.25, i === 4 ? null : 46800 - i];
    rows.push(describeSample('S1_OBS1_1', T0 + i * 1000, components, s1));
    rows.push(describeSample('S2_OBS1_2', T0 + i * 1000, components, s2));
  }
  return rows.sort();
}

function describeSample(
  sensor: string,
  timestamp: number,
  components: string[],
  values: Array<number | null>,
) {
  return `${sensor} ${new Date(timestamp).toISOString()} ${components.map((c, i) => `${c}=${values[i]}`).join(' ')}`;
}

const asText = (sample: Sample) =>
  describeSample(
    sample.sensor,
    sample.timestamp,
    Object.keys(sample.values).sort(),
    Object.keys(sample.values)
      .sort()
      .map((c) => sample.values[c] ?? null),
  );

describe('magwatch replay', () => {
  let broker: Mosquitto;
  let output: string;
  const ingests: MqttIngest[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(ingests.splice(0).map((ingest) => ingest.close()));
  });
  afterAll(async () => {
    await broker?.stop();
  });

  async function subscribe(count: number, options: Partial<MqttIngestOptions> = {}) {
    const ingest = new MqttIngest({ url: broker.url, ...options });
    ingests.push(ingest);
    const samples = firstValueFrom(ingest.samples$.pipe(take(count), toArray(), timeout(15_000)));
    await ingest.start();
    return { ingest, samples };
  }

  async function replay(...args: string[]) {
    output = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output += chunk.toString();
      return true;
    });
    const program = new Command('magwatch').exitOverride();
    registerReplay(program);
    await program.parseAsync(['replay', '--input', FIXTURE, '--broker', broker.url, ...args], {
      from: 'user',
    });
    vi.restoreAllMocks();
  }

  it('publishes every sample exactly once as single magwatch messages', async () => {
    const { ingest, samples } = await subscribe(20);
    await replay('--speed', '0');
    expect((await samples).map(asText).sort()).toEqual(expectedSamples(['b_x', 'b_y', 'b_z']));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ingest.counters()).toMatchObject({ messages: 20, samples: 20, invalid: {} });
    expect(output).toMatch(
      /^replay: published 20 messages, 20 samples \(magwatch\) to mqtt:\/\/127\.0\.0\.1:\d+\/? in \d+\.\d s\n$/,
    );
  });

  it('publishes magwatch batches of --batch samples on a --topic of its own', async () => {
    const { ingest, samples } = await subscribe(20, { subscriptions: [{ topic: 'lab/+sensor/field' }] });
    await replay('--speed', '0', '--batch', '4', '--topic', 'lab/{sensor}/field');
    expect((await samples).map(asText).sort()).toEqual(expectedSamples(['b_x', 'b_y', 'b_z']));
    expect(ingest.counters().messages).toBe(6);
    expect(output).toContain('published 6 messages, 20 samples');
  });

  it('publishes every sample exactly once in the INTERMAGNET format', async () => {
    const { ingest, samples } = await subscribe(20, {
      subscriptions: [{ topic: IMPF_TOPIC_PATTERN, format: 'impf' }],
    });
    await replay('--speed', '0', '--format', 'impf', '--batch', '5');
    const received = await samples;
    expect(received.map(asText).sort()).toEqual(expectedSamples(['X', 'Y', 'Z']));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ingest.counters()).toMatchObject({ messages: 4, samples: 20, invalid: {} });
    expect(output).toContain('published 4 messages, 20 samples (impf)');
  });

  it('paces messages by their timestamps at --speed', async () => {
    const { samples } = await subscribe(12);
    const started = Date.now();
    await replay('--speed', '20', '--from', '2024-03-01T00:00:04Z', '--to', '2024-03-01T00:00:10Z');
    const elapsed = Date.now() - started;
    const received = await samples;
    // Data from 4 s to 9 s at twenty times real time takes 250 ms.
    expect(elapsed).toBeGreaterThanOrEqual(240);
    expect(new Set(received.map((s) => s.timestamp - T0))).toEqual(
      new Set([4000, 5000, 6000, 7000, 8000, 9000]),
    );
  });

  it('fails with one line when the broker cannot be reached', async () => {
    const program = new Command('magwatch').exitOverride();
    registerReplay(program);
    const run = program.parseAsync(
      ['replay', '--input', FIXTURE, '--broker', 'mqtt://127.0.0.1:1', '--speed', '0'],
      { from: 'user' },
    );
    await expect(run).rejects.toMatchObject({
      code: 'MW_MQTT_CONNECT',
      message: expect.stringMatching(/^[^\n]*127\.0\.0\.1:1/),
    });
  });

  it('fails with MW_MQTT_PUBLISH when the broker goes away mid-replay', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => ({
      sensor: 'S1',
      timestamp: T0 + i * 1000,
      values: { b_x: i },
    }));
    const messages = buildMessages(rows, { format: 'magwatch' });
    const outcome = publishMessages(messages, { url: broker.url, speed: 25 }).catch(
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await broker.halt();
    try {
      expect(await outcome).toMatchObject({ code: 'MW_MQTT_PUBLISH' });
    } finally {
      await broker.resume();
    }
  });

  it('rejects a negative --speed naming the option', async () => {
    const program = new Command('magwatch').exitOverride();
    registerReplay(program);
    const run = program.parseAsync(['replay', '--input', FIXTURE, '--broker', broker.url, '--speed', '-1'], {
      from: 'user',
    });
    await expect(run).rejects.toMatchObject({
      code: 'MW_CLI_BAD_OPTION',
      message: expect.stringContaining('--speed'),
    });
  });
});

describe('buildMessages', () => {
  const row = (seconds: number, values: Record<string, number>) => ({
    sensor: 'ESK',
    timestamp: T0 + seconds * 1000,
    values,
  });

  it('starts a new impf message at a gap, so no sample is invented', () => {
    const rows = [row(0, { X: 1 }), row(60, { X: 2 }), row(120, { X: Number.NaN }), row(300, { X: 4 })];
    const messages = buildMessages(rows, { format: 'impf', batch: 10 });
    expect(messages.map((m) => [m.topic, JSON.parse(m.payload)])).toEqual([
      ['impf/esk/pt1m/1/x', { startDate: '2024-03-01T00:00:00.000Z', geomagneticFieldX: [1, 2, null] }],
      ['impf/esk/pt1m/1/x', { startDate: '2024-03-01T00:05:00.000Z', geomagneticFieldX: [4] }],
    ]);
  });

  it('orders each sensor by time and all messages by due time', () => {
    const rows = [
      { sensor: 'B', timestamp: T0 + 2000, values: { b_x: 3 } },
      { sensor: 'A', timestamp: T0 + 1000, values: { b_x: 2 } },
      { sensor: 'B', timestamp: T0, values: { b_x: 1 } },
    ];
    const messages = buildMessages(rows, { format: 'magwatch' });
    expect(messages.map((m) => [m.topic, JSON.parse(m.payload).b_x])).toEqual([
      ['magwatch/raw/B', 1],
      ['magwatch/raw/A', 2],
      ['magwatch/raw/B', 3],
    ]);
  });

  it('puts the sensor in the magwatch payload when the topic does not name it', () => {
    const rows = [row(0, { b_x: 1 }), row(1, { b_x: 2 })];
    const single = buildMessages(rows, { format: 'magwatch', topic: 'lab/all' });
    expect(single.map((m) => JSON.parse(m.payload).sensor)).toEqual(['ESK', 'ESK']);
    const [batch] = buildMessages(rows, { format: 'magwatch', topic: 'lab/all', batch: 2 });
    expect(JSON.parse(batch!.payload)).toMatchObject({ sensor: 'ESK', samples: [{ b_x: 1 }, { b_x: 2 }] });
    const named = buildMessages(rows, { format: 'magwatch' });
    expect(named.map((m) => JSON.parse(m.payload).sensor)).toEqual([undefined, undefined]);
  });

  it('refuses impf for a component that is no INTERMAGNET element', () => {
    expect(() => buildMessages([row(0, { temperature: 20 })], { format: 'impf' })).toThrow(
      expect.objectContaining({
        code: 'MW_REPLAY_IMPF_COMPONENT',
        message: expect.stringContaining("'temperature'"),
      }),
    );
  });
});

describe('magwatch replay to a broker that wants credentials', () => {
  let broker: Mosquitto;
  let dir: string;
  beforeAll(async () => {
    broker = await startMosquitto({ users: { replayer: 's3cret' } });
    dir = await mkdtemp(join(tmpdir(), 'magwatch-replay-'));
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the password from MAGWATCH_MQTT_PASSWORD_FILE', async () => {
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, 's3cret\n');
    vi.stubEnv('MAGWATCH_MQTT_PASSWORD_FILE', passwordFile);
    const ingest = new MqttIngest({ url: broker.url, username: 'replayer', password: 's3cret' });
    const samples = firstValueFrom(ingest.samples$.pipe(take(20), toArray(), timeout(15_000)));
    await ingest.start();
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const program = new Command('magwatch').exitOverride();
    registerReplay(program);
    try {
      await program.parseAsync(
        ['replay', '--input', FIXTURE, '--broker', broker.url, '--speed', '0', '--username', 'replayer'],
        { from: 'user' },
      );
      expect((await samples).length).toBe(20);
    } finally {
      stdout.mockRestore();
      await ingest.close();
    }
  });

  it('fails with one line when the password is wrong', async () => {
    vi.stubEnv('MAGWATCH_MQTT_PASSWORD_FILE', '');
    vi.stubEnv('MAGWATCH_MQTT_PASSWORD', 'wrong');
    const program = new Command('magwatch').exitOverride();
    registerReplay(program);
    const run = program.parseAsync(
      ['replay', '--input', FIXTURE, '--broker', broker.url, '--speed', '0', '--username', 'replayer'],
      { from: 'user' },
    );
    await expect(run).rejects.toMatchObject({
      code: 'MW_MQTT_CONNECT',
      message: expect.not.stringContaining('wrong'),
    });
  });
});
