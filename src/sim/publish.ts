import { setTimeout as sleepFor } from 'node:timers/promises';
import { MagwatchError } from '../errors.js';
import { connectPublisher } from '../ingest/publish.js';
import { groupOf, type LongRow } from '../ingest/table.js';
import { fillTopic } from '../ingest/topic.js';
import type { Label } from './anomalies.js';
import type { SimulationStream } from './simulate.js';

/** Default publish topic of simulated samples, one level per sensor. */
export const DEFAULT_SIMULATE_TOPIC = 'magwatch/raw/{sensor}';

/** Clock of a paced run; tests swap it for a virtual one. */
export interface PublishClock {
  now(): number;
  /** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface SimulationPublishOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`; credentials may sit in the URL. */
  readonly url: string;
  /** Topic template; `{sensor}` and `{group}` are filled per sample. Default {@link DEFAULT_SIMULATE_TOPIC}. */
  readonly topic?: string;
  /** Publish each time step when the wall clock reaches it (true), or as fast as the broker takes them. */
  readonly realtime: boolean;
  /** With `realtime`, data seconds per wall-clock second; default 1. */
  readonly speed?: number;
  /** Stops publishing early; what was handed to the client is still delivered. */
  readonly signal?: AbortSignal;
  /** Called once per label when the first sample at or after its start is published. */
  readonly onAnomaly?: (label: Label) => void;
  /** Unacknowledged QoS 1 messages allowed at once; default 500. */
  readonly maxInflight?: number;
  readonly clock?: PublishClock;
}

export interface SimulationPublishSummary {
  readonly messages: number;
  /** True when `signal` stopped the run before its end. */
  readonly stopped: boolean;
}

const systemClock: PublishClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal }).catch(() => {}),
};

/**
 * Publishes a simulation in the magwatch ingest format, one message per sensor and sample
 * (`{"ts": <epoch ms>, "b_x": …, "b_y": …, "b_z": …}`, QoS 1, not retained), in time order, and resolves
 * once the broker has acknowledged every message. Rows are computed as they are sent, so a long run
 * needs no memory for its data.
 *
 * @throws MagwatchError `MW_MQTT_CONNECT` when the broker cannot be reached, `MW_MQTT_PUBLISH` when it
 *   goes away, `MW_MQTT_TOPIC_TEMPLATE` for a topic that names an unknown field or leaves a wildcard.
 */
export async function publishSimulation(
  stream: SimulationStream,
  options: SimulationPublishOptions,
): Promise<SimulationPublishSummary> {
  const template = options.topic ?? DEFAULT_SIMULATE_TOPIC;
  const topics = topicsBySensor(stream.sensors, template);
  const clock = options.clock ?? systemClock;
  const publisher = await connectPublisher(options.url, { maxInflight: options.maxInflight ?? 500 });

  const pending = [...stream.labels];
  const wallStart = clock.now();
  const dataStart = stream.timeOf(0);
  let stepTime = Number.NaN;
  let messages = 0;
  let stopped = false;

  try {
    for (const row of stream) {
      if (options.signal?.aborted) {
        stopped = true;
        break;
      }
      if (row.timestamp !== stepTime) {
        stepTime = row.timestamp;
        if (options.realtime) {
          const waitMs = wallStart + (stepTime - dataStart) / (options.speed ?? 1) - clock.now();
          if (waitMs > 0) await publisher.during(clock.sleep(waitMs, options.signal));
          if (options.signal?.aborted) {
            stopped = true;
            break;
          }
        }
        while (pending.length > 0 && pending[0]!.start <= stepTime) options.onAnomaly?.(pending.shift()!);
      }
      await publisher.publish(topics.get(row.sensor)!, ingestPayload(row), 1);
      messages++;
    }
    await publisher.end();
    return { messages, stopped };
  } catch (error) {
    await publisher.abort();
    throw error;
  }
}

/** The ingest payload of one row: epoch ms and the components rounded to 1 pT, as the CSV writer has them. */
export function ingestPayload(row: LongRow): string {
  const sample: Record<string, number> = { ts: row.timestamp };
  for (const [component, value] of Object.entries(row.values))
    sample[component] = Math.round(value * 1000) / 1000;
  return JSON.stringify(sample);
}

function topicsBySensor(sensors: readonly string[], template: string): Map<string, string> {
  const topics = new Map(
    sensors.map((sensor) => [sensor, fillTopic(template, { sensor, group: groupOf(sensor) })]),
  );
  if (sensors.length > 1 && new Set(topics.values()).size < sensors.length) {
    // The ingest payload carries no sensor id: sensors sharing a topic would merge into one.
    throw new MagwatchError(
      'MW_MQTT_TOPIC_TEMPLATE',
      `topic "${template}" is the same for several sensors; put {sensor} in it, e.g. ${DEFAULT_SIMULATE_TOPIC}`,
    );
  }
  return topics;
}
