import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');
const DOC = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');

/** Codes in quotes, as `new MagwatchError('MW_…', …)` takes them; doc comments name codes in backticks. */
const QUOTED_CODE = /'(MW_[A-Z0-9_]+)'/g;
/** A whole code in prose; `MW_INPUT_*` in a heading is a prefix, not a code. */
const CODE_IN_TEXT = /\bMW_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(dir, name));
}

/** Every code thrown in src, with the files that use it. */
function codesInSource(): Map<string, string[]> {
  const codes = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    for (const match of readFileSync(file, 'utf8').matchAll(QUOTED_CODE)) {
      const files = codes.get(match[1]!) ?? [];
      const where = relative(ROOT, file);
      if (!files.includes(where)) files.push(where);
      codes.set(match[1]!, files);
    }
  }
  return codes;
}

interface CodeRow {
  readonly code: string;
  readonly meaning: string;
  readonly action: string;
  /** The `## …` heading the row sits under. */
  readonly section: string;
}

/** Table rows whose first cell is a code in backticks. */
function documentedRows(markdown: string): CodeRow[] {
  const rows: CodeRow[] = [];
  let section = '';
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) section = line;
    const row = /^\|\s*`(MW_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!row) continue;
    const [meaning = '', action = ''] = splitCells(row[2]!);
    rows.push({ code: row[1]!, meaning, action, section });
  }
  return rows;
}

/** Splits table cells on `|`, except inside backticks, where `cpu|cuda` is one value. */
function splitCells(text: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let inCode = false;
  for (const char of text) {
    if (char === '`') inCode = !inCode;
    if (char === '|' && !inCode) {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += char;
    }
  }
  cells.push(cell.trim());
  return cells;
}

/** The prefixes a heading claims, e.g. `MW_STREAM_` and `MW_SINK_` from `(MW_STREAM_*, MW_SINK_*)`. */
function headingPrefixes(heading: string): string[] {
  return [...heading.matchAll(/(MW_[A-Z0-9_]*_)\*/g)].map((match) => match[1]!);
}

/** The members of the `InvalidReason` union in src/ingest/payload.ts. */
function invalidReasons(): string[] {
  const text = readFileSync(join(SRC, 'ingest', 'payload.ts'), 'utf8');
  const union = /export type InvalidReason =([^;]*);/.exec(text);
  if (!union) throw new Error('src/ingest/payload.ts has no InvalidReason union');
  return [...union[1]!.matchAll(/'([a-z_]+)'/g)].map((match) => match[1]!);
}

/** The lines of the section that starts with `heading`, up to the next `## `. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) return '';
  const end = markdown.indexOf('\n## ', start + heading.length + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

describe('docs/errors.md', () => {
  const source = codesInSource();
  const rows = documentedRows(DOC);

  it('finds the codes of the shared contract in src', () => {
    // Guards the scan itself: an empty or broken scan would make the checks below pass on nothing.
    expect(source.has('MW_INPUT_MISSING_COLUMN')).toBe(true);
    expect(source.size).toBeGreaterThan(20);
  });

  it('documents every error code thrown in src', () => {
    const documented = new Set(rows.map((row) => row.code));
    const missing = [...source.keys()]
      .filter((code) => !documented.has(code))
      .sort()
      .map((code) => `${code} (${source.get(code)!.join(', ')})`);
    expect(missing, 'add a row for each to docs/errors.md').toEqual([]);
  });

  it('lists no code twice', () => {
    const seen = new Set<string>();
    const twice = rows.map((row) => row.code).filter((code) => seen.has(code) || !seen.add(code));
    expect(twice).toEqual([]);
  });

  it('names no code that src no longer uses', () => {
    const stale = [...new Set(DOC.match(CODE_IN_TEXT) ?? [])].filter((code) => !source.has(code)).sort();
    expect(stale).toEqual([]);
  });

  it('gives every code a meaning and an action', () => {
    const incomplete = rows.filter((row) => row.meaning === '' || row.action === '').map((row) => row.code);
    expect(incomplete).toEqual([]);
  });

  it('files every code under the section of its prefix', () => {
    const misplaced = rows
      .filter((row) => !headingPrefixes(row.section).some((prefix) => row.code.startsWith(prefix)))
      .map((row) => `${row.code} under ${row.section || 'no heading'}`);
    expect(misplaced).toEqual([]);
  });

  it('lists exactly the ingest invalid reasons of src/ingest/payload.ts', () => {
    const table = section(DOC, '## Invalid live messages (counted, never fatal)');
    const listed = [...table.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((match) => match[1]!);
    const reasons = invalidReasons();
    expect(reasons.length).toBeGreaterThan(0);
    expect(listed.sort()).toEqual([...reasons].sort());
  });

  it('names only metrics that src/ops/metrics.ts registers', () => {
    const metrics = readFileSync(join(SRC, 'ops', 'metrics.ts'), 'utf8');
    // A metric in the doc is code-formatted, alone or with labels: `magwatch_x_total` or `magwatch_x_total{reason}`.
    const named = [...new Set([...DOC.matchAll(/`(magwatch_[a-z_]+)[`{]/g)].map((match) => match[1]!))];
    expect(named.length).toBeGreaterThan(0);
    const unknown = named.filter((name) => !metrics.includes(`name: '${name}'`));
    expect(unknown).toEqual([]);
  });
});
