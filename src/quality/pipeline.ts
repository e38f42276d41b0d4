/**
 * The autoencoder pipeline as the quality bench and the NAB export run it: train a bundle on normal data,
 * open an engine on it, and optionally re-derive its thresholds from held-out normal data or score with
 * overlapping windows. Variants are new Bundle objects in memory; the bundle on disk stays as trained.
 */
import type { Bundle, Thresholds } from '../detector/bundle.js';
import { loadBundle } from '../detector/bundle.js';
import { type DetectResult, detectTable, heldOutThresholds as thresholdsOf } from '../detector/detect.js';
import type { Engine } from '../detector/engine.js';
import { createEngine } from '../detector/engines/index.js';
import { exportBundleOnnx } from '../detector/onnx/export.js';
import { type PotOptions, type PotResult, potThreshold } from '../detector/pot.js';
import type { VoteRule, WindowPreprocess } from '../detector/reference.js';
import { TRAIN_DEFAULTS, trainBundle } from '../detector/train.js';
import type { WideTable } from '../ingest/table.js';

export interface PipelineOptions {
  /** Window length W in samples; default 64 (the reference). */
  readonly window?: number;
  /** Samples between training window starts; default W (the reference). */
  readonly step?: number;
  /** Training epochs; default 10 (the reference). */
  readonly epochs?: number;
  /** Threshold multiplier of the MAD; default 6 (the reference). */
  readonly k?: number;
  readonly seed?: number;
  readonly preprocess?: WindowPreprocess;
  readonly vote?: VoteRule;
  /** Training worker threads; default one per core. */
  readonly workers?: number;
  /** Names recorded in the bundle's training.json. */
  readonly inputs?: readonly string[];
}

/** A trained bundle and an engine open on it; `dispose` releases the engine. */
export interface TrainedDetector {
  readonly bundle: Bundle;
  readonly engine: Engine;
  readonly trainSeconds: number;
  dispose(): Promise<void>;
}

/**
 * Trains the reference autoencoder, with `train`'s default preprocessing unless told otherwise, on `table`
 * into `dir` (replaced), exports its ONNX copy, and opens the fastest engine that runs it.
 */
export async function trainDetector(
  table: WideTable,
  dir: string,
  options: PipelineOptions = {},
): Promise<TrainedDetector> {
  const window = options.window ?? TRAIN_DEFAULTS.window;
  const summary = await trainBundle(table, dir, {
    window,
    step: options.step ?? window,
    latent: TRAIN_DEFAULTS.latent,
    epochs: options.epochs ?? TRAIN_DEFAULTS.epochs,
    batchSize: TRAIN_DEFAULTS.batchSize,
    k: options.k ?? TRAIN_DEFAULTS.k,
    seed: options.seed ?? TRAIN_DEFAULTS.seed,
    shared: false,
    validationSplit: TRAIN_DEFAULTS.validationSplit,
    vote: options.vote ?? TRAIN_DEFAULTS.vote,
    preprocess: options.preprocess ?? TRAIN_DEFAULTS.preprocess,
    workers: options.workers,
    inputs: options.inputs ?? ['quality'],
  });
  await exportBundleOnnx(dir);
  const bundle = await loadBundle(dir);
  const engine = await createEngine(bundle, { engine: 'auto' });
  return { bundle, engine, trainSeconds: summary.seconds, dispose: () => engine.dispose() };
}

/**
 * Thresholds re-derived with the reference's rule (`median + k * MAD`) from the window RMSEs of held-out
 * normal data, which the model never trained on, instead of from its own training windows (whose errors
 * are optimistically small).
 */
export async function heldOutThresholds(
  detector: TrainedDetector,
  heldOut: WideTable,
  k: number = detector.bundle.manifest.k,
): Promise<Thresholds> {
  return thresholdsOf(heldOut, detector.bundle, detector.engine, k);
}

/** The same bundle with other thresholds and/or another scoring step (windows overlap when step < W). */
export function bundleVariant(bundle: Bundle, change: { thresholds?: Thresholds; step?: number }): Bundle {
  return {
    ...bundle,
    thresholds: change.thresholds ?? bundle.thresholds,
    manifest: { ...bundle.manifest, step: change.step ?? bundle.manifest.step },
  };
}

/** Offline detection with the bundle's own rules, under `vote` when given. */
export function detectWith(
  table: WideTable,
  bundle: Bundle,
  engine: Engine,
  vote?: VoteRule,
): Promise<DetectResult> {
  return detectTable(table, bundle, engine, vote ? { vote } : {});
}

/** What the POT rule set for one channel: a tail fit, or the MAD rule because the tail was too thin. */
export type PotChannel =
  | { readonly channel: string; readonly rule: 'pot'; readonly result: Extract<PotResult, { kind: 'pot' }> }
  | { readonly channel: string; readonly rule: 'mad'; readonly windows: number; readonly peaks: number };

/**
 * Thresholds from a peaks-over-threshold fit (`src/detector/pot.ts`) to the RMSE of held-out normal windows.
 * The held-out data is scored at every sample (step 1), not every W: a tail needs far more windows than the
 * few non-overlapping ones a short held-out stretch holds. Overlapping windows are correlated, so the fit
 * sees the right marginal distribution with fewer independent peaks than it counts. A channel whose windows
 * leave fewer than `minPeaks` over the initial quantile gets the held-out MAD rule instead, and says so in
 * its entry.
 */
export async function potThresholds(
  detector: TrainedDetector,
  heldOut: WideTable,
  options: PotOptions = {},
): Promise<{ thresholds: Thresholds; channels: PotChannel[] }> {
  const dense = bundleVariant(detector.bundle, { step: 1 });
  const scored = await detectTable(heldOut, dense, detector.engine, {
    vote: { minChannels: 1 },
    source: 'held-out data',
  });
  const mad = await heldOutThresholds(detector, heldOut);
  const thresholds: Thresholds = {};
  const channels: PotChannel[] = [];
  scored.channels.forEach((channel, c) => {
    const result = potThreshold(scored.windowRmse[c]!, options);
    if (result.kind === 'pot' && Number.isFinite(result.threshold)) {
      thresholds[channel] = result.threshold;
      channels.push({ channel, rule: 'pot', result });
    } else {
      thresholds[channel] = mad[channel]!;
      channels.push({
        channel,
        rule: 'mad',
        windows: scored.windowRmse[c]!.length,
        peaks: result.peaks,
      });
    }
  });
  return { thresholds, channels };
}

/**
 * The table's first differences, `x[i] - x[i-1]` per channel (0 at the first sample): a preprocessing that
 * takes out every slow level change, daily variation and drift alike, and leaves the sample-to-sample
 * changes, where spikes and steps stand out. Applied to the whole series before training and detection, so
 * the reference pipeline and its bundle format stay as they are.
 */
export function firstDifferences(table: WideTable): WideTable {
  return {
    ...table,
    values: table.values.map((column) => {
      const out = new Float64Array(column.length);
      for (let i = 1; i < column.length; i++) out[i] = column[i]! - column[i - 1]!;
      return out;
    }),
  };
}
