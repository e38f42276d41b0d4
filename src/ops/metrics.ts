/**
 * The Prometheus metrics of the live detector (DESIGN section 4, Operations): ingest rate, windows, batch size,
 * inference latency, queue depth, drops, events and InfluxDB points. The pipeline calls them directly
 * (`metrics.samples.inc(n)`); sinks that keep their own counters are read at scrape time with `trackSink`.
 *
 * Labels stay low-cardinality (reasons, kinds): a per-sensor label would multiply series by the network's size.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { DropReason, SinkStats } from '../sinks/points.js';

export interface MetricsOptions {
  /** Also export Node.js process metrics (CPU, memory, event-loop lag). Default true. */
  readonly processMetrics?: boolean;
}

export interface MagwatchMetrics {
  /** Its own registry, so several pipelines (tests, the demo) never share counters. */
  readonly registry: Registry;
  /** Samples decoded by the ingest. */
  readonly samples: Counter;
  /** MQTT messages received. */
  readonly messages: Counter;
  /** Invalid messages or samples, by `reason` (the ingest's invalid reasons). */
  readonly invalid: Counter<'reason'>;
  /** Windows scored by the engine. */
  readonly windows: Counter;
  /** Windows per inference batch. */
  readonly batchSize: Histogram;
  /** Wall time of one inference batch, in seconds. */
  readonly inferenceSeconds: Histogram;
  /** Windows waiting for inference. */
  readonly queueDepth: Gauge;
  /** Samples or windows dropped by the stream, by `reason` (duplicate, late, gap, overflow, …). */
  readonly drops: Counter<'reason'>;
  /** Channel windows emptied by a gap longer than `stream.maxGapMs`: samples lost upstream or a sensor paused. */
  readonly gapResets: Counter;
  /** Events emitted, by `kind` (`anomaly.start`, `sensor.silent`, …). */
  readonly events: Counter<'kind'>;
  /** 1 while connected to the broker, else 0. */
  readonly brokerConnected: Gauge;
  /** Points written to InfluxDB or the line-protocol file. */
  readonly pointsWritten: Counter;
  /** Points not written, by `reason` (overflow, rejected, invalid, failed, closed). */
  readonly pointsDropped: Counter<'reason'>;
  /** Points waiting to be written. */
  readonly pointsBuffered: Gauge;
  /** Reads a sink's counters at every scrape into the three `points*` metrics; call once per sink. */
  trackSink(sink: { stats(): SinkStats }): void;
}

/** Creates the metrics on a fresh registry. */
export function createMetrics(options: MetricsOptions = {}): MagwatchMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'magwatch_' });
  const registers = [registry];

  const sinks: Array<{ sink: { stats(): SinkStats }; last: SinkStats | undefined }> = [];
  // Created first so that its collect hook, which also feeds the two metrics below, runs first on a scrape.
  const pointsWritten: Counter = new Counter({
    name: 'magwatch_points_written_total',
    help: 'Points written to InfluxDB or the line-protocol file.',
    registers,
    collect: () => collectSinks(),
  });
  const pointsDropped = new Counter({
    name: 'magwatch_points_dropped_total',
    help: 'Points not written, by reason.',
    labelNames: ['reason'],
    registers,
  });
  const pointsBuffered = new Gauge({
    name: 'magwatch_points_buffered',
    help: 'Points waiting to be written.',
    registers,
  });

  /** Counters only go up, so each scrape adds what each sink counted since the previous one. */
  const collectSinks = (): void => {
    let buffered = 0;
    for (const entry of sinks) {
      const now = entry.sink.stats();
      const last = entry.last;
      const written = now.written - (last?.written ?? 0);
      if (written > 0) pointsWritten.inc(written);
      for (const [reason, count] of Object.entries(now.dropped) as Array<[DropReason, number]>) {
        const delta = count - (last?.dropped[reason] ?? 0);
        if (delta > 0) pointsDropped.inc({ reason }, delta);
      }
      buffered += now.buffered;
      entry.last = now;
    }
    pointsBuffered.set(buffered);
  };

  return {
    registry,
    samples: new Counter({
      name: 'magwatch_ingest_samples_total',
      help: 'Samples decoded by the ingest.',
      registers,
    }),
    messages: new Counter({
      name: 'magwatch_ingest_messages_total',
      help: 'MQTT messages received.',
      registers,
    }),
    invalid: new Counter({
      name: 'magwatch_ingest_invalid_total',
      help: 'Invalid messages or samples, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    windows: new Counter({ name: 'magwatch_windows_scored_total', help: 'Windows scored.', registers }),
    batchSize: new Histogram({
      name: 'magwatch_inference_batch_size',
      help: 'Windows per inference batch.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    }),
    inferenceSeconds: new Histogram({
      name: 'magwatch_inference_duration_seconds',
      help: 'Wall time of one inference batch.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'magwatch_queue_depth',
      help: 'Windows waiting for inference.',
      registers,
    }),
    drops: new Counter({
      name: 'magwatch_dropped_total',
      help: 'Samples or windows dropped by the stream, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    gapResets: new Counter({
      name: 'magwatch_gap_resets_total',
      help: 'Channel windows emptied by a gap longer than stream.maxGapMs (samples lost upstream or a sensor paused).',
      registers,
    }),
    events: new Counter({
      name: 'magwatch_events_total',
      help: 'Events emitted, by kind.',
      labelNames: ['kind'],
      registers,
    }),
    brokerConnected: new Gauge({
      name: 'magwatch_broker_connected',
      help: '1 while connected to the MQTT broker.',
      registers,
    }),
    pointsWritten,
    pointsDropped,
    pointsBuffered,
    trackSink(sink) {
      sinks.push({ sink, last: undefined });
    },
  };
}
