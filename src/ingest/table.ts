/**
 * The wide table: one aligned, gap-free column per channel over a shared timeline.
 * Channel names follow the reference: `<sensor_id>__<component>`.
 */
export interface WideTable {
  /** Sample times in epoch milliseconds, strictly increasing. */
  readonly timestamps: Float64Array;
  /** Channel names, in column order. */
  readonly channels: string[];
  /** One column per channel, same length as `timestamps`. */
  readonly values: Float64Array[];
}

/** One row of the reference's long format: one sensor's three components at one time. */
export interface LongRow {
  readonly timestamp: number;
  readonly sensor: string;
  readonly values: Readonly<Record<string, number>>;
}

export const CHANNEL_SEPARATOR = '__';

export function channelName(sensor: string, component: string): string {
  return `${sensor}${CHANNEL_SEPARATOR}${component}`;
}

/** Splits `<sensor>__<component>` at its last separator; a name without one is a sensor of its own. */
export function parseChannel(channel: string): { sensor: string; component: string } {
  const at = channel.lastIndexOf(CHANNEL_SEPARATOR);
  if (at <= 0) return { sensor: channel, component: 'value' };
  return { sensor: channel.slice(0, at), component: channel.slice(at + CHANNEL_SEPARATOR.length) };
}

/** The reference's observatory group: the first `OBS<n>` in the sensor id, else one group for all. */
export function groupOf(sensor: string): string {
  const match = /OBS\d+/.exec(sensor);
  return match ? match[0] : 'OBS_ALL';
}
