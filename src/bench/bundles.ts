import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  type Bundle,
  commitStaging,
  loadBundle,
  saveLayersModel,
  writeBundleJson,
} from '../detector/bundle.js';
import { buildAutoencoder } from '../detector/model.js';

export interface RandomBundleOptions {
  /** Channel names, `<sensor>__<component>`. */
  readonly channels: readonly string[];
  /** Window length W in samples. */
  readonly window: number;
  /** Bottleneck width. */
  readonly latent: number;
  /** One model for every channel (true) or one model per channel (false). */
  readonly shared: boolean;
  /** Seed of the first model's initialisers; model i uses seed + i. Default 1. */
  readonly seed?: number;
}

/**
 * Writes a complete bundle at `dir` whose models carry their seeded initial weights, untrained: enough
 * to time inference or compare engines, which only need the same weights on both sides.
 */
export async function writeRandomBundle(dir: string, options: RandomBundleOptions): Promise<Bundle> {
  const { channels, window, latent, shared, seed = 1 } = options;
  const staging = `${dir}.staging`;
  await rm(staging, { recursive: true, force: true });
  const models = shared ? ['shared'] : [...channels];
  for (const [i, name] of models.entries()) {
    const model = buildAutoencoder({ window, latent }, seed + i);
    await saveLayersModel(staging, name, model);
    model.dispose();
  }
  const entries = channels.map((channel) => {
    const [sensor = channel, component = 'b_x'] = channel.split('__');
    return [channel, { model: shared ? 'shared' : channel, sensor, component, group: 'OBS_ALL' }] as const;
  });
  await writeBundleJson(staging, {
    manifest: {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      window,
      step: window,
      latent,
      k: 6,
      vote: { minChannels: 1 },
      channels: Object.fromEntries(entries),
    },
    scalers: Object.fromEntries(channels.map((c) => [c, { mean: 0, scale: 1 }])),
    thresholds: Object.fromEntries(channels.map((c) => [c, 1])),
    training: {},
  });
  await commitStaging(staging, dir);
  return loadBundle(dir);
}

/** `count` channel names over sensors S1, S2, … with components b_x, b_y, b_z. */
export function benchChannels(count: number): string[] {
  const components = ['b_x', 'b_y', 'b_z'];
  return Array.from({ length: count }, (_, i) => `S${Math.floor(i / 3) + 1}__${components[i % 3]}`);
}

/** Where the two bench bundles live under a scratch directory. */
export function benchBundleDirs(root: string): { shared: string; perChannel: string } {
  return { shared: join(root, 'shared'), perChannel: join(root, 'per-channel') };
}
