import type { ChannelInfo } from './channel-window.js';
import { isoTime } from './events.js';
import type { AnomalyEvent } from './types.js';

/** What the silence watch keeps per channel; the detector updates `heardAt` on every value it receives. */
export interface ListenedChannel {
  readonly info: ChannelInfo;
  /** Clock time of the last value received (accepted or not). */
  heardAt: number;
  /** Timestamp of the last value received, epoch ms; NaN before the first. */
  lastTimestamp: number;
  /** RMSE of the channel's last scored window; NaN before the first. */
  lastRmse: number;
  silent: boolean;
}

/**
 * Silence is a signal: a channel with no value for `silentAfterMs` on the clock is reported in a
 * `sensor.silent` event of its sensor (one per sensor and check, listing the channels that fell silent), and a
 * `sensor.resumed` event with the same id follows when values return. Events of one episode (from the first
 * channel of a sensor falling silent until all its channels are back) share that id. A channel never heard from
 * falls silent `silentAfterMs` after the watch starts.
 *
 * The channels of these events carry each channel's last RMSE (NaN, JSON null, when none was scored).
 */
export class SilenceWatch {
  /**
   * Per sensor with silent channels: epoch ms its silence is counted from (last value heard, or the watch's
   * start), which names the episode, and how many of its channels are silent.
   */
  private readonly episodes = new Map<string, { since: number; silent: number }>();

  constructor(
    private readonly silentAfterMs: number,
    private readonly bundleVersion: string,
    private readonly startedAt: number,
  ) {
    if (!(silentAfterMs > 0)) throw new RangeError(`silentAfterMs must be positive, got ${silentAfterMs}`);
  }

  /** Channels of one sensor that fell silent by clock time `now`, as `sensor.silent` events. */
  check(channels: Iterable<ListenedChannel>, now: number): AnomalyEvent[] {
    const fallen = new Map<string, ListenedChannel[]>();
    for (const channel of channels) {
      if (channel.silent || now - channel.heardAt < this.silentAfterMs) continue;
      channel.silent = true;
      const list = fallen.get(channel.info.sensor);
      if (list) list.push(channel);
      else fallen.set(channel.info.sensor, [channel]);
    }

    const events: AnomalyEvent[] = [];
    for (const [sensor, list] of fallen) {
      let episode = this.episodes.get(sensor);
      if (!episode) {
        const since = Math.max(
          ...list.map((c) => (Number.isNaN(c.lastTimestamp) ? this.startedAt : c.lastTimestamp)),
        );
        episode = { since, silent: 0 };
        this.episodes.set(sensor, episode);
      }
      episode.silent += list.length;
      events.push(this.event('sensor.silent', sensor, episode.since, list));
    }
    return events;
  }

  /**
   * Channels of one sensor that were silent and have just been heard again at `timestamp` (epoch ms), as one
   * `sensor.resumed` event with the episode's id; clears their `silent` marks.
   */
  resumed(sensor: string, channels: readonly ListenedChannel[], timestamp: number): AnomalyEvent {
    const episode = this.episodes.get(sensor) ?? { since: this.startedAt, silent: channels.length };
    for (const channel of channels) channel.silent = false;
    episode.silent -= channels.length;
    if (episode.silent <= 0) this.episodes.delete(sensor);
    return { ...this.event('sensor.resumed', sensor, episode.since, channels), end: isoTime(timestamp) };
  }

  private event(
    kind: 'sensor.silent' | 'sensor.resumed',
    sensor: string,
    since: number,
    channels: readonly ListenedChannel[],
  ): AnomalyEvent {
    return {
      id: `${sensor}-silent-${since}`,
      event: kind,
      scope: 'sensor',
      group: channels[0]!.info.group,
      sensor,
      start: isoTime(since),
      channels: channels
        .map((c) => ({ channel: c.info.channel, rmse: c.lastRmse, threshold: c.info.threshold }))
        .sort((a, b) => (a.channel < b.channel ? -1 : 1)),
      bundleVersion: this.bundleVersion,
    };
  }
}
