import type { FinalBucket } from './buckets.js';
import type { ChannelInfo } from './channel-window.js';
import { channelList, isoTime } from './events.js';
import type { AnomalyEvent } from './types.js';

/**
 * Channels flagged alone: an anomalous channel that no vote carries (neither its group's nor the global vote is
 * anomalous in the bucket) is a likely instrument fault, reported as one `sensor.anomaly` per sensor and
 * contiguous stretch of buckets in which the sensor has a flagged channel, rather than dropped.
 */
export class SensorAnomalies {
  /** Sensors with a flagged channel in the last global bucket; true once the stretch was reported. */
  private stretches = new Map<string, boolean>();

  constructor(private readonly bundleVersion: string) {}

  /**
   * Takes the next final global bucket (all channels) and, per channel, whether a vote carries it in that
   * bucket; returns the `sensor.anomaly` events of stretches reported for the first time.
   */
  step(global: FinalBucket, carried: (info: ChannelInfo) => boolean): AnomalyEvent[] {
    const bySensor = new Map<string, { group: string; uncarried: Map<ChannelInfo, number> }>();
    for (const [info, rmse] of global.flagged) {
      let entry = bySensor.get(info.sensor);
      if (!entry) {
        entry = { group: info.group, uncarried: new Map() };
        bySensor.set(info.sensor, entry);
      }
      if (!carried(info)) entry.uncarried.set(info, rmse);
    }

    const events: AnomalyEvent[] = [];
    const next = new Map<string, boolean>();
    for (const [sensor, { group, uncarried }] of bySensor) {
      let reported = this.stretches.get(sensor) ?? false;
      if (!reported && uncarried.size > 0) {
        reported = true;
        events.push({
          id: `${sensor}-${global.vote.start}`,
          event: 'sensor.anomaly',
          scope: 'sensor',
          group,
          sensor,
          start: isoTime(global.vote.start),
          channels: channelList(uncarried),
          bundleVersion: this.bundleVersion,
        });
      }
      next.set(sensor, reported);
    }
    // A sensor missing from this bucket's flags ends its stretch.
    this.stretches = next;
    return events;
  }
}
