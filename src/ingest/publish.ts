import { connectAsync, type MqttClient } from 'mqtt';
import { MagwatchError } from '../errors.js';
import { formatCadence, type ImpfElement, impfElementOf } from './impf.js';
import { redactUrl } from './mqtt.js';
import type { LongRow } from './table.js';
import { fillTopic } from './topic.js';

/**
 * Turns long rows into ingest messages (either payload format) and publishes them paced by the data's own
 * timestamps: what `magwatch replay` does, and what tests use to feed a broker.
 */

export type PublishFormat = 'magwatch' | 'impf';

/** Default publish topics; `{name}` levels are filled per sensor. */
export const DEFAULT_PUBLISH_TOPICS: Readonly<Record<PublishFormat, string>> = {
  magwatch: 'magwatch/raw/{sensor}',
  impf: 'impf/{iaga}/{cadence}/{level}/{elements}',
};

/** One message ready to publish. */
export interface PublishMessage {
  readonly topic: string;
  readonly payload: string;
  /** Samples in the payload. */
  readonly samples: number;
  /** Epoch ms of the payload's last sample: the message is due when the replay clock reaches it. */
  readonly time: number;
}

export interface BuildOptions {
  format: PublishFormat;
  /** Topic template with `{sensor}` (both formats) and `{iaga}`, `{cadence}`, `{level}`, `{elements}` (impf). */
  topic?: string;
  /** Samples per message; default 1. For impf, a message also ends at any gap in the sensor's time series. */
  batch?: number;
  /** impf publication level for the topic, 1 (raw) to 4 (definitive); default 1. */
  level?: number;
}

/**
 * Builds the messages for `rows`, each sensor's rows in time order, all messages ordered by due time.
 * NaN values (missing cells) become JSON null.
 * @throws MagwatchError `MW_REPLAY_IMPF_COMPONENT` when impf is asked for a component that is not an element.
 */
export function buildMessages(rows: readonly LongRow[], options: BuildOptions): PublishMessage[] {
  const batch = options.batch ?? 1;
  const template = options.topic ?? DEFAULT_PUBLISH_TOPICS[options.format];
  const messages: PublishMessage[] = [];
  for (const [sensor, sensorRows] of rowsBySensor(rows)) {
    if (options.format === 'magwatch') {
      const topic = fillTopic(template, { sensor });
      // Without the sensor in the topic, the payload must carry it or sensors would merge at the ingest.
      const carrySensor = topic === fillTopic(template, { sensor: `${sensor}-` }) ? sensor : undefined;
      for (let at = 0; at < sensorRows.length; at += batch) {
        messages.push(magwatchMessage(topic, sensorRows.slice(at, at + batch), batch > 1, carrySensor));
      }
    } else {
      messages.push(...impfMessages(sensor, sensorRows, template, batch, options.level ?? 1));
    }
  }
  // Stable, so a sensor's messages keep their order when two share a due time.
  return messages.sort((a, b) => a.time - b.time);
}

function rowsBySensor(rows: readonly LongRow[]): Map<string, LongRow[]> {
  const bySensor = new Map<string, LongRow[]>();
  for (const row of rows) {
    const list = bySensor.get(row.sensor);
    if (list) list.push(row);
    else bySensor.set(row.sensor, [row]);
  }
  for (const list of bySensor.values()) list.sort((a, b) => a.timestamp - b.timestamp);
  return bySensor;
}

function magwatchMessage(topic: string, rows: LongRow[], asBatch: boolean, sensor?: string): PublishMessage {
  const samples = rows.map((row) => {
    const sample: Record<string, string | number | null> = { ts: new Date(row.timestamp).toISOString() };
    if (sensor && !asBatch) sample['sensor'] = sensor;
    for (const [component, value] of Object.entries(row.values)) sample[component] = jsonValue(value);
    return sample;
  });
  const payload = JSON.stringify(asBatch ? (sensor ? { sensor, samples } : { samples }) : samples[0]);
  return { topic, payload, samples: rows.length, time: rows[rows.length - 1]!.timestamp };
}

function impfMessages(
  sensor: string,
  rows: LongRow[],
  template: string,
  batch: number,
  level: number,
): PublishMessage[] {
  const elements = new Map<string, ImpfElement>();
  for (const row of rows) {
    for (const component of Object.keys(row.values)) {
      if (elements.has(component)) continue;
      const element = impfElementOf(component);
      if (!element) {
        throw new MagwatchError(
          'MW_REPLAY_IMPF_COMPONENT',
          `sensor ${sensor} has component '${component}', which is no INTERMAGNET element; ` +
            'impf carries X, Y, Z, H, D, I, F, S (and b_x/b_y/b_z as X/Y/Z): use --format magwatch',
        );
      }
      elements.set(component, element);
    }
  }
  const cadenceMs = typicalSpacing(rows);
  const fields = {
    sensor,
    iaga: sensor.toLowerCase(),
    cadence: formatCadence(cadenceMs),
    level: String(level),
    elements: [...new Set(elements.values())].join('').toLowerCase(),
  };
  const topic = fillTopic(template, fields);

  const messages: PublishMessage[] = [];
  let run: LongRow[] = [];
  const flush = () => {
    if (run.length === 0) return;
    const payload: Record<string, unknown> = { startDate: new Date(run[0]!.timestamp).toISOString() };
    for (const [component, element] of elements) {
      payload[`geomagneticField${element}`] = run.map((row) => jsonValue(row.values[component]));
    }
    messages.push({
      topic,
      payload: JSON.stringify(payload),
      samples: run.length,
      time: run[run.length - 1]!.timestamp,
    });
    run = [];
  };
  for (const row of rows) {
    const previous = run[run.length - 1];
    // impf places sample i at startDate + i x cadence, so a message can only hold an unbroken run.
    if (previous && (row.timestamp - previous.timestamp !== cadenceMs || run.length >= batch)) flush();
    run.push(row);
  }
  flush();
  return messages;
}

/** The most common spacing of a sensor's samples; one minute for a lone sample, which has none. */
function typicalSpacing(rows: readonly LongRow[]): number {
  const counts = new Map<number, number>();
  for (let i = 1; i < rows.length; i++) {
    const spacing = rows[i]!.timestamp - rows[i - 1]!.timestamp;
    if (spacing > 0) counts.set(spacing, (counts.get(spacing) ?? 0) + 1);
  }
  let best = 60_000;
  let bestCount = 0;
  for (const [spacing, count] of counts) {
    if (count > bestCount) [best, bestCount] = [spacing, count];
  }
  return best;
}

function jsonValue(value: number | undefined): number | null {
  return value === undefined || Number.isNaN(value) ? null : value;
}

export interface PublisherOptions {
  clientId?: string;
  username?: string;
  password?: string;
  /** Unacknowledged QoS 1/2 messages allowed at once; default 100. */
  maxInflight?: number;
}

/**
 * An MQTT connection for one-shot publishing runs (replay, simulate): QoS 1 flow control through a window of
 * unacknowledged messages, and a lost connection that fails the run instead of being retried behind the user's
 * back. Must be ended with `end()` (waits for every acknowledgement) or `abort()`.
 */
export interface Publisher {
  /** Hands a message to the client; waits first while `maxInflight` messages are unacknowledged. */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2): Promise<void>;
  /** Waits for `promise` (a sleep), failing early when the connection is lost. */
  during<T>(promise: Promise<T>): Promise<T>;
  /** Waits for every acknowledgement, then disconnects. */
  end(): Promise<void>;
  /** Disconnects at once; unacknowledged messages may be lost. */
  abort(): Promise<void>;
}

/**
 * Connects a publisher.
 * @throws MagwatchError `MW_MQTT_CONNECT` when the broker cannot be reached; its methods throw `MW_MQTT_PUBLISH`
 *   once the broker goes away.
 */
export async function connectPublisher(url: string, options: PublisherOptions = {}): Promise<Publisher> {
  const broker = redactUrl(url);
  let client: MqttClient;
  try {
    client = await connectAsync(
      url,
      {
        clientId: options.clientId,
        username: options.username,
        password: options.password,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      },
      false,
    );
  } catch (error) {
    throw new MagwatchError(
      'MW_MQTT_CONNECT',
      `cannot connect to ${broker} (${(error as Error).message}); check --broker and that the broker runs`,
      { cause: error },
    );
  }

  const maxInflight = options.maxInflight ?? 100;
  const inflight = new Set<Promise<unknown>>();
  let lost: (error: Error) => void = () => {};
  const connectionLost = new Promise<never>((_resolve, reject) => {
    lost = reject;
  });
  connectionLost.catch(() => {});
  client.on('close', () =>
    lost(
      new MagwatchError(
        'MW_MQTT_PUBLISH',
        `lost the connection to ${broker} while publishing; check the broker`,
      ),
    ),
  );
  const during = <T>(promise: Promise<T>) => Promise.race([promise, connectionLost]);

  return {
    during,
    async publish(topic, payload, qos) {
      while (inflight.size >= maxInflight) await during(Promise.race(inflight));
      const sent: Promise<unknown> = client.publishAsync(topic, payload, { qos }).then(
        () => inflight.delete(sent),
        (error: Error) =>
          lost(new MagwatchError('MW_MQTT_PUBLISH', `publishing to ${topic} failed: ${error.message}`)),
      );
      inflight.add(sent);
    },
    async end() {
      await during(Promise.all(inflight));
      client.removeAllListeners('close');
      await client.endAsync();
    },
    async abort() {
      client.removeAllListeners('close');
      await client.endAsync(true);
    },
  };
}

export interface PublishOptions extends PublisherOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  url: string;
  /** Default 1. */
  qos?: 0 | 1 | 2;
  /** Data time per wall time: 1 is real time, 10 ten times faster, 0 as fast as the broker acknowledges. */
  speed?: number;
  /** Called after each message is handed to the client, with the count so far. */
  onProgress?: (published: number) => void;
  /** Sleep; tests swap it. Default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

export interface PublishSummary {
  readonly messages: number;
  readonly samples: number;
  /** Wall time from connection to the last acknowledgement, milliseconds. */
  readonly elapsedMs: number;
}

/**
 * Publishes the messages in order, each when the replay clock reaches its time, and resolves once the broker
 * has acknowledged all of them.
 * @throws MagwatchError `MW_MQTT_CONNECT` when the broker cannot be reached, `MW_MQTT_PUBLISH` when it goes away.
 */
export async function publishMessages(
  messages: readonly PublishMessage[],
  options: PublishOptions,
): Promise<PublishSummary> {
  const speed = options.speed ?? 1;
  const qos = options.qos ?? 1;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const publisher = await connectPublisher(options.url, options);

  const started = Date.now();
  const dataStart = messages[0]?.time ?? 0;
  let samples = 0;
  try {
    for (const [index, message] of messages.entries()) {
      if (speed > 0) {
        const waitMs = started + (message.time - dataStart) / speed - Date.now();
        if (waitMs > 0) await publisher.during(sleep(waitMs));
      }
      await publisher.publish(message.topic, message.payload, qos);
      samples += message.samples;
      options.onProgress?.(index + 1);
    }
    await publisher.end();
  } catch (error) {
    await publisher.abort();
    throw error;
  }
  return { messages: messages.length, samples, elapsedMs: Date.now() - started };
}
