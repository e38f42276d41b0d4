/**
 * The one schema of `magwatch run`'s configuration, with every default. `config/default.yaml` documents the
 * same keys; `loadConfig` adds environment overrides and validation errors that name each key.
 *
 * Units are in the key names (`…Ms`, `…Bytes`, `…Points`). Keys marked secret are redacted by `redactConfig`.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_INGEST_TOPIC, ingestSubscriptionSchema } from '../ingest/mqtt.js';
import { LIVE_DETECTOR_DEFAULTS } from '../stream/detector.js';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
/** Optional strings also accept YAML `null` (an empty `key:` line), which means unset. */
const optionalString = z
  .string()
  .min(1)
  .nullish()
  .transform((v) => v ?? undefined);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const mqttSchema = z
  .strictObject({
    /** Broker URL: `mqtt://`, `mqtts://`, `ws://` or `wss://`. */
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^/]/, 'expected a broker URL such as mqtt://127.0.0.1:1883')
      .default('mqtt://127.0.0.1:1883'),
    /** Ingest topic pattern with named levels (`+sensor`, `+observatory`), used when `subscriptions` is unset. */
    topic: z.string().min(1).default(DEFAULT_INGEST_TOPIC),
    /** Payload format of `topic`. */
    format: z.enum(['magwatch', 'impf']).default('magwatch'),
    /** Several topics with their own format, group and field mapping; replaces `topic` and `format`. */
    subscriptions: z.array(ingestSubscriptionSchema).min(1).optional(),
    username: optionalString,
    /** Secret. */
    password: optionalString,
    /** Fixed so that, with `clean: false`, the broker keeps the session and queues QoS 1 samples while away. */
    clientId: z
      .string()
      .min(1)
      .default(() => `magwatch-${hostname()}`),
    /** Clean session; false lets the broker queue QoS 1/2 messages during a restart of magwatch. */
    clean: z.boolean().default(false),
    /** Subscription QoS for `topic`. */
    qos: z.literal([0, 1, 2]).default(1),
    /** PEM file paths for TLS. */
    ca: optionalString,
    cert: optionalString,
    key: optionalString,
    /** Larger payloads are counted as invalid and skipped. */
    maxMessageBytes: positiveInt.default(1024 * 1024),
  })
  .superRefine((mqtt, context) => {
    if (Boolean(mqtt.cert) !== Boolean(mqtt.key)) {
      context.addIssue({
        code: 'custom',
        path: [mqtt.cert ? 'key' : 'cert'],
        message: 'mqtt.cert and mqtt.key go together; set both or neither',
      });
    }
  });

const modelSchema = z.strictObject({
  /** Model bundle directory. */
  path: z.string().min(1).default('models/site'),
  /** `auto` prefers ONNX Runtime and falls back to TensorFlow.js. */
  engine: z.enum(['auto', 'onnx', 'tfjs']).default('auto'),
  /** TensorFlow.js backend to try first (`tensorflow`, `wasm`, `cpu`); unset: the fastest available. */
  backend: optionalString,
  /** Inference worker threads, each batch split between them (both engines); unset: one per core, at most 4. */
  threads: positiveInt.optional(),
});

const streamSchema = z.strictObject({
  // The four time settings have no default here: unset, the detector sizes them from the bundle's cadence.
  /** A longer gap between two samples of a channel resets its window buffer. */
  maxGapMs: positiveInt.optional(),
  /** Windows per inference batch. */
  maxBatch: positiveInt.default(LIVE_DETECTOR_DEFAULTS.maxBatch),
  /** Longest wait of a window for its batch. */
  maxDelayMs: nonNegativeInt.default(LIVE_DETECTOR_DEFAULTS.maxDelayMs),
  /** Windows waiting for inference beyond this drop the oldest, counted. */
  maxQueue: positiveInt.default(LIVE_DETECTOR_DEFAULTS.maxQueue),
  /** Width of a vote bucket. */
  bucketMs: positiveInt.optional(),
  /** A bucket is final this long after its end even if a channel has not been scored past it. */
  latenessMs: nonNegativeInt.optional(),
  /** Normal buckets in a row that end an anomaly event. */
  minNormal: positiveInt.default(LIVE_DETECTOR_DEFAULTS.minNormal),
  /** A channel without samples this long gets a `sensor.silent` event. */
  silentAfterMs: positiveInt.optional(),
});

const influxSchema = z
  .strictObject({
    /** `http://host:8086/<database>`; unset: points go to `file` as line protocol. */
    url: optionalString,
    username: optionalString,
    /** Secret. */
    password: optionalString,
    /** Points per write request. */
    batchSize: positiveInt.default(500),
    /** Longest wait of a point for its batch. */
    flushIntervalMs: positiveInt.default(1000),
    /** Points kept while InfluxDB is away; the oldest are dropped beyond. */
    maxBufferPoints: positiveInt.default(100_000),
    /** Line-protocol file used when `url` is unset. */
    file: z.string().min(1).default('magwatch-points.lp'),
  })
  .superRefine((influx, context) => {
    if (influx.maxBufferPoints < influx.batchSize) {
      context.addIssue({
        code: 'custom',
        path: ['maxBufferPoints'],
        message: `must be at least influx.batchSize (${influx.batchSize})`,
      });
    }
  });

const eventsSchema = z.strictObject({
  /** First topic level(s) of `anomalies/`, `status/` and `sensors/`. */
  topicPrefix: z
    .string()
    .regex(/^[^$+#/\0][^+#\0]*$/, 'expected topic levels without +, # or a leading $ or /, e.g. magwatch')
    .refine((p) => !p.split('/').includes(''), 'expected no empty topic level')
    .default('magwatch'),
});

const httpSchema = z.strictObject({
  /** Serve `/healthz`, `/readyz`, `/metrics` (and the dashboard). */
  enabled: z.boolean().default(true),
  /** Listen address; loopback by default, as metrics name the site's sensors. */
  host: z.string().min(1).default('127.0.0.1'),
  /** 9464 is the port Prometheus exporters of OpenTelemetry use; 0 picks a free port (logged). */
  port: z.number().int().min(0).max(65_535).default(9464),
  /** Secret. When set, every path but `/healthz` needs `Authorization: Bearer <token>` or `?token=`. */
  token: optionalString,
});

const dashboardSchema = z.strictObject({
  /** Serve the live dashboard on the HTTP server. */
  enabled: z.boolean().default(false),
});

const logSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
});

// Cross-key checks sit on their section: a refinement of the whole config would not run while another
// section is invalid, and every problem is to be reported at once.
export const configSchema = z.strictObject({
  mqtt: mqttSchema.prefault({}),
  model: modelSchema.prefault({}),
  stream: streamSchema.prefault({}),
  influx: influxSchema.prefault({}),
  events: eventsSchema.prefault({}),
  http: httpSchema.prefault({}),
  dashboard: dashboardSchema.prefault({}),
  log: logSchema.prefault({}),
});

/** The validated, defaulted configuration of `magwatch run`. */
export type MagwatchConfig = z.output<typeof configSchema>;
/** What a YAML file may contain: every key optional. */
export type MagwatchConfigInput = z.input<typeof configSchema>;

/** Key paths whose values are secrets, redacted in logs. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['mqtt.password', 'influx.password', 'http.token']);
