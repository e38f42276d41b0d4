import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { LongRow } from '../ingest/table.js';
import { COMPONENTS } from './anomalies.js';

/** The reference's long CSV header. */
export const LONG_CSV_HEADER = 'timestamp,sensor_id,b_x,b_y,b_z';

/** Decimals written for values in nT; 1 pT resolves far below the sensors' noise. */
export const DEFAULT_DECIMALS = 3;

/** ISO 8601 UTC, with milliseconds only when the time has them (`2026-01-15T00:00:01Z`, `…:01.100Z`). */
export function formatTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

/** One long-CSV line (no newline): time, sensor and its `b_x`, `b_y`, `b_z` with `decimals` decimals. */
export function formatLongRow(row: LongRow, decimals = DEFAULT_DECIMALS): string {
  let line = `${formatTime(row.timestamp)},${row.sensor}`;
  for (const component of COMPONENTS) {
    const value = row.values[component];
    line += `,${value === undefined || Number.isNaN(value) ? '' : value.toFixed(decimals)}`;
  }
  return line;
}

/** A whole long CSV (header, rows, final newline), for data small enough to hold as one string. */
export function formatLongCsv(rows: Iterable<LongRow>, decimals = DEFAULT_DECIMALS): string {
  const lines = [LONG_CSV_HEADER];
  for (const row of rows) lines.push(formatLongRow(row, decimals));
  return `${lines.join('\n')}\n`;
}

/**
 * Lines of text, each ended by a newline, written with back-pressure to a file path (created or replaced,
 * and closed at the end) or to an open stream such as stdout (left open); resolves once flushed.
 */
export async function writeLines(target: string | Writable, lines: Iterable<string>): Promise<void> {
  const owned = typeof target === 'string';
  const out = owned ? createWriteStream(target, { encoding: 'utf8' }) : target;
  const failed = once(out, 'error').then(([error]) => Promise.reject(error));
  // Keep the race from reporting an unhandled rejection when writing succeeds.
  failed.catch(() => {});

  // Writing line by line costs a call per row; chunks of 64 KiB keep it cheap.
  let chunk = '';
  const flush = async (): Promise<void> => {
    if (chunk !== '' && !out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
    chunk = '';
  };
  for (const line of lines) {
    chunk += `${line}\n`;
    if (chunk.length >= 64 * 1024) await flush();
  }
  if (owned) {
    out.end(chunk);
    await Promise.race([once(out, 'finish'), failed]);
  } else {
    await flush();
  }
}

/** Writes rows as a long CSV (to a path or an open stream) without holding them in memory. */
export async function writeLongCsv(
  target: string | Writable,
  rows: Iterable<LongRow>,
  decimals = DEFAULT_DECIMALS,
): Promise<void> {
  await writeLines(target, longCsvLines(rows, decimals));
}

function* longCsvLines(rows: Iterable<LongRow>, decimals: number): Generator<string> {
  yield LONG_CSV_HEADER;
  for (const row of rows) yield formatLongRow(row, decimals);
}

/** Splits one CSV line, honouring double-quoted cells with `""` escapes. */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (char === '"') {
        quoted = false;
      } else {
        cell += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ',') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += char;
    }
  }
  cells.push(cell.trim());
  return cells;
}
