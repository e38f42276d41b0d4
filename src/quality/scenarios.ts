/**
 * The labelled scenario suite: simulated networks with fixed seeds, one anomaly kind per scenario, two noise
 * levels, two sampling rates and one run with a gap. Scenarios that share a sampling rate, a noise level and a
 * seed share their normal data, so the bench trains one model set per family, not per scenario. Small on
 * purpose: 2 sensors (6 channels) and 24 training windows of 64 samples, because training runs on the CPU.
 */
import type { Interval } from '../evaluate/metrics.js';
import type { LongRow, WideTable } from '../ingest/table.js';
import { buildWideTable } from '../ingest/wide.js';
import type { AnomalySpec, Label } from '../sim/anomalies.js';
import { simulate } from '../sim/simulate.js';

/** One labelled test run. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly test: WideTable;
  /** Every injected anomaly, glitches included. */
  readonly labels: readonly Label[];
  /** What the global vote should find: every label but the single-sensor glitches. */
  readonly events: readonly Interval[];
  /** Single-sensor instrument faults, which the global vote must not report. */
  readonly glitches: readonly Interval[];
}

/** Scenarios over one simulated network and its normal data. */
export interface ScenarioFamily {
  readonly name: string;
  readonly rateHz: number;
  readonly noiseNt: number;
  /** Normal data to train on. */
  readonly train: WideTable;
  /** Normal data after `train`, never trained on, for held-out thresholds. */
  readonly heldOut: WideTable;
  readonly scenarios: readonly Scenario[];
}

/** Suite size: windows of 64 samples of normal training and held-out data, and test windows per scenario. */
export const SUITE_SHAPE = { window: 64, trainWindows: 24, heldOutWindows: 8, testWindows: 90 } as const;

/** 2016-01-01T06:00:00Z: a fixed start, so the simulated daily variation is the same every run. */
const SUITE_START = Date.UTC(2016, 0, 1, 6);

interface FamilySpec {
  readonly name: string;
  readonly rateHz: number;
  readonly noiseNt: number;
  readonly seed: number;
  /** Scenario name → anomalies, `atS` relative to the test part's start; `gap` drops samples of all sensors. */
  readonly scenarios: ReadonlyArray<{
    name: string;
    description: string;
    anomalies: (testS: number) => AnomalySpec[];
    gap?: (testS: number) => { atS: number; durationS: number };
  }>;
}

const kindScenario = (kind: AnomalySpec['kind'], durationS: number, extra: Partial<AnomalySpec> = {}) => ({
  name: kind,
  description: `one ${kind} of ${durationS} s`,
  anomalies: (testS: number): AnomalySpec[] => [{ kind, atS: 0.45 * testS, durationS, ...extra }],
});

/** The suite's definition; `quick` keeps one family of three scenarios. */
function familySpecs(quick: boolean): FamilySpec[] {
  const base: FamilySpec = {
    name: 'base',
    rateHz: 10,
    noiseNt: 0.2,
    seed: 11,
    scenarios: [
      kindScenario('spike', 1),
      kindScenario('step', 30),
      kindScenario('ramp', 40),
      kindScenario('object', 40),
      kindScenario('storm', 120),
      // The last sensor's b_z only: the vote must keep it out.
      kindScenario('glitch', 30, { sensors: ['S2_OBS1_2'], components: ['b_z'] }),
      {
        name: 'gap',
        description: 'a step, and 60 s missing from every sensor before it',
        anomalies: (testS) => [{ kind: 'step', atS: 0.6 * testS, durationS: 30 }],
        gap: (testS) => ({ atS: 0.3 * testS, durationS: 60 }),
      },
    ],
  };
  if (quick)
    return [
      { ...base, scenarios: base.scenarios.filter((s) => ['spike', 'step', 'glitch'].includes(s.name)) },
    ];
  const mixed = (durations: { spike: number; step: number; object: number }) => ({
    name: 'mixed',
    description: `a spike, a step of ${durations.step} s and an object of ${durations.object} s`,
    anomalies: (testS: number): AnomalySpec[] => [
      { kind: 'spike', atS: 0.2 * testS, durationS: durations.spike },
      { kind: 'step', atS: 0.45 * testS, durationS: durations.step },
      { kind: 'object', atS: 0.75 * testS, durationS: durations.object },
    ],
  });
  return [
    base,
    {
      name: 'noisy',
      rateHz: 10,
      noiseNt: 1,
      seed: 12,
      scenarios: [mixed({ spike: 1, step: 30, object: 40 })],
    },
    {
      name: 'slow',
      rateHz: 1,
      noiseNt: 0.2,
      seed: 13,
      scenarios: [mixed({ spike: 3, step: 300, object: 400 })],
    },
  ];
}

/** Builds the suite; the same call gives the same tables, bit for bit. */
export function buildScenarioSuite(options: { quick?: boolean } = {}): ScenarioFamily[] {
  const { window, trainWindows, heldOutWindows, testWindows } = SUITE_SHAPE;
  return familySpecs(options.quick ?? false).map((family) => {
    const normalS = ((trainWindows + heldOutWindows) * window) / family.rateHz;
    const trainEnd = SUITE_START + (trainWindows * window * 1000) / family.rateHz;
    const testStart = SUITE_START + normalS * 1000;
    const testS = (testWindows * window) / family.rateHz;
    let train: WideTable | undefined;
    let heldOut: WideTable | undefined;
    const scenarios = family.scenarios.map((spec): Scenario => {
      const { rows, labels } = simulate({
        observatories: 1,
        sensorsPerObservatory: 2,
        rateHz: family.rateHz,
        start: SUITE_START,
        durationS: normalS + testS,
        seed: family.seed,
        noiseNt: family.noiseNt,
        anomalies: spec.anomalies(testS).map((a) => ({ ...a, atS: a.atS + normalS })),
      });
      // Anomalies only touch the test part, and the background does not depend on them: every scenario of
      // the family has the same normal rows, so the first one's serve all.
      train ??= table(rows, SUITE_START, trainEnd, `${family.name} train`);
      heldOut ??= table(rows, trainEnd, testStart, `${family.name} held-out`);
      const gap = spec.gap?.(testS);
      const dropFrom = gap ? testStart + gap.atS * 1000 : Number.POSITIVE_INFINITY;
      const dropTo = gap ? dropFrom + gap.durationS * 1000 : Number.NEGATIVE_INFINITY;
      const kept = rows.filter((r) => r.timestamp < dropFrom || r.timestamp >= dropTo);
      const test = table(kept, testStart, Number.POSITIVE_INFINITY, `${family.name}/${spec.name}`);
      const glitches = labels.filter((l) => l.kind === 'glitch');
      return {
        name: `${family.name}/${spec.name}`,
        description: `${spec.description} (${family.rateHz} Hz, noise ${family.noiseNt} nT)`,
        test,
        labels,
        events: labels.filter((l) => l.kind !== 'glitch').map(({ start, end }) => ({ start, end })),
        glitches: glitches.map(({ start, end }) => ({ start, end })),
      };
    });
    return {
      name: family.name,
      rateHz: family.rateHz,
      noiseNt: family.noiseNt,
      train: train!,
      heldOut: heldOut!,
      scenarios,
    };
  });
}

function table(rows: readonly LongRow[], from: number, to: number, source: string): WideTable {
  return buildWideTable(
    rows.filter((r) => r.timestamp >= from && r.timestamp < to),
    source,
  );
}
