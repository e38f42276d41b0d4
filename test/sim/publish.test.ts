import { PassThrough } from 'node:stream';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runSimulate } from '../../src/cli/simulate.js';
import { MagwatchError } from '../../src/errors.js';
import type { Label } from '../../src/sim/anomalies.js';
import { type PublishClock, publishSimulation } from '../../src/sim/publish.js';
import { type SimulateOptions, simulate, simulateStream } from '../../src/sim/simulate.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

let broker: Mosquitto;
let subscriber: MqttClient;
const received: Array<{ topic: string; payload: Record<string, number> }> = [];

beforeAll(async () => {
  broker = await startMosquitto();
  subscriber = await connectAsync(broker.url);
  subscriber.on('message', (topic, payload) =>
    received.push({ topic, payload: JSON.parse(payload.toString()) }),
  );
  await subscriber.subscribeAsync('magwatch/raw/#', { qos: 1 });
});

afterAll(async () => {
  await subscriber?.endAsync();
  await broker?.stop();
});

const options: SimulateOptions = {
  observatories: 2,
  sensorsPerObservatory: 1,
  rateHz: 10,
  start: Date.UTC(2026, 0, 15),
  durationS: 20,
  seed: 5,
  anomalies: 'default',
};

async function waitFor(count: number): Promise<void> {
  for (let tries = 0; tries < 100 && received.length < count; tries++)
    await new Promise((r) => setTimeout(r, 50));
}

/** A clock that moves only when slept on, recording each sleep. */
function virtualClock(): PublishClock & { sleeps: number[] } {
  let now = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
  };
}

describe('publishSimulation', () => {
  test('publishes every sample in the ingest format to its sensor topic and announces each anomaly', async () => {
    received.length = 0;
    const announced: Label[] = [];
    const summary = await publishSimulation(simulateStream(options), {
      url: broker.url,
      realtime: false,
      onAnomaly: (label) => announced.push(label),
    });

    const { rows, labels } = simulate(options);
    expect(summary).toEqual({ messages: rows.length, stopped: false });
    expect(announced).toEqual(labels);
    await waitFor(rows.length);
    expect(received).toHaveLength(rows.length);

    const first = received.find((message) => message.topic === 'magwatch/raw/S2_OBS2_1')!;
    const row = rows.find((candidate) => candidate.sensor === 'S2_OBS2_1')!;
    expect(Object.keys(first.payload)).toEqual(['ts', 'b_x', 'b_y', 'b_z']);
    expect(first.payload['ts']).toBe(options.start);
    expect(first.payload['b_z']).toBeCloseTo(row.values['b_z']!, 3);
  });

  test('paces time steps by the data clock in real time', async () => {
    const clock = virtualClock();
    const short = { ...options, durationS: 1, anomalies: [] };
    await publishSimulation(simulateStream(short), { url: broker.url, realtime: true, clock });
    // Ten steps 100 ms apart: the first is due at once, the others one step after the previous one.
    expect(clock.sleeps).toEqual(Array(9).fill(100));
  });

  test('stops when its signal aborts', async () => {
    const controller = new AbortController();
    const clock = virtualClock();
    const sleep = clock.sleep;
    clock.sleep = async (ms) => {
      await sleep(ms);
      if (clock.sleeps.length === 3) controller.abort();
    };
    const summary = await publishSimulation(simulateStream(options), {
      url: broker.url,
      realtime: true,
      clock,
      signal: controller.signal,
    });
    // Three steps of two sensors went out before the third sleep ended in the abort.
    expect(summary).toEqual({ messages: 6, stopped: true });
  });

  test('refuses a topic that puts several sensors on one topic', async () => {
    await expect(
      publishSimulation(simulateStream(options), {
        url: broker.url,
        realtime: false,
        topic: 'magwatch/raw/all',
      }),
    ).rejects.toMatchObject({ code: 'MW_MQTT_TOPIC_TEMPLATE' });
  });

  test('fails with a one-line error when the broker is not there', async () => {
    const error = await publishSimulation(simulateStream(options), {
      url: 'mqtt://127.0.0.1:9',
      realtime: false,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MagwatchError);
    expect(error).toMatchObject({ code: 'MW_MQTT_CONNECT' });
    expect((error as Error).message).toContain('mqtt://127.0.0.1:9');
  });

  test('is what magwatch simulate --broker runs, logging each anomaly as it starts', async () => {
    received.length = 0;
    const lines: string[] = [];
    await runSimulate(
      {
        broker: broker.url,
        topic: 'magwatch/raw/{group}/{sensor}',
        observatories: 1,
        sensors: 2,
        rate: 5,
        duration: 10,
        seed: 1,
        noise: 0.2,
        start: options.start,
        anomalies: 'default',
        realtime: false,
      },
      { stdout: new PassThrough(), log: (line) => lines.push(line) },
    );
    await waitFor(100);
    expect(received).toHaveLength(100);
    expect(new Set(received.map((message) => message.topic))).toEqual(
      new Set(['magwatch/raw/OBS1/S1_OBS1_1', 'magwatch/raw/OBS1/S2_OBS1_2']),
    );
    expect(lines[0]).toBe(
      'publishing 2 sensors x 50 samples to magwatch/raw/{group}/{sensor} (as fast as possible), 6 anomalies',
    );
    expect(lines.slice(1, -1).map((line) => line.split(' ')[1])).toEqual([
      'storm',
      'object',
      'glitch',
      'spike',
      'step',
      'ramp',
    ]);
    expect(lines.at(-1)).toBe('published 100 messages');
  });
});
