import type { Bundle, VoteRule } from '../../src/detector/bundle.js';
import type { Engine, WindowBatch } from '../../src/detector/engine.js';
import type { ChannelInfo, DueWindow } from '../../src/stream/channel-window.js';

/** A test double for the model: a window's score is its largest absolute scaled value. */
export function maxAbs(data: Float32Array, offset: number, window: number): number {
  let max = 0;
  for (let i = offset; i < offset + window; i++) max = Math.max(max, Math.abs(data[i]!));
  return max;
}

/**
 * An engine whose score is a fixed function of the window (`maxAbs`), recording every batch. With `manual`,
 * each batch waits until the test calls `release()`.
 */
export class FakeEngine implements Engine {
  readonly name = 'fake';
  readonly backend = 'test';
  offThread = false;
  readonly batches: WindowBatch[] = [];
  private waiting: Array<() => void> = [];

  constructor(
    private readonly window: number,
    private readonly manual = false,
  ) {}

  async score(batch: WindowBatch): Promise<Float32Array> {
    this.batches.push(batch);
    if (this.manual) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const count = batch.channels.length;
    const out = new Float32Array(count);
    for (let w = 0; w < count; w++) out[w] = maxAbs(batch.data, w * this.window, this.window);
    return out;
  }

  /** Lets the oldest waiting batch finish; returns whether one was waiting. */
  release(): boolean {
    const next = this.waiting.shift();
    next?.();
    return next !== undefined;
  }

  async reconstruct(batch: WindowBatch): Promise<Float32Array> {
    return new Float32Array(batch.data.length);
  }

  async dispose(): Promise<void> {}
}

export interface TestChannel {
  sensor: string;
  component: string;
  group: string;
  mean?: number;
  scale?: number;
  threshold?: number;
}

/** An in-memory bundle: scaler mean 0 and scale 1 unless given, threshold 1 unless given. */
export function testBundle(
  channels: TestChannel[],
  options: { window: number; step: number; vote: VoteRule },
): Pick<Bundle, 'manifest' | 'scalers' | 'thresholds'> {
  const manifest: Bundle['manifest'] = {
    format: 'magwatch-bundle',
    version: 1,
    window: options.window,
    step: options.step,
    latent: 2,
    k: 6,
    vote: options.vote,
    channels: {},
  };
  const scalers: Bundle['scalers'] = {};
  const thresholds: Bundle['thresholds'] = {};
  for (const c of channels) {
    const name = `${c.sensor}__${c.component}`;
    manifest.channels[name] = { model: name, sensor: c.sensor, component: c.component, group: c.group };
    scalers[name] = { mean: c.mean ?? 0, scale: c.scale ?? 1 };
    thresholds[name] = c.threshold ?? 1;
  }
  return { manifest, scalers, thresholds };
}

export function info(channel: string, group = 'OBS1', threshold = 1): ChannelInfo {
  const [sensor, component] = channel.split('__') as [string, string];
  return { channel, sensor, component, group, mean: 0, scale: 1, threshold };
}

/** A due window of `length` values all equal to `value`. */
export function dueWindow(channel: ChannelInfo, start: number, length: number, value = 0): DueWindow {
  return {
    info: channel,
    start,
    end: start + length - 1,
    settledBefore: start + length,
    data: new Float32Array(length).fill(value),
  };
}
