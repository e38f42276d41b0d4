/**
 * Export to the Numenta Anomaly Benchmark (NAB): score every `timestamp,value` CSV of a NAB data folder with
 * the univariate autoencoder pipeline and write NAB's results files, so NAB's own scorer can rank magwatch.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import { detectTable } from '../detector/detect.js';
import { MagwatchError } from '../errors.js';
import { parseTimestamp } from '../ingest/csv.js';
import type { WideTable } from '../ingest/table.js';
import { type PipelineOptions, trainDetector } from './pipeline.js';

/** NAB's probationary period: the first 15 % of each file, which detectors may learn from. */
export const NAB_PROBATION = 0.15;

export interface NabSeries {
  /** The timestamps as written in the file, echoed unchanged into the results. */
  readonly times: string[];
  /** Epoch ms of each row. */
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

/**
 * Reads a NAB data file: header `timestamp,value`, one row per time, times increasing.
 *
 * @throws MagwatchError `MW_NAB_BAD_FILE` naming the file and line.
 */
export function parseNabCsv(text: string, file: string): NabSeries {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((cell) => cell.trim());
  const timeAt = header.indexOf('timestamp');
  const valueAt = header.indexOf('value');
  if (timeAt < 0 || valueAt < 0) {
    throw new MagwatchError(
      'MW_NAB_BAD_FILE',
      `${file}: header must name 'timestamp' and 'value' columns (NAB format)`,
    );
  }
  const rows = lines.slice(1);
  const times: string[] = [];
  const timestamps = new Float64Array(rows.length);
  const values = new Float64Array(rows.length);
  rows.forEach((line, i) => {
    const cells = line.split(',');
    const time = (cells[timeAt] ?? '').trim();
    const epochMs = parseTimestamp(time);
    const value = Number(cells[valueAt]);
    if (epochMs === undefined || !Number.isFinite(value) || (cells[valueAt] ?? '').trim() === '') {
      throw new MagwatchError(
        'MW_NAB_BAD_FILE',
        `${file}:${i + 2}: expected a time and a number, got '${line}'; fix or remove the row`,
      );
    }
    if (i > 0 && epochMs <= timestamps[i - 1]!) {
      throw new MagwatchError(
        'MW_NAB_BAD_FILE',
        `${file}:${i + 2}: time '${time}' is not after the previous row's`,
      );
    }
    times.push(time);
    timestamps[i] = epochMs;
    values[i] = value;
  });
  return { times, timestamps, values };
}

/** NAB's `combined_windows.json`: relative data path → list of `[start, end]` label windows. */
export type NabWindows = Record<string, Array<[string, string]>>;

/** 1 where the row's time falls inside one of the label windows (both ends inclusive), else 0. */
export function nabLabels(
  timestamps: ArrayLike<number>,
  windows: ReadonlyArray<readonly [string, string]>,
): Uint8Array {
  const labels = new Uint8Array(timestamps.length);
  for (const [start, end] of windows) {
    const from = parseTimestamp(start);
    const to = parseTimestamp(end);
    if (from === undefined || to === undefined) {
      throw new MagwatchError(
        'MW_NAB_BAD_LABELS',
        `labels window ['${start}', '${end}'] holds a time that does not parse`,
      );
    }
    for (let i = 0; i < timestamps.length; i++)
      if (timestamps[i]! >= from && timestamps[i]! <= to) labels[i] = 1;
  }
  return labels;
}

/**
 * NAB's `anomaly_score` in [0, 1] from the per-sample RMSE (the largest of the windows covering the sample):
 * `min(1, rmse / (2 * threshold))`, so the channel's threshold maps to 0.5; 0 where no window covers it.
 */
export function nabScores(sampleRmse: ArrayLike<number>, threshold: number): Float64Array {
  const scores = new Float64Array(sampleRmse.length);
  for (let i = 0; i < sampleRmse.length; i++) {
    const rmse = sampleRmse[i]!;
    if (!Number.isFinite(rmse)) continue;
    scores[i] = threshold > 0 ? Math.min(1, rmse / (2 * threshold)) : rmse > 0 ? 1 : 0;
  }
  return scores;
}

/** Every `.csv` below `dir`, as paths relative to it with `/` separators, sorted. */
export async function findNabFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.csv'))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

/** Where NAB expects a detector's results for a data file: `<detector>/<subdir>/<detector>_<file>`. */
export function nabResultPath(detector: string, file: string): string {
  const dir = dirname(file);
  const name = `${detector}_${basename(file)}`;
  return dir === '.' ? `${detector}/${name}` : `${detector}/${dir}/${name}`;
}

export interface NabOptions extends PipelineOptions {
  /** Detector name in NAB's results tree; default `magwatch`. */
  readonly detector?: string;
  /** NAB's combined label windows; absent: every label is 0. */
  readonly labels?: NabWindows;
  /** Called after each file with its relative path. */
  readonly onFile?: (file: string, index: number, total: number) => void;
}

export interface NabFileResult {
  readonly file: string;
  readonly out: string;
  readonly rows: number;
  readonly trainRows: number;
}

/**
 * For every data file: trains the one-channel autoencoder on the probationary first 15 %, scores the whole
 * file and writes `timestamp,value,anomaly_score,label` under `out` in NAB's results layout.
 *
 * @throws MagwatchError `MW_NAB_NO_FILES`, `MW_NAB_TOO_SHORT`, `MW_NAB_BAD_FILE`.
 */
export async function exportNab(
  dataDir: string,
  outDir: string,
  options: NabOptions = {},
): Promise<NabFileResult[]> {
  const detector = options.detector ?? 'magwatch';
  const window = options.window ?? 64;
  const files = await findNabFiles(dataDir);
  if (files.length === 0) {
    throw new MagwatchError('MW_NAB_NO_FILES', `${dataDir}: no .csv files found; give NAB's data folder`);
  }
  const work = await mkdtemp(join(tmpdir(), 'magwatch-nab-'));
  const results: NabFileResult[] = [];
  try {
    for (const [index, file] of files.entries()) {
      const series = parseNabCsv(await readFile(join(dataDir, file), 'utf8'), file);
      const trainRows = Math.floor(series.values.length * NAB_PROBATION);
      if (trainRows < 2 * window) {
        throw new MagwatchError(
          'MW_NAB_TOO_SHORT',
          `${file}: its first 15 % (${trainRows} rows) holds fewer than 2 windows of ${window}; use a smaller --window`,
        );
      }
      const table = (from: number, to: number): WideTable => ({
        timestamps: series.timestamps.subarray(from, to),
        channels: ['value'],
        values: [series.values.subarray(from, to)],
      });
      const trained = await trainDetector(table(0, trainRows), join(work, String(index)), {
        ...options,
        window,
        vote: { minChannels: 1 },
        inputs: [file],
      });
      let scores: Float64Array;
      try {
        const scored = await detectTable(table(0, series.values.length), trained.bundle, trained.engine, {
          source: file,
        });
        scores = nabScores(scored.sampleRmse[0]!, trained.bundle.thresholds.value!);
      } finally {
        await trained.dispose();
      }
      const labels = nabLabels(series.timestamps, options.labels?.[file] ?? []);
      const lines = ['timestamp,value,anomaly_score,label'];
      for (let i = 0; i < series.values.length; i++) {
        lines.push(`${series.times[i]},${series.values[i]},${scores[i]},${labels[i]}`);
      }
      const out = join(outDir, nabResultPath(detector, file));
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, `${lines.join('\n')}\n`);
      results.push({ file, out, rows: series.values.length, trainRows });
      options.onFile?.(file, index, files.length);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return results;
}

/** Reads NAB's combined_windows.json. @throws MagwatchError `MW_NAB_BAD_LABELS`. */
export async function readNabWindows(file: string): Promise<NabWindows> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new MagwatchError(
      'MW_NAB_BAD_LABELS',
      `${file}: cannot read it as JSON (${(error as Error).message}); give NAB's labels/combined_windows.json`,
    );
  }
  const valid =
    typeof parsed === 'object' &&
    parsed !== null &&
    Object.values(parsed).every(
      (windows) =>
        Array.isArray(windows) &&
        windows.every((w) => Array.isArray(w) && w.length === 2 && w.every((t) => typeof t === 'string')),
    );
  if (!valid) {
    throw new MagwatchError(
      'MW_NAB_BAD_LABELS',
      `${file}: expected {"<dir>/<file>.csv": [["start", "end"], ...]} as in NAB's combined_windows.json`,
    );
  }
  return parsed as NabWindows;
}
