import { MagwatchError } from '../errors.js';
import type { WideTable } from '../ingest/table.js';
import type { Bundle } from './bundle.js';
import type { Engine } from './engine.js';
import {
  applyScaler,
  countVotes,
  expandWindows,
  gatherWindows,
  madThreshold,
  requiredVotes,
  subtractWindowMeans,
  type VoteRule,
  windowStarts,
} from './reference.js';

export interface GroupVotes {
  readonly group: string;
  /** Indices into `DetectResult.channels`. */
  readonly members: number[];
  readonly votes: Int32Array;
  readonly required: number;
}

export interface DetectResult {
  readonly timestamps: Float64Array;
  /** Scored channels, in the input table's order. */
  readonly channels: string[];
  readonly values: Float64Array[];
  readonly flags: Uint8Array[];
  readonly sampleRmse: Float64Array[];
  readonly windowRmse: Float32Array[];
  readonly starts: number[];
  readonly groups: GroupVotes[];
  readonly globalVotes: Int32Array;
  readonly required: number;
  readonly final: Uint8Array;
  /** Input channels that the bundle has no model for; they are left out of the results. */
  readonly ignored: string[];
}

/** Windows per engine call: large enough to amortise a call, small enough to bound memory. */
const SCORE_CHUNK = 1024;

/**
 * The reference's offline detection: scale with the bundle's scalers, score windows at `0, step, …`, flag
 * `rmse > threshold`, expand flags over each anomalous window, count votes per observatory group and over all
 * channels, and take the global vote as the final flag.
 */
export async function detectTable(
  table: WideTable,
  bundle: Bundle,
  engine: Engine,
  options: { vote?: VoteRule; source?: string } = {},
): Promise<DetectResult> {
  const { window, step } = bundle.manifest;
  const source = options.source ?? 'input';
  const missing = Object.keys(bundle.manifest.channels).filter((c) => !table.channels.includes(c));
  if (missing.length > 0) {
    throw new MagwatchError(
      'MW_DETECT_MISSING_CHANNEL',
      `${source}: no column for channel(s) ${missing.join(', ')} of the bundle ${bundle.dir}; give input with the channels the bundle was trained on`,
    );
  }
  const n = table.timestamps.length;
  if (n < window) {
    throw new MagwatchError(
      'MW_DETECT_TOO_SHORT',
      `${source}: ${n} samples, fewer than one window of ${window}; give at least ${window} samples`,
    );
  }

  const channels: string[] = [];
  const values: Float64Array[] = [];
  const ignored: string[] = [];
  table.channels.forEach((channel, c) => {
    if (bundle.manifest.channels[channel]) {
      channels.push(channel);
      values.push(table.values[c]!);
    } else ignored.push(channel);
  });

  const starts = windowStarts(n, window, step);
  const windowRmse = await scoreChannels(channels, values, starts, bundle, engine);

  const flags: Uint8Array[] = [];
  const sampleRmse: Float64Array[] = [];
  channels.forEach((channel, c) => {
    const expanded = expandWindows(n, starts, windowRmse[c]!, window, bundle.thresholds[channel]!);
    flags.push(expanded.flags);
    sampleRmse.push(expanded.sampleRmse);
  });

  const rule = options.vote ?? bundle.manifest.vote;
  const groupNames = [...new Set(channels.map((c) => bundle.manifest.channels[c]!.group))].sort();
  const groups = groupNames.map((group) => {
    const members = channels.flatMap((c, i) => (bundle.manifest.channels[c]!.group === group ? [i] : []));
    return {
      group,
      members,
      votes: countVotes(
        members.map((i) => flags[i]!),
        n,
      ),
      required: requiredVotes(rule, members.length),
    };
  });
  const globalVotes = countVotes(flags, n);
  const required = requiredVotes(rule, channels.length);
  const final = Uint8Array.from(globalVotes, (v) => (v >= required ? 1 : 0));

  return {
    timestamps: table.timestamps,
    channels,
    values,
    flags,
    sampleRmse,
    windowRmse,
    starts,
    groups,
    globalVotes,
    required,
    final,
    ignored,
  };
}

/** Scores every window of every channel through the engine, in chunks that mix channels freely. */
async function scoreChannels(
  channels: readonly string[],
  values: readonly Float64Array[],
  starts: readonly number[],
  bundle: Bundle,
  engine: Engine,
): Promise<Float32Array[]> {
  const { window } = bundle.manifest;
  const perChannel = channels.map((channel, c) => {
    const windows = gatherWindows(applyScaler(values[c]!, bundle.scalers[channel]!), starts, window);
    return bundle.manifest.preprocess === 'window-mean' ? subtractWindowMeans(windows, window) : windows;
  });
  const out = channels.map(() => new Float32Array(starts.length));
  const total = channels.length * starts.length;
  for (let first = 0; first < total; first += SCORE_CHUNK) {
    const count = Math.min(SCORE_CHUNK, total - first);
    const batchChannels: string[] = [];
    const data = new Float32Array(count * window);
    for (let k = 0; k < count; k++) {
      const c = Math.floor((first + k) / starts.length);
      const w = (first + k) % starts.length;
      batchChannels.push(channels[c]!);
      data.set(perChannel[c]!.subarray(w * window, (w + 1) * window), k * window);
    }
    const rmse = await engine.score({ channels: batchChannels, data });
    for (let k = 0; k < count; k++) {
      out[Math.floor((first + k) / starts.length)]![(first + k) % starts.length] = rmse[k]!;
    }
  }
  return out;
}

/**
 * Thresholds `median + k * MAD` from the RMSE of windows the models never trained on (held-out normal data),
 * instead of the training windows', which a model reconstructs better than new normal data.
 */
export async function heldOutThresholds(
  heldOut: WideTable,
  bundle: Bundle,
  engine: Engine,
  k: number = bundle.manifest.k,
): Promise<Record<string, number>> {
  const scored = await detectTable(heldOut, bundle, engine, {
    vote: { minChannels: 1 },
    source: 'held-out data',
  });
  return Object.fromEntries(
    scored.channels.map((channel, c) => [channel, madThreshold(scored.windowRmse[c]!, k)]),
  );
}

/** The samples `[from, to)` of a wide table, sharing its storage. */
export function sliceTable(table: WideTable, from: number, to: number): WideTable {
  return {
    timestamps: table.timestamps.subarray(from, to),
    channels: table.channels,
    values: table.values.map((column) => column.subarray(from, to)),
  };
}

/** Maximal runs of `flags[i] === 1` as [first, last] sample indices. */
export function flaggedRegions(flags: ArrayLike<number>): Array<[number, number]> {
  const regions: Array<[number, number]> = [];
  let open = -1;
  for (let i = 0; i <= flags.length; i++) {
    const on = i < flags.length && flags[i] === 1;
    if (on && open < 0) open = i;
    else if (!on && open >= 0) {
      regions.push([open, i - 1]);
      open = -1;
    }
  }
  return regions;
}
