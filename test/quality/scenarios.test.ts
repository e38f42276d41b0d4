import { describe, expect, test } from 'vitest';
import { buildScenarioSuite, SUITE_SHAPE } from '../../src/quality/scenarios.js';

describe('buildScenarioSuite', () => {
  const suite = buildScenarioSuite();

  test('covers every anomaly kind, two noise levels, two rates and a gap', () => {
    const names = suite.flatMap((f) => f.scenarios.map((s) => s.name));
    for (const kind of ['spike', 'step', 'ramp', 'object', 'storm', 'glitch', 'gap'])
      expect(names).toContain(`base/${kind}`);
    expect(new Set(suite.map((f) => f.noiseNt)).size).toBe(2);
    expect(new Set(suite.map((f) => f.rateHz)).size).toBe(2);
  });

  test('keeps training and held-out data normal and the sizes small', () => {
    for (const family of suite) {
      expect(family.train.channels).toHaveLength(6);
      expect(family.train.timestamps.length).toBe(SUITE_SHAPE.trainWindows * SUITE_SHAPE.window);
      expect(family.heldOut.timestamps.length).toBe(SUITE_SHAPE.heldOutWindows * SUITE_SHAPE.window);
      const normalEnd = family.heldOut.timestamps[family.heldOut.timestamps.length - 1]!;
      for (const scenario of family.scenarios) {
        for (const label of scenario.labels) expect(label.start).toBeGreaterThan(normalEnd);
        expect(scenario.test.timestamps[0]!).toBeGreaterThan(normalEnd);
      }
    }
  });

  test('labels the glitch apart from the events the vote should find', () => {
    const glitch = suite[0]!.scenarios.find((s) => s.name === 'base/glitch')!;
    expect(glitch.events).toHaveLength(0);
    expect(glitch.glitches).toHaveLength(1);
    expect(glitch.labels[0]!.sensors).toEqual(['S2_OBS1_2']);
  });

  test('drops a stretch of every sensor in the gap scenario', () => {
    const base = suite[0]!;
    const gap = base.scenarios.find((s) => s.name === 'base/gap')!;
    const step = base.scenarios.find((s) => s.name === 'base/step')!;
    expect(step.test.timestamps.length - gap.test.timestamps.length).toBe(60 * base.rateHz);
  });

  test('gives the same tables on every call', () => {
    const again = buildScenarioSuite({ quick: true });
    expect(Array.from(again[0]!.train.values[0]!)).toEqual(Array.from(suite[0]!.train.values[0]!));
    expect(again[0]!.scenarios.map((s) => s.name)).toEqual(['base/spike', 'base/step', 'base/glitch']);
  });
});
