/**
 * Shared pieces of the live-path integration tests (test/live): the example bundle and data, a configuration
 * for an in-process `startLiveService`, an MQTT recorder for what magwatch publishes, and polling waits.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connectAsync, type MqttClient } from 'mqtt';
import pino, { type Logger } from 'pino';
import type { Observable } from 'rxjs';
import { replay } from '../../src/cli/replay.js';
import { configSchema, type MagwatchConfig, type MagwatchConfigInput } from '../../src/config/schema.js';
import type { PublishSummary } from '../../src/ingest/publish.js';
import { ROOT } from './cli.js';

/** The trained one-model bundle of the 9 example channels (scripts/make-test-bundle.sh). */
export const EXAMPLE_BUNDLE = join(ROOT, 'examples/model');
/** 1024 samples of 3 sensors at 1 Hz with a storm, an object and a glitch (examples/anomalies.labels.csv). */
export const ANOMALIES_CSV = join(ROOT, 'examples/anomalies.csv');

/** The engines the example bundle can run on: TensorFlow.js always, ONNX Runtime once its `.onnx` files exist. */
export function exampleEngines(): Array<'tfjs' | 'onnx'> {
  const onnx = existsSync(join(EXAMPLE_BUNDLE, 'models', 'shared.onnx'));
  return onnx ? ['tfjs', 'onnx'] : ['tfjs'];
}

export interface LiveConfigOptions {
  /** Broker URL of the test's mosquitto. */
  readonly mqttUrl: string;
  /** Line-protocol file, used when `influxUrl` is unset. */
  readonly pointsFile: string;
  readonly influxUrl?: string;
  readonly engine?: 'auto' | 'onnx' | 'tfjs';
  readonly bundle?: string;
}

/**
 * A configuration for replayed 1 Hz example data: one vote bucket per sample (1 s), gaps and silence far beyond
 * the replay's duration, HTTP off, a fresh client id so that no broker session of another test is resumed.
 */
export function liveConfig(options: LiveConfigOptions, extra: MagwatchConfigInput = {}): MagwatchConfig {
  const clientId = `magwatch-test-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
  return configSchema.parse({
    ...extra,
    mqtt: { url: options.mqttUrl, clientId, clean: true, ...extra.mqtt },
    model: { path: options.bundle ?? EXAMPLE_BUNDLE, engine: options.engine ?? 'tfjs', ...extra.model },
    stream: {
      bucketMs: 1000,
      maxGapMs: 3_600_000,
      silentAfterMs: 3_600_000,
      latenessMs: 30_000,
      ...extra.stream,
    },
    influx: { file: options.pointsFile, url: options.influxUrl, flushIntervalMs: 100, ...extra.influx },
    http: { enabled: false, ...extra.http },
    log: { level: 'warn', ...extra.log },
  });
}

/** A logger that keeps warnings and errors in memory, so a failing test can show them. */
export function memoryLogger(): { logger: Logger; lines: () => string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk).trimEnd());
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, destination), lines: () => [...lines] };
}

/** Subscribes at once and keeps every value in the returned array. */
export function collect<T>(source: Observable<T>): T[] {
  const values: T[] = [];
  source.subscribe((value) => values.push(value));
  return values;
}

/**
 * Resolves once `check()` is (or resolves) true, polling every 20 ms after the previous check; rejects after `timeoutMs` with `what` and, when given,
 * `progress()` in the message, so a stuck pipeline says how far it got.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  progress?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${progress ? `: ${progress()}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Replays a file in-process as `magwatch replay --speed 0 --qos 1` does, into `magwatch/raw/{sensor}`; `range`
 * is `--from`/`--to` in epoch ms.
 */
export function replayFile(
  file: string,
  broker: string,
  batch = 1,
  range: { from?: number; to?: number } = {},
): Promise<PublishSummary> {
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  const noTerminal = Object.assign(quiet, { isTTY: false }) as unknown as NodeJS.WriteStream;
  return replay(
    { input: [file], broker, format: 'magwatch', speed: 0, batch, qos: 1, level: 1, ...range },
    quiet,
    noTerminal,
  );
}

export interface ReceivedMessage {
  readonly topic: string;
  readonly payload: Record<string, unknown>;
  readonly retain: boolean;
}

/** An MQTT subscriber recording every JSON message on its topics; `close()` must be called. */
export interface TopicRecorder {
  readonly messages: ReceivedMessage[];
  close(): Promise<void>;
}

/** Connects to `url`, subscribes to `topics` at QoS 1 and resolves once the subscription is granted. */
export async function recordTopics(url: string, topics: readonly string[]): Promise<TopicRecorder> {
  const client: MqttClient = await connectAsync(url, {
    clientId: `magwatch-recorder-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: 0,
  });
  const messages: ReceivedMessage[] = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: JSON.parse(payload.toString()), retain: packet.retain });
  });
  await client.subscribeAsync([...topics], { qos: 1 });
  return {
    messages,
    close: () => client.endAsync(true),
  };
}
