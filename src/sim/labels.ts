import { MagwatchError } from '../errors.js';
import { parseTimestamp } from '../ingest/csv.js';
import { groupOf } from '../ingest/table.js';
import type { Label } from './anomalies.js';
import { formatTime, splitCsvLine } from './csv.js';

/** Header of a labels CSV; lists inside a cell are joined with `;`. */
export const LABELS_CSV_HEADER = 'start,end,kind,sensors,components';

const LIST_SEPARATOR = ';';

/** A labels CSV (header, one line per label, final newline); times as ISO 8601 UTC. */
export function formatLabelsCsv(labels: readonly Label[]): string {
  const lines = [LABELS_CSV_HEADER];
  for (const label of labels) {
    lines.push(
      [
        formatTime(label.start),
        formatTime(label.end),
        label.kind,
        label.sensors.join(LIST_SEPARATOR),
        label.components.join(LIST_SEPARATOR),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Reads a labels CSV as {@link formatLabelsCsv} writes it. Columns are found by name, so a hand-written
 * file may order them freely; `sensors` and `components` may be absent or empty (a label for the network).
 * Groups are derived from the sensors with the reference's rule.
 *
 * @param file names the source in error messages.
 * @throws MagwatchError `MW_LABELS_MISSING_COLUMN`, `MW_LABELS_BAD_TIME`, `MW_LABELS_BAD_INTERVAL`.
 */
export function parseLabelsCsv(text: string, file: string): Label[] {
  const lines = text.split(/\r?\n/);
  const header = splitCsvLine(lines[0] ?? '');
  const column = (name: string, required: boolean): number => {
    const at = header.indexOf(name);
    if (at < 0 && required) {
      throw new MagwatchError(
        'MW_LABELS_MISSING_COLUMN',
        `${file}: labels header has no '${name}' column; expected ${LABELS_CSV_HEADER}`,
      );
    }
    return at;
  };
  const startAt = column('start', true);
  const endAt = column('end', true);
  const kindAt = column('kind', true);
  const sensorsAt = column('sensors', false);
  const componentsAt = column('components', false);

  const labels: Label[] = [];
  lines.slice(1).forEach((line, index) => {
    if (line.trim() === '') return;
    const where = `${file}:${index + 2}`;
    const cells = splitCsvLine(line);
    const start = readTime(cells[startAt], where, 'start');
    const end = readTime(cells[endAt], where, 'end');
    if (end < start) {
      throw new MagwatchError(
        'MW_LABELS_BAD_INTERVAL',
        `${where}: end is before start; swap them or fix the times`,
      );
    }
    const sensors = splitList(sensorsAt < 0 ? undefined : cells[sensorsAt]);
    labels.push({
      start,
      end,
      kind: cells[kindAt] ?? '',
      groups: [...new Set(sensors.map(groupOf))].sort(),
      sensors,
      components: splitList(componentsAt < 0 ? undefined : cells[componentsAt]),
    });
  });
  return labels;
}

function splitList(cell: string | undefined): string[] {
  return (cell ?? '')
    .split(LIST_SEPARATOR)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function readTime(cell: string | undefined, where: string, name: string): number {
  const time = cell === undefined ? undefined : parseTimestamp(cell);
  if (time === undefined) {
    throw new MagwatchError(
      'MW_LABELS_BAD_TIME',
      `${where}: ${name} '${cell ?? ''}' is not a time; use ISO 8601 like 2026-01-15T00:28:48Z`,
    );
  }
  return time;
}
