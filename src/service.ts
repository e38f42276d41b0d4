import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { type Observable, Subject, type Subscription } from 'rxjs';
import { redactUrl } from './config/load.js';
import type { MagwatchConfig } from './config/schema.js';
import { type Bundle, loadBundle } from './detector/bundle.js';
import type { Engine } from './detector/engine.js';
import { createEngine } from './detector/engines/index.js';
import { MqttIngest } from './ingest/mqtt.js';
import { componentFieldsFor } from './ingest/payload.js';
import { type HttpServer, type RouteHandler, startHttpServer } from './ops/http.js';
import { createMetrics, type MagwatchMetrics } from './ops/metrics.js';
import { createPointSink } from './sinks/create.js';
import { MqttEventPublisher } from './sinks/mqtt-events.js';
import { eventPoint, type PointSink, rmsePoint, votePoint } from './sinks/points.js';
import { LiveDetector } from './stream/detector.js';
import type { AnomalyEvent, Sample } from './stream/types.js';

/** The running live detector: `magwatch run` and `magwatch demo` start one and must `stop()` it. */
export interface LiveService {
  readonly bundle: Bundle;
  readonly engine: Engine;
  readonly detector: LiveDetector;
  readonly ingest: MqttIngest;
  readonly metrics: MagwatchMetrics;
  readonly http: HttpServer | undefined;
  /** Every sample as ingest decoded it; the dashboard draws field values from it. */
  readonly samples$: Observable<Sample>;
  /**
   * Stops ingest, scores what is pending, ends open events, then flushes the events and the InfluxDB buffer.
   * Safe to call twice.
   */
  stop(): Promise<void>;
}

export interface LiveServiceHooks {
  /** Extra HTTP routes (the dashboard), given the service's streams once they exist. */
  routes?(service: Omit<LiveService, 'http' | 'stop'>): Readonly<Record<string, RouteHandler>>;
  onEvent?(event: AnomalyEvent): void;
}

/** Identifies the bundle in every event: a short digest of its manifest, scalers and thresholds. */
export function bundleVersion(bundle: Bundle): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([bundle.manifest, bundle.scalers, bundle.thresholds]))
    .digest('hex');
  return `v${bundle.manifest.version}-${digest.slice(0, 12)}`;
}

/** How often the ingest and stream counters are copied into the Prometheus metrics. */
const METRICS_SYNC_MS = 1000;
const GAP_LOG_INTERVAL_MS = 60_000;

/** Starts the live detector from a validated configuration: model, engine, sinks, HTTP, then ingest last. */
export async function startLiveService(
  config: MagwatchConfig,
  logger: Logger,
  hooks: LiveServiceHooks = {},
): Promise<LiveService> {
  const bundle = await loadBundle(config.model.path);
  const engine = await createEngine(
    bundle,
    { engine: config.model.engine, backend: config.model.backend, threads: config.model.threads },
    (info, message) => logger.info(info, message),
  );
  const version = bundleVersion(bundle);
  const groups = [...new Set(Object.values(bundle.manifest.channels).map((c) => c.group))].sort();
  const metrics = createMetrics();

  const detector = new LiveDetector({
    bundle,
    engine,
    bundleVersion: version,
    options: config.stream,
    onError: (error) => logger.error({ err: error }, 'inference batch failed; its windows are lost'),
  });

  const sink: PointSink = createPointSink(config.influx, logger);
  metrics.trackSink(sink);
  const tls = { ca: config.mqtt.ca, cert: config.mqtt.cert, key: config.mqtt.key };
  const publisher = new MqttEventPublisher({
    url: config.mqtt.url,
    clientId: `${config.mqtt.clientId}-events`,
    username: config.mqtt.username,
    password: config.mqtt.password,
    tls,
    topicPrefix: config.events.topicPrefix,
    logger,
  });
  publisher.resetStatus(groups);

  const subscriptions: Subscription[] = [
    detector.scores$.subscribe((score) => sink.write([rmsePoint(score)])),
    detector.votes$.subscribe((vote) => sink.write([votePoint(vote)])),
    detector.events$.subscribe((event) => {
      publisher.publish(event);
      sink.write([eventPoint(event)]);
      metrics.events.inc({ kind: event.event });
      logger.info(
        {
          id: event.id,
          scope: event.scope,
          group: event.group,
          sensor: event.sensor,
          start: event.start,
          end: event.end,
          votes: event.peakVotes,
          required: event.requiredVotes,
          channels: event.channels.map((c) => c.channel),
        },
        event.event,
      );
      hooks.onEvent?.(event);
    }),
    detector.batches$.subscribe((batch) => {
      metrics.batchSize.observe(batch.size);
      metrics.inferenceSeconds.observe(batch.latencyMs / 1000);
      metrics.queueDepth.set(batch.queueDepth);
    }),
  ];

  const bundleFields = componentFieldsFor(Object.values(bundle.manifest.channels).map((c) => c.component));
  const ingest = new MqttIngest({
    url: config.mqtt.url,
    // A magwatch-format subscription without a field mapping also reads the bundle's components by name.
    subscriptions: (
      config.mqtt.subscriptions ?? [
        { topic: config.mqtt.topic, format: config.mqtt.format, qos: config.mqtt.qos },
      ]
    ).map((s) => (s.format === 'impf' || s.fields ? s : { ...s, fields: bundleFields })),
    clientId: config.mqtt.clientId,
    username: config.mqtt.username,
    password: config.mqtt.password,
    tls,
    clean: config.mqtt.clean,
    maxMessageBytes: config.mqtt.maxMessageBytes,
    logger,
  });
  const samples = new Subject<Sample>();
  subscriptions.push(
    ingest.samples$.subscribe((sample) => {
      detector.push(sample);
      samples.next(sample);
    }),
  );

  const sync = startMetricsSync(metrics, ingest, detector, logger, detector.options.maxGapMs);
  const partial = { bundle, engine, detector, ingest, metrics, samples$: samples.asObservable() };
  let http: HttpServer | undefined;
  if (config.http.enabled) {
    http = await startHttpServer({
      host: config.http.host,
      port: config.http.port,
      token: config.http.token,
      registry: metrics.registry,
      ready: () => {
        const broker = ingest.counters().connected;
        return { ready: broker, checks: { broker, model: true } };
      },
      routes: hooks.routes?.(partial),
      onError: (error, path) => logger.error({ err: error, path }, 'http handler failed'),
    });
  }

  try {
    await ingest.start();
  } catch (error) {
    // Refused or unreachable broker: release what was opened so a caller (or a test) can go on.
    clearInterval(sync);
    for (const subscription of subscriptions) subscription.unsubscribe();
    await detector.close();
    await publisher.close();
    await sink.close();
    await http?.close();
    await engine.dispose();
    throw error;
  }
  const channels = Object.keys(bundle.manifest.channels);
  logger.info(
    {
      broker: redactUrl(config.mqtt.url),
      topics: (config.mqtt.subscriptions ?? [{ topic: config.mqtt.topic, format: config.mqtt.format }]).map(
        (s) => `${s.topic} (${s.format ?? 'magwatch'})`,
      ),
      bundle: bundle.dir,
      bundleVersion: version,
      channels: channels.length,
      groups,
      window: bundle.manifest.window,
      step: bundle.manifest.step,
      vote: bundle.manifest.vote,
      ...(bundle.manifest.cadenceMs ? { cadenceMs: bundle.manifest.cadenceMs } : {}),
      // Time settings in force, which follow the bundle's cadence unless the configuration sets them.
      stream: pickTimes(detector.options),
      engine: engine.name,
      backend: engine.backend,
      points: config.influx.url ? redactUrl(config.influx.url) : config.influx.file,
      http: http?.url,
    },
    'magwatch started',
  );

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await ingest.close();
      await detector.flush();
      await detector.close();
      clearInterval(sync);
      for (const subscription of subscriptions) subscription.unsubscribe();
      samples.complete();
      await publisher.close();
      await sink.close();
      await http?.close();
      await engine.dispose();
      logger.info(
        { ...detector.stats(), points: sink.stats(), mqttEvents: publisher.stats() },
        'magwatch stopped',
      );
    })();
    return stopping;
  };
  return { ...partial, http, stop };
}

/**
 * Copies counters into Prometheus once a second, so the per-sample path does no metrics work, and warns (at most
 * once a minute) when windows were emptied by gaps: a whole network losing samples at once, for example to a
 * broker dropping its queue, would otherwise log one line per channel.
 */
function startMetricsSync(
  metrics: MagwatchMetrics,
  ingest: MqttIngest,
  detector: LiveDetector,
  logger: Logger,
  maxGapMs: number,
): NodeJS.Timeout {
  let gapResetsLogged = 0;
  let gapLoggedAt = Number.NEGATIVE_INFINITY;
  const last = new Map<string, number>();
  const add = (key: string, total: number, counter: { inc(n: number): void }) => {
    const delta = total - (last.get(key) ?? 0);
    if (delta > 0) counter.inc(delta);
    last.set(key, total);
  };
  const timer = setInterval(() => {
    const ingested = ingest.counters();
    const stream = detector.stats();
    add('messages', ingested.messages, metrics.messages);
    add('samples', ingested.samples, metrics.samples);
    add('windows', stream.windowsScored, metrics.windows);
    add('gapResets', stream.gapResets, metrics.gapResets);
    if (stream.gapResets > gapResetsLogged && Date.now() - gapLoggedAt >= GAP_LOG_INTERVAL_MS) {
      logger.warn(
        { windowsRestarted: stream.gapResets - gapResetsLogged, maxGapMs },
        'samples missing: channel windows restarted after a gap; check the sensors and, if every channel gapped at once, the broker log for dropped messages (max_queued_messages)',
      );
      gapResetsLogged = stream.gapResets;
      gapLoggedAt = Date.now();
    }
    metrics.brokerConnected.set(ingested.connected ? 1 : 0);
    for (const [reason, count] of Object.entries(ingested.invalid)) {
      add(`invalid:${reason}`, count ?? 0, { inc: (n) => metrics.invalid.inc({ reason }, n) });
    }
    for (const [reason, count] of Object.entries(stream.dropped)) {
      add(`drop:${reason}`, count, { inc: (n) => metrics.drops.inc({ reason }, n) });
    }
  }, METRICS_SYNC_MS);
  timer.unref();
  return timer;
}

function pickTimes({ maxGapMs, bucketMs, latenessMs, silentAfterMs }: LiveDetector['options']) {
  return { maxGapMs, bucketMs, latenessMs, silentAfterMs };
}
