import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { registerNab } from '../../src/cli/nab.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-nab-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function program(): Command {
  const root = new Command('magwatch').exitOverride();
  registerNab(root);
  return root;
}

describe('magwatch nab', () => {
  test('writes the results tree for a data folder', async () => {
    const data = join(dir, 'data', 'artificialNoAnomaly');
    await mkdir(data, { recursive: true });
    const rows = Array.from(
      { length: 240 },
      (_, i) => `${new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString()},${Math.sin(i / 4).toFixed(4)}`,
    );
    await writeFile(join(data, 'flat.csv'), `timestamp,value\n${rows.join('\n')}\n`);
    const out = join(dir, 'out');
    await program().parseAsync(
      [
        'nab',
        '--data',
        join(dir, 'data'),
        '--out',
        out,
        '--window',
        '8',
        '--epochs',
        '1',
        '--workers',
        '0',
        '--detector',
        'mw',
      ],
      { from: 'user' },
    );
    const text = await readFile(join(out, 'mw', 'artificialNoAnomaly', 'mw_flat.csv'), 'utf8');
    expect(text.split('\n')[0]).toBe('timestamp,value,anomaly_score,label');
    expect(text.trim().split('\n')).toHaveLength(241);
  }, 120_000);

  test('rejects a window shorter than two samples', async () => {
    await expect(
      program().parseAsync(['nab', '--data', dir, '--out', dir, '--window', '1'], { from: 'user' }),
    ).rejects.toThrow(/--window must be an integer >= 2/);
  });
});
