/**
 * `magwatch bench --json` on a tiny network: one JSON object per measurement with the fields the issue names,
 * every engine against the layers reference of the same run, the stacked engine on every TensorFlow.js backend
 * that starts here (and a note for one that does not), and one window per channel among the batch sizes.
 * It checks the shape of the report, never a speed.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('magwatch bench --json', () => {
  it('prints one row per engine, mode and batch size, each against the reference of the same run', async () => {
    const run = await runCli(
      ['bench', '--json', '--channels', '3', '--batches', '2', '--seconds', '0.05', '--engines', 'onnx,tfjs'],
      { timeoutMs: 180_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const row of rows) {
      for (const key of ['engine', 'backend', 'mode', 'batch', 'windowsPerSec', 'p50Ms', 'p99Ms']) {
        expect(row, key).toHaveProperty(key);
      }
      expect(row['referenceWindowsPerSec'] as number).toBeGreaterThan(0);
      expect(row['speedup']).toBeCloseTo(
        (row['windowsPerSec'] as number) / (row['referenceWindowsPerSec'] as number),
        6,
      );
    }
    const keys = new Set(
      rows.map((r) => `${r['engine']}/${r['variant']}/${r['backend']} ${r['mode']} ${r['batch']}`),
    );
    for (const mode of ['shared', 'per-channel']) {
      for (const batch of [2, 3]) {
        expect(keys).toContain(`tfjs/layers/wasm ${mode} ${batch}`);
        expect(keys).toContain(`onnx/session/cpu ${mode} ${batch}`);
        expect(keys).toContain(`tfjs/stacked/wasm ${mode} ${batch}`);
        expect(keys).toContain(`tfjs/stacked/cpu ${mode} ${batch}`);
      }
    }
    // The native backend is timed where its package installed; elsewhere a note says why, and no fallback
    // backend is timed in its name.
    const native = rows.some((r) => r['backend'] === 'tensorflow');
    expect(native || /tfjs on tensorflow skipped: it does not start here/.test(run.stderr), run.stderr).toBe(
      true,
    );
  }, 200_000);
});
