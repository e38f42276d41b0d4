/**
 * The real 1-second day for the quality bench: Conrad Observatory (WIC), 2018-08-02, IAGA-2002 inside a zip,
 * with MagPy's automatic outlier flags for that day as labels (../shared/data/real/wic-2018-08-02/SOURCES).
 * The files stay as they are: the zip's one entry is inflated in memory and parsed with the project's own
 * IAGA-2002 reader.
 */
import { readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import type { Interval } from '../evaluate/metrics.js';
import { parseIaga2002 } from '../ingest/iaga2002.js';
import type { LongRow } from '../ingest/table.js';
import { buildWideTable } from '../ingest/wide.js';
import type { BenchFamily } from './bench.js';

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

/**
 * The bytes of the entry `name` of a zip archive (stored or deflated). Sizes are read from the central
 * directory, because archives written as streams (this one) leave them out of the local headers.
 */
export function zipEntry(archive: Buffer, name: string): Buffer {
  let end = -1;
  // The end record is 22 bytes plus a comment of at most 65535.
  for (let at = archive.length - 22; at >= Math.max(0, archive.length - 22 - 65_535); at--) {
    if (archive.readUInt32LE(at) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error('not a zip archive: no end of central directory');
  const entries = archive.readUInt16LE(end + 10);
  let at = archive.readUInt32LE(end + 16);
  const names: string[] = [];
  for (let e = 0; e < entries; e++) {
    if (archive.readUInt32LE(at) !== CENTRAL_ENTRY) throw new Error('corrupt zip central directory');
    const method = archive.readUInt16LE(at + 10);
    const compressedSize = archive.readUInt32LE(at + 20);
    const nameLength = archive.readUInt16LE(at + 28);
    const extraLength = archive.readUInt16LE(at + 30);
    const commentLength = archive.readUInt16LE(at + 32);
    const localOffset = archive.readUInt32LE(at + 42);
    const entryName = archive.toString('utf8', at + 46, at + 46 + nameLength);
    names.push(entryName);
    if (entryName === name) {
      if (archive.readUInt32LE(localOffset) !== LOCAL_HEADER) throw new Error('corrupt zip local header');
      const dataStart =
        localOffset + 30 + archive.readUInt16LE(localOffset + 26) + archive.readUInt16LE(localOffset + 28);
      const data = archive.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${name}: compression method ${method} is not supported`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip archive has no entry ${name} (entries: ${names.join(', ')})`);
}

/**
 * Flagged times from a MagPy flag list `{"<sensor id>": [[start, end, component, flag, comment, modified], …]}`:
 * one per distinct start, rounded to the nearest second (MagPy writes some a few microseconds early). Every
 * flag of this file names all components at once, so components are not told apart.
 */
export function magpyFlagTimes(json: string): number[] {
  const parsed = JSON.parse(json) as Record<string, Array<[string, string, string, number, string, string]>>;
  const times = new Set<number>();
  for (const flags of Object.values(parsed)) {
    for (const [start] of flags) {
      const t = Date.parse(`${start.replace(' ', 'T')}Z`);
      if (!Number.isFinite(t)) throw new Error(`MagPy flag with an unreadable time: ${start}`);
      times.add(Math.round(t / 1000) * 1000);
    }
  }
  return [...times].sort((a, b) => a - b);
}

/** Groups sorted times into intervals, starting a new one where the gap to the previous time exceeds `gapMs`. */
export function groupTimes(times: readonly number[], gapMs: number): Interval[] {
  const out: Interval[] = [];
  for (const t of times) {
    const last = out[out.length - 1];
    if (last && t - last.end <= gapMs) out[out.length - 1] = { start: last.start, end: t };
    else out.push({ start: t, end: t });
  }
  return out;
}

/**
 * The WIC day as a bench family: trains on 00:00-06:00 UT, holds out 06:00-09:00 for thresholds, tests
 * 09:00-24:00. Labels are MagPy's automatic outlier flags (not a catalogue), all between 14:33 and 15:23:
 * flagged seconds less than one window (64 s) apart form one event, because a window's score cannot tell
 * them apart.
 */
export async function wicFamily(zip: string, flagsFile: string, window = 64): Promise<BenchFamily> {
  const text = zipEntry(await readFile(zip), 'wic20180802vsec.sec').toString('utf8');
  const rows = parseIaga2002(text, `${zip}:wic20180802vsec.sec`).rows;
  const hour = (h: number) => Date.UTC(2018, 7, 2, h);
  const part = (from: number, to: number, source: string) =>
    buildWideTable(
      rows.filter((r: LongRow) => r.timestamp >= from && r.timestamp < to),
      source,
    );
  const events = groupTimes(magpyFlagTimes(await readFile(flagsFile, 'utf8')), window * 1000);
  return {
    name: 'wic',
    train: part(hour(0), hour(6), 'wic train'),
    heldOut: part(hour(6), hour(9), 'wic held-out'),
    cases: [{ name: 'wic/2018-08-02', test: part(hour(9), hour(24), 'wic test'), events, glitches: [] }],
    note: `WIC 2018-08-02: labels are MagPy's automatic outlier flags grouped into ${events.length} events (flags < ${window} s apart), not a catalogue`,
  };
}
