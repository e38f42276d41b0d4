/**
 * Shared pieces of the reliability tests: a live service started in-process against real brokers and databases,
 * a logger whose JSON lines the test can read, the example data as ingest messages, and polling waits.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { createLogger } from '../../src/cli/logger.js';
import { configSchema, type MagwatchConfig, type MagwatchConfigInput } from '../../src/config/schema.js';
import { readLongRows } from '../../src/ingest/files.js';
import { buildMessages, type PublishMessage } from '../../src/ingest/publish.js';
import { type LiveService, type LiveServiceHooks, startLiveService } from '../../src/service.js';
import type { AnomalyEvent } from '../../src/stream/types.js';
import { ROOT } from '../helpers/cli.js';

/** The trained 9-channel shared-model bundle of `scripts/make-test-bundle.sh`. */
export const BUNDLE = join(ROOT, 'examples/model');
export const EXAMPLE_ANOMALIES = join(ROOT, 'examples/anomalies.csv');
/** Channels of the example bundle: 3 sensors × 3 components. */
export const EXAMPLE_CHANNELS = 9;

/** A JSON-lines logger whose output the test reads back; the same redaction as `magwatch run`. */
export interface CapturedLogger {
  readonly logger: Logger;
  /** Every line logged so far, parsed. */
  lines(): Array<Record<string, unknown>>;
  /** Everything logged so far, raw. */
  text(): string;
}

export function captureLogger(level = 'info'): CapturedLogger {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger(level, destination);
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** A validated configuration for a test service: HTTP on a free port, points to a temp file unless set. */
export function testConfig(input: MagwatchConfigInput): MagwatchConfig {
  return configSchema.parse({
    ...input,
    mqtt: { clientId: `magwatch-test-${randomBytes(4).toString('hex')}`, ...input.mqtt },
    model: { path: BUNDLE, engine: 'tfjs', ...input.model },
    http: { port: 0, ...input.http },
  });
}

export interface RunningService {
  readonly service: LiveService;
  readonly log: CapturedLogger;
  /** Every event the detector emitted, in order. */
  readonly events: AnomalyEvent[];
  /** Temp directory for the points file and anything else the test writes. */
  readonly dir: string;
  stop(): Promise<void>;
}

/** Starts the live service in this process; `stop()` stops it and removes its temp directory. */
export async function startService(
  input: MagwatchConfigInput,
  hooks: LiveServiceHooks = {},
): Promise<RunningService> {
  const dir = await mkdtemp(join(tmpdir(), 'magwatch-reliability-'));
  const config = testConfig({ ...input, influx: { file: join(dir, 'points.lp'), ...input.influx } });
  const log = captureLogger();
  const events: AnomalyEvent[] = [];
  let service: LiveService;
  try {
    service = await startLiveService(config, log.logger, {
      ...hooks,
      onEvent: (event) => {
        events.push(event);
        hooks.onEvent?.(event);
      },
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  let stopped = false;
  return {
    service,
    log,
    events,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `condition` every 50 ms until it holds; fails naming `what` and the last `detail()` after the timeout. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  options: { timeoutMs?: number; detail?: () => unknown } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const detail = options.detail ? `; last state: ${JSON.stringify(options.detail())}` : '';
  throw new Error(`timed out waiting for ${what}${detail}`);
}

/** The example anomalies as one-sample `magwatch` messages, all sensors interleaved in time order. */
export async function exampleMessages(): Promise<PublishMessage[]> {
  const rows = await readLongRows([EXAMPLE_ANOMALIES]);
  return buildMessages(rows, { format: 'magwatch' });
}

/** An MQTT client for the test itself (publisher or subscriber), connected before it resolves. */
export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return connectAsync(url, { reconnectPeriod: 200, connectTimeout: 5000, ...options });
}

/** Publishes at QoS 1 with at most `window` unacknowledged messages, resolving once all are acknowledged. */
export async function publishAll(
  client: MqttClient,
  messages: ReadonlyArray<{ topic: string; payload: string | Buffer }>,
  window = 100,
): Promise<void> {
  const inflight = new Set<Promise<unknown>>();
  for (const message of messages) {
    while (inflight.size >= window) await Promise.race(inflight);
    const sent: Promise<unknown> = client
      .publishAsync(message.topic, message.payload, { qos: 1 })
      .finally(() => inflight.delete(sent));
    inflight.add(sent);
  }
  await Promise.all(inflight);
}

/** Reads one Prometheus sample (`name{labels}`) from a metrics text; 0 when absent. */
export function metricValue(text: string, name: string, labels = ''): number {
  const key = labels ? `${name}{${labels}}` : name;
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  return line ? Number(line.slice(key.length + 1)) : 0;
}

/** Runs an InfluxQL query against a real influxd and returns the first series' rows as objects. */
export async function influxQuery(
  url: string,
  database: string,
  query: string,
): Promise<Array<Record<string, unknown>>> {
  const params = new URLSearchParams({ db: database, q: query, epoch: 'ms' });
  const response = await fetch(`${url}/query?${params}`);
  const body = (await response.json()) as {
    results: Array<{
      series?: Array<{ columns: string[]; values: unknown[][]; tags?: object }>;
      error?: string;
    }>;
  };
  const result = body.results[0];
  if (result?.error) throw new Error(`influxql ${query}: ${result.error}`);
  const rows: Array<Record<string, unknown>> = [];
  for (const series of result?.series ?? []) {
    for (const values of series.values) {
      rows.push({ ...series.tags, ...Object.fromEntries(series.columns.map((c, i) => [c, values[i]])) });
    }
  }
  return rows;
}
