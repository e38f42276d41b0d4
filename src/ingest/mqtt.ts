import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, ErrorWithReasonCode, type IClientOptions, type MqttClient } from 'mqtt';
import { type Observable, Subject } from 'rxjs';
import { z } from 'zod';
import { MagwatchError } from '../errors.js';
import type { Sample } from '../stream/types.js';
import { decodeImpf } from './impf.js';
import {
  DEFAULT_MAX_FUTURE_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  type DecodeResult,
  decodeMagwatch,
  type InvalidReason,
  magwatchFormatSchema,
  type PayloadLimits,
} from './payload.js';
import { compileTopicPattern, type TopicPattern } from './topic.js';

/** The default ingest topic: one sensor per topic level, `magwatch` JSON payloads. */
export const DEFAULT_INGEST_TOPIC = 'magwatch/raw/+sensor';

/** One subscription of the ingest: a topic pattern and how to read what arrives on it. */
export const ingestSubscriptionSchema = magwatchFormatSchema.extend({
  /** Topic pattern with named levels, e.g. `site/+observatory/+sensor`; default `magwatch/raw/+sensor`. */
  topic: z.string().min(1).default(DEFAULT_INGEST_TOPIC),
  /** Payload format; default `magwatch`. */
  format: z.enum(['magwatch', 'impf']).default('magwatch'),
  /** Group for every sample of this subscription; default the topic's group/observatory level or the reference rule. */
  group: z.string().min(1).optional(),
  /** Subscription QoS; default 1. */
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1),
});

export type IngestSubscription = z.input<typeof ingestSubscriptionSchema>;

/** The two methods of pino the ingest uses, so a pino logger or a test double fits. */
export interface IngestLogger {
  warn(bindings: object, message: string): void;
  info(bindings: object, message: string): void;
}

export interface MqttIngestOptions extends Omit<PayloadLimits, 'now'> {
  /** Broker URL: `mqtt://host:1883`, `mqtts://…`, `ws://…`, `wss://…`. */
  url: string;
  /** Default one subscription to `magwatch/raw/+sensor` in the `magwatch` format. */
  subscriptions?: IngestSubscription[];
  /** Default `magwatch-<random>`; set a fixed one with `clean: false` so the broker keeps the session. */
  clientId?: string;
  username?: string;
  password?: string;
  /** PEM file paths for TLS; read once at `start()`. */
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** Clean session; default true. With false the broker queues QoS 1/2 messages while the ingest is away. */
  clean?: boolean;
  /** First reconnect delay, doubled after each failed attempt. Milliseconds; default 1000. */
  reconnectPeriodMs?: number;
  /** Longest reconnect delay. Milliseconds; default 30000. */
  maxReconnectPeriodMs?: number;
  /** Timeout of one connection attempt. Milliseconds; default 10000. */
  connectTimeoutMs?: number;
  /** How long `start()` waits for the first connection before it fails. Milliseconds; default 30000, 0 = forever. */
  startTimeoutMs?: number;
  /** At most one warning per invalid reason per this interval. Milliseconds; default 60000. */
  warnIntervalMs?: number;
  /** Default: no logging. */
  logger?: IngestLogger;
  /** Clock for the timestamp bound and the warning rate; default `Date.now`. */
  now?: () => number;
}

/** A snapshot of the ingest's counters since it was created. */
export interface IngestCounters {
  /** Messages received on any subscription. */
  readonly messages: number;
  /** Samples decoded and emitted. */
  readonly samples: number;
  /** Invalid messages or samples, by reason. */
  readonly invalid: Readonly<Partial<Record<InvalidReason, number>>>;
  /** Successful connections after the first. */
  readonly reconnects: number;
  readonly connected: boolean;
}

interface CompiledSubscription {
  readonly topic: TopicPattern;
  readonly qos: 0 | 1 | 2;
  readonly decode: (fields: Record<string, string>, payload: Buffer) => DecodeResult;
}

/** Connack reason codes that retrying will not fix: bad protocol, identifier, credentials or authorisation. */
const REFUSED_FOR_GOOD = new Set([1, 2, 4, 5, 128, 130, 133, 134, 135, 140]);

/**
 * Subscribes to the ingest topics, decodes each message and emits its samples on `samples$`. A bad message is
 * counted by reason and logged at a limited rate; it never ends the stream. Reconnects with doubling delays.
 * Subscribe to `samples$` before `start()`; call `close()` when done, which completes `samples$`.
 */
export class MqttIngest {
  private readonly subject = new Subject<Sample>();
  /** Hot: samples that arrive while nobody subscribes are lost. */
  readonly samples$: Observable<Sample> = this.subject.asObservable();

  private readonly options: MqttIngestOptions;
  private readonly subscriptions: CompiledSubscription[];
  private readonly warnings: RateLimitedWarnings;
  private readonly now: () => number;
  private client: MqttClient | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private pendingStart: { resolve: () => void; reject: (error: MagwatchError) => void } | undefined;
  private failedAttempts = 0;
  private connections = 0;
  private closing = false;
  private count = { messages: 0, samples: 0, reconnects: 0 };
  private invalid: Partial<Record<InvalidReason, number>> = {};

  constructor(options: MqttIngestOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.warnings = new RateLimitedWarnings(options.logger, options.warnIntervalMs ?? 60_000, this.now);
    const limits: PayloadLimits = {
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxFutureMs: options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS,
      now: this.now,
    };
    this.subscriptions = (options.subscriptions ?? [{}]).map((input, index) => {
      const parsed = ingestSubscriptionSchema.safeParse(input);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new MagwatchError(
          'MW_MQTT_SUBSCRIPTION',
          `ingest subscription ${index + 1}: ${issue?.path.join('.') || 'value'}: ${issue?.message}; fix it in the configuration`,
        );
      }
      const { topic, format, qos, ...decodeOptions } = parsed.data;
      const decode =
        format === 'impf'
          ? (fields: Record<string, string>, payload: Buffer) =>
              decodeImpf(fields, payload, { ...limits, ...decodeOptions })
          : (fields: Record<string, string>, payload: Buffer) =>
              decodeMagwatch(fields, payload, { ...limits, ...decodeOptions });
      return { topic: compileTopicPattern(topic), qos, decode };
    });
  }

  /**
   * Connects and subscribes; resolves once the first subscription is granted. Rejects with a MagwatchError when
   * the URL or TLS files are bad, the broker refuses the credentials or a subscription, or no connection comes
   * within `startTimeoutMs`; the ingest is closed then.
   */
  async start(): Promise<void> {
    if (this.client) throw new Error('MqttIngest.start() called twice');
    const options = this.clientOptions();
    let client: MqttClient;
    try {
      client = connect(this.options.url, options);
    } catch (error) {
      throw new MagwatchError(
        'MW_MQTT_URL',
        `cannot use the broker URL "${redactUrl(this.options.url)}" (${(error as Error).message}); expected e.g. mqtt://127.0.0.1:1883`,
      );
    }
    this.client = client;
    const where = { broker: redactUrl(this.options.url), clientId: client.options.clientId };

    const started = new Promise<void>((resolve, reject) => {
      this.pendingStart = { resolve, reject };
    });
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    if (timeoutMs > 0) {
      this.startTimer = setTimeout(() => {
        const message = `no connection to ${where.broker} within ${timeoutMs} ms; check the broker URL and that it runs`;
        this.settleStart(new MagwatchError('MW_MQTT_CONNECT', message));
      }, timeoutMs);
    }

    client.on('connect', (connack) => this.onConnect(client, where, connack.sessionPresent));
    client.on('error', (error) => {
      if (error instanceof ErrorWithReasonCode && REFUSED_FOR_GOOD.has(error.code)) {
        const message = `broker ${where.broker} refused the connection (${error.message}); check username, password and client id`;
        this.settleStart(new MagwatchError('MW_MQTT_REFUSED', message));
      }
      this.warnings.warn('connection', { ...where, err: error.message }, 'mqtt connection error');
    });
    client.on('close', () => this.scheduleReconnect(where));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    batchAcknowledgements(client);
    sendWithoutDelay(client);

    try {
      await started;
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Counters since creation; cheap enough to read on every metrics scrape. */
  counters(): IngestCounters {
    return {
      ...this.count,
      invalid: { ...this.invalid },
      connected: this.client?.connected ?? false,
    };
  }

  /** Disconnects, stops reconnecting and completes `samples$`. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.settleStart(new MagwatchError('MW_MQTT_CLOSED', 'the MQTT ingest was closed before it connected'));
    const client = this.client;
    if (client) await client.endAsync(!client.connected);
    this.options.logger?.info(
      { broker: redactUrl(this.options.url), ...this.counters() },
      'mqtt ingest closed',
    );
    this.subject.complete();
  }

  /** Resolves `start()` (no error) or rejects it; later calls do nothing. */
  private settleStart(error?: MagwatchError): void {
    const pending = this.pendingStart;
    if (!pending) return;
    this.pendingStart = undefined;
    clearTimeout(this.startTimer);
    if (error) pending.reject(error);
    else pending.resolve();
  }

  private onConnect(client: MqttClient, where: object, sessionPresent: boolean): void {
    this.failedAttempts = 0;
    if (this.connections > 0) this.count.reconnects += 1;
    this.connections += 1;
    this.options.logger?.info({ ...where, sessionPresent }, 'mqtt connected');
    // A kept session still holds our subscriptions; subscribing again would replay retained messages.
    if (sessionPresent) {
      this.settleStart();
      return;
    }
    this.subscribeAll(client).then(
      () => this.settleStart(),
      (error: Error) => {
        this.options.logger?.warn({ ...where, err: error.message }, 'mqtt subscription failed');
        // A refusal is final; anything else is a lost connection, and the next connect subscribes again.
        if (error instanceof MagwatchError) this.settleStart(error);
      },
    );
  }

  private async subscribeAll(client: MqttClient): Promise<void> {
    const granted = await client.subscribeAsync(
      Object.fromEntries(this.subscriptions.map(({ topic, qos }) => [topic.subscription, { qos }])),
    );
    const refused = granted.filter((grant) => grant.qos === 128);
    if (refused.length > 0) {
      throw new MagwatchError(
        'MW_MQTT_SUBSCRIBE',
        `broker refused the subscription to ${refused.map((grant) => grant.topic).join(', ')}; check the broker's ACL for this user`,
      );
    }
  }

  /** Reconnects by hand, since MQTT.js retries at a fixed period and we want doubling delays. */
  private scheduleReconnect(where: object): void {
    if (this.closing || this.reconnectTimer) return;
    const base = this.options.reconnectPeriodMs ?? 1000;
    const delayMs = Math.min(base * 2 ** this.failedAttempts, this.options.maxReconnectPeriodMs ?? 30_000);
    this.failedAttempts += 1;
    this.warnings.warn('connection', { ...where, retryInMs: delayMs }, 'mqtt disconnected');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closing) this.client?.reconnect();
    }, delayMs);
  }

  private onMessage(topic: string, payload: Buffer): void {
    this.count.messages += 1;
    let fields: Record<string, string> | undefined;
    const subscription = this.subscriptions.find((candidate) => {
      fields = candidate.topic.match(topic);
      return fields !== undefined;
    });
    if (!subscription || !fields) {
      this.countInvalid('unmatched_topic', topic, 'no subscription pattern matches the topic');
      return;
    }
    const { samples, invalid } = subscription.decode(fields, payload);
    for (const item of invalid) this.countInvalid(item.reason, topic, item.detail);
    this.count.samples += samples.length;
    for (const sample of samples) this.subject.next(sample);
  }

  private countInvalid(reason: InvalidReason, topic: string, detail: string): void {
    this.invalid[reason] = (this.invalid[reason] ?? 0) + 1;
    this.warnings.warn(reason, { reason, topic, detail }, 'invalid ingest message');
  }

  private clientOptions(): IClientOptions {
    const { url, tls } = this.options;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      parsed = new URL('invalid:');
    }
    if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(parsed.protocol)) {
      throw new MagwatchError(
        'MW_MQTT_URL',
        `broker URL "${redactUrl(url)}" is not an MQTT URL; expected e.g. mqtt://127.0.0.1:1883 or mqtts://host:8883`,
      );
    }
    return {
      clientId: this.options.clientId ?? `magwatch-${randomBytes(4).toString('hex')}`,
      username: this.options.username,
      password: this.options.password,
      clean: this.options.clean ?? true,
      // 0 turns off MQTT.js's fixed-period retry; scheduleReconnect does it with back-off.
      reconnectPeriod: 0,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      ca: tls?.ca ? readPem(tls.ca, 'ca') : undefined,
      cert: tls?.cert ? readPem(tls.cert, 'cert') : undefined,
      key: tls?.key ? readPem(tls.key, 'key') : undefined,
      rejectUnauthorized: tls?.rejectUnauthorized ?? true,
    };
  }
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new MagwatchError(
      'MW_MQTT_TLS_FILE',
      `cannot read the MQTT TLS ${what} file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path`,
      { cause: error },
    );
  }
}

/** The URL without credentials, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/**
 * At most one warning per key per interval, carrying how many occurrences it stands for, so a flood of bad
 * messages costs one log line a minute. Occurrences after the last warning are reported with the next one.
 */
export class RateLimitedWarnings {
  private readonly last = new Map<string, { at: number; pending: number }>();

  constructor(
    private readonly logger: IngestLogger | undefined,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  warn(key: string, bindings: object, message: string): void {
    if (!this.logger) return;
    const now = this.now();
    const state = this.last.get(key);
    if (state && now - state.at < this.intervalMs) {
      state.pending += 1;
      return;
    }
    this.logger.warn({ ...bindings, count: (state?.pending ?? 0) + 1 }, message);
    this.last.set(key, { at: now, pending: 0 });
  }
}

/**
 * mqtt.js writes the PUBACK of every QoS 1 message as its own socket write, one system call each, which cost
 * more than decoding the sample. Corking the socket when a publish arrives and uncorking it after the I/O turn
 * sends the acknowledgements of every message that arrived together in one write; none is delayed past the turn.
 */
function batchAcknowledgements(client: MqttClient): void {
  let corked: MqttClient['stream'] | undefined;
  client.on('packetreceive', (packet) => {
    if (corked || packet.cmd !== 'publish' || packet.qos === 0) return;
    corked = client.stream;
    corked.cork();
    setImmediate(() => {
      corked?.uncork();
      corked = undefined;
    });
  });
}

/**
 * Turns Nagle's algorithm off on every connection of `client`: with it, a small packet (an acknowledgement, an
 * anomaly event) waits for the broker's delayed ACK of the previous one, up to 40 ms on Linux, which the
 * latency benchmark showed as windows arriving in clumps 40-50 ms apart.
 */
export function sendWithoutDelay(client: MqttClient): void {
  client.on('connect', () => {
    const socket = client.stream as { setNoDelay?: (noDelay: boolean) => unknown };
    socket.setNoDelay?.(true);
  });
}
