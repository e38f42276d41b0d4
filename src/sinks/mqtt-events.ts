/**
 * Publishes anomaly events and per-group state to MQTT (DESIGN section 4, Outputs):
 * - `<prefix>/anomalies/<group>`: `anomaly.start` / `anomaly.end` JSON, QoS 1, not retained;
 * - `<prefix>/status/<group>`: the group's current state, retained, so a dashboard that connects late knows it;
 * - `<prefix>/sensors/<sensor>`: sensor-scope events, `sensor.silent` and `sensor.resumed`, QoS 1.
 *
 * While the broker is away, mqtt.js keeps unacknowledged QoS 1 publishes in its in-memory outgoing store and
 * sends them on reconnect (`queueQoSZero: false`: nothing here is QoS 0). That store is unbounded and lost
 * when the process exits.
 */
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { MagwatchError } from '../errors.js';
import { sendWithoutDelay } from '../ingest/mqtt.js';
import type { AnomalyEvent } from '../stream/types.js';

/**
 * Makes a group or sensor id from the outside world safe as ONE topic level. Ids are data, so a `/` must not
 * add a level and `+`/`#` must not become wildcards a subscriber matches by accident. Percent-encoding, as
 * in URLs, keeps ids readable and reversible with `decodeURIComponent`: `%` → `%25`, `/` → `%2F`,
 * `+` → `%2B`, `#` → `%23`, NUL and other C0/C1 control characters → `%XX`, a leading `$` (reserved for
 * broker topics such as `$SYS`) → `%24`; an unpaired UTF-16 surrogate, which UTF-8 cannot carry, becomes
 * U+FFFD (the one lossy case). Everything else, non-ASCII included, passes unchanged.
 * @throws MagwatchError `MW_MQTT_TOPIC_SEGMENT` for an empty id, which no encoding could tell from a missing one.
 */
export function topicSegment(name: string): string {
  if (name === '') {
    throw new MagwatchError(
      'MW_MQTT_TOPIC_SEGMENT',
      'an empty group or sensor id cannot be a topic level; give every sensor and group a non-empty id',
    );
  }
  const wellFormed = name.replace(LONE_SURROGATE, '\uFFFD');
  let out = '';
  for (const char of wellFormed) {
    const code = char.codePointAt(0)!;
    const control = code < 0x20 || (code >= 0x7f && code <= 0x9f);
    out += control || TOPIC_SPECIAL.has(char) ? encodeURIComponent(char) : char;
  }
  return out.startsWith('$') ? `%24${out.slice(1)}` : out;
}

/** `%` is encoded too, so that decoding is unambiguous. */
const TOPIC_SPECIAL = new Set(['%', '/', '+', '#']);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The retained state of one group on `<prefix>/status/<group>`. */
export interface GroupStatus {
  readonly group: string;
  readonly state: 'normal' | 'anomalous';
  /** ISO 8601 time the group entered this state: the event's start or end, or when magwatch started. */
  readonly since: string;
  /** Id of the event that set this state; absent after `resetStatus`. */
  readonly lastEventId?: string;
  /** ISO 8601 time this status was published. */
  readonly updatedAt: string;
}

export interface MqttEventPublisherOptions {
  /** Broker URL: `mqtt://host:1883`, `mqtts://…`, `ws://…`. */
  readonly url: string;
  /** Default `magwatch-events-<random>`. */
  readonly clientId?: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM file paths, read once in the constructor. */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  /** First topic level(s); default `magwatch`. Must not contain wildcards or start with `$`. */
  readonly topicPrefix?: string;
  /** Delay between reconnect attempts in ms; default 1000. */
  readonly reconnectPeriodMs?: number;
  readonly logger: Logger;
  /** Clock in epoch ms, for `updatedAt`. */
  readonly now?: () => number;
}

export interface PublisherStats {
  /** Messages the broker acknowledged. */
  readonly published: number;
  /** Messages waiting for the broker's acknowledgement, offline or in flight. */
  readonly pending: number;
  /** Messages mqtt.js gave up on (client closed, publish refused). */
  readonly failed: number;
}

const DEFAULT_PREFIX = 'magwatch';

/**
 * Publishes events and group states. `publish` never blocks or throws; `close` must be called and waits
 * (up to a timeout) for the acknowledgement of what is pending.
 */
export class MqttEventPublisher {
  readonly prefix: string;
  private readonly client: MqttClient;
  private readonly logger: Logger;
  private readonly now: () => number;
  private counts = { published: 0, pending: 0, failed: 0 };
  private idle: Array<() => void> = [];
  private offlineSince: number | undefined;
  private everConnected = false;

  constructor(options: MqttEventPublisherOptions) {
    this.prefix = validPrefix(options.topicPrefix ?? DEFAULT_PREFIX);
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    const clientOptions: IClientOptions = {
      clientId: options.clientId ?? `magwatch-events-${Math.random().toString(16).slice(2, 10)}`,
      username: options.username,
      password: options.password,
      reconnectPeriod: options.reconnectPeriodMs ?? 1000,
      queueQoSZero: false,
      ca: options.tls?.ca ? readPem(options.tls.ca, 'ca') : undefined,
      cert: options.tls?.cert ? readPem(options.tls.cert, 'cert') : undefined,
      key: options.tls?.key ? readPem(options.tls.key, 'key') : undefined,
    };
    this.client = connect(options.url, clientOptions);
    sendWithoutDelay(this.client);
    this.client.on('connect', () => {
      if (this.offlineSince !== undefined || !this.everConnected) {
        this.logger.info(
          { offlineMs: this.offlineSince === undefined ? undefined : this.now() - this.offlineSince },
          'mqtt events connected',
        );
      }
      this.everConnected = true;
      this.offlineSince = undefined;
    });
    this.client.on('offline', () => {
      if (this.offlineSince !== undefined) return;
      this.offlineSince = this.now();
      this.logger.warn({ pending: this.counts.pending }, 'mqtt events broker unreachable; queueing');
    });
    this.client.on('error', (error) => {
      // Reconnect errors repeat every period; the offline line already says the broker is away.
      if (this.offlineSince === undefined)
        this.logger.warn({ err: error.message }, 'mqtt events client error');
    });
  }

  /** Resolves once connected; rejects with the connection error when the first attempt fails. */
  connected(): Promise<void> {
    if (this.client.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.client.off('error', onError);
        resolve();
      };
      const onError = (error: Error) => {
        this.client.off('connect', onConnect);
        reject(error);
      };
      this.client.once('connect', onConnect);
      this.client.once('error', onError);
    });
  }

  /**
   * Publishes an event on its topic and, for group and global anomalies, the group's new retained status.
   * Sensor-scope, silent and resumed events go to the sensor's topic only.
   */
  publish(event: AnomalyEvent): void {
    try {
      this.route(event);
    } catch (error) {
      // An id no topic can carry (empty) loses this message only, never the pipeline.
      this.counts.failed++;
      this.logger.warn({ event: event.id, err: (error as Error).message }, 'mqtt event not published');
    }
  }

  private route(event: AnomalyEvent): void {
    if (isSensorEvent(event)) {
      this.send(`${this.prefix}/sensors/${topicSegment(event.sensor ?? event.group)}`, event, false);
      return;
    }
    this.send(`${this.prefix}/anomalies/${topicSegment(event.group)}`, event, false);
    const anomalous = event.event === 'anomaly.start';
    this.publishStatus({
      group: event.group,
      state: anomalous ? 'anomalous' : 'normal',
      since: anomalous ? event.start : (event.end ?? event.start),
      lastEventId: event.id,
      updatedAt: new Date(this.now()).toISOString(),
    });
  }

  /**
   * Publishes `normal` for each group, e.g. at start, so a retained `anomalous` from a previous run that ended
   * mid-event does not linger.
   */
  resetStatus(groups: Iterable<string>): void {
    const now = new Date(this.now()).toISOString();
    for (const group of groups) this.publishStatus({ group, state: 'normal', since: now, updatedAt: now });
  }

  /** The topic of a group's status. */
  statusTopic(group: string): string {
    return `${this.prefix}/status/${topicSegment(group)}`;
  }

  stats(): PublisherStats {
    return { ...this.counts };
  }

  /** Waits up to `timeoutMs` (default 5000) for pending acknowledgements, then disconnects. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.counts.pending > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const pending = this.counts.pending;
    if (pending > 0) this.logger.warn({ pending }, 'mqtt events closed with messages unacknowledged');
    await this.client.endAsync(true);
  }

  private publishStatus(status: GroupStatus): void {
    this.send(this.statusTopic(status.group), status, true);
  }

  private send(topic: string, payload: object, retain: boolean): void {
    this.counts.pending++;
    this.client.publish(topic, JSON.stringify(payload), { qos: 1, retain }, (error) => {
      this.counts.pending--;
      if (error) {
        this.counts.failed++;
        this.logger.warn({ topic, err: error.message }, 'mqtt event not published');
      } else {
        this.counts.published++;
      }
      if (this.counts.pending === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
  }
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new MagwatchError(
      'MW_CONFIG_TLS_FILE',
      `mqtt.${key} names ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? error}); give the path of a PEM file`,
      { cause: error },
    );
  }
}

function isSensorEvent(event: AnomalyEvent): boolean {
  return event.scope === 'sensor' || event.event.startsWith('sensor.');
}

function validPrefix(prefix: string): string {
  const levels = prefix.split('/');
  if (prefix === '' || prefix.startsWith('$') || levels.some((l) => l === '' || /[+#\0]/.test(l))) {
    throw new MagwatchError(
      'MW_CONFIG_TOPIC_PREFIX',
      `events.topicPrefix "${prefix}" is not a usable topic prefix: it must be non-empty levels without +, #, NUL, empty levels or a leading $; e.g. "magwatch" or "site1/magwatch"`,
    );
  }
  return prefix;
}
