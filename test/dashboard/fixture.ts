import type { Bundle } from '../../src/detector/bundle.js';
import type { AnomalyEvent } from '../../src/stream/types.js';

/** A bundle's JSON parts for sensors `<sensor>` of the given groups, components b_x, b_y, b_z. */
export function bundleOf(
  sensors: Record<string, readonly string[]>,
  threshold = (channel: string) => 1 + (channel.length % 3) * 0.1,
): Pick<Bundle, 'manifest' | 'thresholds'> {
  const channels: Bundle['manifest']['channels'] = {};
  const thresholds: Bundle['thresholds'] = {};
  for (const [group, names] of Object.entries(sensors)) {
    for (const sensor of names) {
      for (const component of ['b_x', 'b_y', 'b_z']) {
        const channel = `${sensor}__${component}`;
        channels[channel] = { model: channel, sensor, component, group };
        thresholds[channel] = threshold(channel);
      }
    }
  }
  return {
    manifest: {
      format: 'magwatch-bundle',
      version: 1,
      window: 16,
      step: 8,
      latent: 8,
      k: 6,
      vote: { minChannels: 3 },
      channels,
    },
    thresholds,
  };
}

export function anomalyEvent(
  overrides: Partial<AnomalyEvent> & Pick<AnomalyEvent, 'id' | 'event' | 'group' | 'start'>,
): AnomalyEvent {
  return { scope: 'group', channels: [], bundleVersion: 'test', ...overrides };
}
