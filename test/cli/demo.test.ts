import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('magwatch demo', () => {
  test('reports the group-wide anomalies and leaves the single-sensor glitch to a sensor event', async () => {
    const run = await runCli(['demo', '--duration', '40', '--seed', '1', '--port', '0'], {
      timeoutMs: 90_000,
    });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    const starts = lines.filter((line) => line.startsWith('anomaly.start'));
    expect(starts.length).toBeGreaterThan(0);
    // The storm reaches every observatory: its event is global, carried by the channels of both.
    expect(starts.some((line) => /^anomaly\.start\s+OBS1 \(global, OBS1\+OBS2\)/.test(line))).toBe(true);
    // The object disturbs OBS1 alone: a group event.
    expect(starts.some((line) => /^anomaly\.start\s+OBS1 \(group\)/.test(line))).toBe(true);
    // The glitch is on S1_OBS1_1__b_z alone: no vote carries it, so it is only a sensor event.
    const glitch = lines.find((line) => line.startsWith('injected') && line.includes('glitch'));
    expect(glitch).toBeDefined();
    const glitchAt = lines.indexOf(glitch!);
    const after = lines.slice(glitchAt + 1);
    expect(after.some((line) => /^sensor\.anomaly\s+sensor S1_OBS1_1 .*S1_OBS1_1__b_z/.test(line))).toBe(
      true,
    );
    expect(after.filter((line) => line.startsWith('anomaly.start'))).toEqual([]);
    expect(lines.at(-2)).toMatch(/^demo finished: \d+ samples/);
  }, 120_000);
});
