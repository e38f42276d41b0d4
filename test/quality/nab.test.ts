import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { exportNab, nabLabels, nabResultPath, nabScores, parseNabCsv } from '../../src/quality/nab.js';

function nabFile(rows: number, spikeAt: number, phase: number): string {
  const lines = ['timestamp,value'];
  for (let i = 0; i < rows; i++) {
    const time = new Date(Date.UTC(2024, 0, 1) + i * 300_000).toISOString().replace('T', ' ').slice(0, 19);
    const value = 10 * Math.sin(i / 6 + phase) + 0.3 * Math.sin(i * 2.7) + (i === spikeAt ? 60 : 0);
    lines.push(`${time},${value.toFixed(3)}`);
  }
  return `${lines.join('\n')}\n`;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-nab-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exportNab', () => {
  test('writes one scored results file per data file in NAB layout', async () => {
    const data = join(dir, 'data');
    await mkdir(join(data, 'artificialWithAnomaly'), { recursive: true });
    await mkdir(join(data, 'realKnownCause'), { recursive: true });
    await writeFile(join(data, 'artificialWithAnomaly', 'one.csv'), nabFile(400, 300, 0));
    await writeFile(join(data, 'realKnownCause', 'two.csv'), nabFile(420, 250, 1));
    const out = join(dir, 'results');
    const labels = {
      'realKnownCause/two.csv': [['2024-01-01 20:00:00', '2024-01-01 21:00:00'] as [string, string]],
    };
    const written = await exportNab(data, out, { window: 8, epochs: 2, workers: 0, labels });
    expect(written.map((r) => r.file)).toEqual(['artificialWithAnomaly/one.csv', 'realKnownCause/two.csv']);

    for (const [file, spikeAt, rows] of [
      ['magwatch/artificialWithAnomaly/magwatch_one.csv', 300, 400],
      ['magwatch/realKnownCause/magwatch_two.csv', 250, 420],
    ] as const) {
      const lines = (await readFile(join(out, file), 'utf8')).trim().split('\n');
      expect(lines[0]).toBe('timestamp,value,anomaly_score,label');
      expect(lines).toHaveLength(rows + 1);
      const records = lines.slice(1).map((line) => line.split(','));
      expect(records[0]![0]).toBe('2024-01-01 00:00:00');
      const scores = records.map((r) => Number(r[2]));
      for (const score of scores) expect(score >= 0 && score <= 1).toBe(true);
      const sorted = [...scores].sort((a, b) => a - b);
      expect(scores[spikeAt]!).toBeGreaterThan(sorted[sorted.length >> 1]!);
      const labelled = records.filter((r) => r[3] === '1').length;
      // 20:00 to 21:00 at 5 minutes is 13 rows of the second file; the first file has no labels.
      expect(labelled).toBe(file.includes('two') ? 13 : 0);
    }
  }, 240_000);

  test('refuses a file whose probationary part holds fewer than two windows', async () => {
    const data = join(dir, 'short');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'tiny.csv'), nabFile(100, 50, 0));
    await expect(exportNab(data, join(dir, 'short-out'), { window: 64 })).rejects.toThrow(
      /MW_NAB_TOO_SHORT|fewer than 2 windows/,
    );
  });
});

describe('NAB helpers', () => {
  test('maps the threshold to 0.5 and caps scores at 1', () => {
    expect(Array.from(nabScores([Number.NaN, 0.5, 1, 3], 1))).toEqual([0, 0.25, 0.5, 1]);
  });

  test('names results files the way NAB expects', () => {
    expect(nabResultPath('magwatch', 'realTweets/Twitter_volume_AAPL.csv')).toBe(
      'magwatch/realTweets/magwatch_Twitter_volume_AAPL.csv',
    );
    expect(nabResultPath('d', 'top.csv')).toBe('d/d_top.csv');
  });

  test('labels the rows inside a window, both ends included', () => {
    const series = parseNabCsv(
      'timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,2\n2024-01-01 00:10:00,3\n',
      'x.csv',
    );
    expect(
      Array.from(
        nabLabels(series.timestamps, [['2024-01-01 00:05:00.000000', '2024-01-01 00:10:00.000000']]),
      ),
    ).toEqual([0, 1, 1]);
  });

  test('rejects a row without a number', () => {
    expect(() => parseNabCsv('timestamp,value\n2024-01-01 00:00:00,abc\n', 'x.csv')).toThrow(/x.csv:2/);
  });
});
