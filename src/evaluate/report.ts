import { readFile } from 'node:fs/promises';
import { MagwatchError } from '../errors.js';
import type { Label } from '../sim/anomalies.js';
import { formatTime } from '../sim/csv.js';
import { parseLabelsCsv } from '../sim/labels.js';
import { type Evaluation, evaluateFlags } from './metrics.js';
import { DEFAULT_FLAG_COLUMN, type FlagSeries, readFlagSeries } from './results.js';

/** Label kinds a majority vote is not meant to find, left out unless asked for: single-channel faults. */
export const EXCLUDED_KINDS_BY_DEFAULT: readonly string[] = ['glitch'];

export interface EvaluateOptions {
  /** Results CSV path (`timestamp` plus the flag column). */
  readonly results: string;
  /** Labels CSV path (`start,end,kind,sensors,components`). */
  readonly labels: string;
  /** Flag column; default `final_cross_obs_flag`. */
  readonly column?: string;
  /** Label kinds that count as events; default every kind in the file except {@link EXCLUDED_KINDS_BY_DEFAULT}. */
  readonly includeKinds?: readonly string[];
}

/** An evaluation with what it was computed from, as `--json` prints it. */
export interface EvaluationReport extends Evaluation {
  readonly results: string;
  readonly labelsFile: string;
  readonly column: string;
  /** ISO 8601 times of the first and last result sample. */
  readonly start: string;
  readonly end: string;
  readonly labels: {
    readonly total: number;
    /** Labels scored as events: a counted kind with at least one result sample inside. */
    readonly counted: number;
    /** Label count per kind left out by the kind filter. */
    readonly excluded: Readonly<Record<string, number>>;
    /** Labels of a counted kind with no result sample inside, so they cannot be scored. */
    readonly outside: number;
  };
}

/** Reads both files and evaluates the flag column against the counted labels. */
export async function evaluateFiles(options: EvaluateOptions): Promise<EvaluationReport> {
  const column = options.column ?? DEFAULT_FLAG_COLUMN;
  let labelsText: string;
  try {
    labelsText = await readFile(options.labels, 'utf8');
  } catch (error) {
    throw new MagwatchError(
      'MW_INPUT_NOT_FOUND',
      `${options.labels}: cannot read the labels file; check --labels`,
      {
        cause: error,
      },
    );
  }
  const labels = parseLabelsCsv(labelsText, options.labels);
  const series = await readFlagSeries(options.results, column);
  return evaluateSeries(series, labels, { ...options, column });
}

/** Evaluates a flag series against labels: the kind filter, the span filter, then {@link evaluateFlags}. */
export function evaluateSeries(
  series: FlagSeries,
  labels: readonly Label[],
  options: EvaluateOptions & { readonly column: string },
): EvaluationReport {
  const { timestamps, flags } = series;
  const first = timestamps[0]!;
  const last = timestamps[timestamps.length - 1]!;
  const counts = (kind: string): boolean =>
    options.includeKinds !== undefined
      ? options.includeKinds.includes(kind)
      : !EXCLUDED_KINDS_BY_DEFAULT.includes(kind);

  const excluded: Record<string, number> = {};
  const events: Label[] = [];
  let outside = 0;
  for (const label of labels) {
    if (!counts(label.kind)) excluded[label.kind] = (excluded[label.kind] ?? 0) + 1;
    else if (!hasSampleInside(timestamps, label)) outside++;
    else events.push(label);
  }

  return {
    results: options.results,
    labelsFile: options.labels,
    column: options.column,
    start: formatTime(first),
    end: formatTime(last),
    labels: { total: labels.length, counted: events.length, excluded, outside },
    ...evaluateFlags(timestamps, flags, events),
  };
}

function hasSampleInside(timestamps: Float64Array, label: Label): boolean {
  // Results are sorted, but one linear pass per label is cheap next to reading the file.
  for (const time of timestamps) {
    if (time > label.end) return false;
    if (time >= label.start) return true;
  }
  return false;
}

/** The report as a small text table. */
export function formatReport(report: EvaluationReport): string {
  const { point, event, delay, labels } = report;
  const excluded = Object.entries(labels.excluded).map(([kind, count]) => `${count} ${kind}`);
  const notCounted = [...excluded, ...(labels.outside > 0 ? [`${labels.outside} outside the results`] : [])];

  const lines = [
    `results       ${report.results} (${report.column}): ${report.samples} samples, ${report.start} to ${report.end}`,
    `events        ${labels.counted} counted of ${labels.total} labels` +
      (notCounted.length > 0 ? ` (not counted: ${notCounted.join(', ')})` : ''),
    '',
    `              ${'precision'.padStart(9)} ${'recall'.padStart(7)} ${'f1'.padStart(7)}`,
    `point         ${number(point.precision, 9)} ${number(point.recall, 7)} ${number(point.f1, 7)}  ` +
      `tp ${point.truePositives}, fp ${point.falsePositives}, fn ${point.falseNegatives}`,
    `event         ${number(event.precision, 9)} ${number(event.recall, 7)} ${number(event.f1, 7)}  ` +
      `${event.found} of ${event.events} events found, ${event.trueRegions} of ${event.regions} flagged regions true`,
    '',
    delay.meanS === null
      ? 'delay         n/a (no event found)'
      : `delay         mean ${delay.meanS.toFixed(1)} s (${delay.meanSamples!.toFixed(1)} samples), ` +
        `max ${delay.maxS!.toFixed(1)} s (${delay.maxSamples} samples)`,
    `false alarms  ${event.falseRegions} regions, ` +
      (report.falseAlarmsPerDay === null ? 'n/a per day' : `${report.falseAlarmsPerDay.toFixed(2)} per day`),
  ];
  return `${lines.join('\n')}\n`;
}

function number(value: number | null, width: number): string {
  return (value === null ? 'n/a' : value.toFixed(3)).padStart(width);
}
