import { mkdirSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { Registry } from 'prom-client';
import { Subject } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard } from '../../src/dashboard/server.js';
import type { Bundle } from '../../src/detector/bundle.js';
import { startHttpServer } from '../../src/ops/http.js';
import type { AnomalyEvent, BucketVote, Sample, WindowScore } from '../../src/stream/types.js';
import { bundleOf } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const GROUPS = { OBS1: ['S1_OBS1', 'S2_OBS1'], OBS2: ['S3_OBS2', 'S4_OBS2'] };
const bundle: Pick<Bundle, 'manifest' | 'thresholds'> = {
  ...bundleOf(GROUPS, (channel) => 0.9 + (channel.charCodeAt(1) % 4) * 0.1),
};
bundle.manifest.vote = { fraction: 0.56 };
const WINDOW_S = 16;
const STEP_S = 8;
/** The group anomaly: OBS1, seconds after T0, and the channels it disturbs with their RMSE / threshold. */
const ANOMALY = { from: 380, to: 440 };
const DISTURBED: Record<string, number> = {
  S1_OBS1__b_x: 3.4,
  S1_OBS1__b_z: 2.6,
  S1_OBS1__b_y: 1.6,
  S2_OBS1__b_x: 1.9,
};
/** A spike on one channel alone: a sensor event. */
const SPIKE = { channel: 'S4_OBS2__b_y', at: 200, ratio: 2.2 };

/** Deterministic noise in [-1, 1). */
function noise(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

const BASELINE: Record<string, number> = { b_x: 18_520, b_y: -460, b_z: 46_110 };

function sampleAt(sensor: string, s: number, random: () => number): Sample {
  const phase = sensor.charCodeAt(1) * 0.7;
  const disturbance = (component: string) => {
    const channel = `${sensor}__${component}`;
    let extra = 0;
    if (DISTURBED[channel] && s >= ANOMALY.from && s < ANOMALY.to) {
      const k = (s - ANOMALY.from) / (ANOMALY.to - ANOMALY.from);
      extra = DISTURBED[channel]! * 14 * Math.sin(Math.PI * k) * (1 + 0.4 * Math.sin(s * 0.9));
    }
    if (channel === SPIKE.channel && s >= SPIKE.at && s < SPIKE.at + 6) extra += 22;
    return extra;
  };
  const value = (component: string, amplitude: number, offset: number) =>
    BASELINE[component]! +
    amplitude * Math.sin((2 * Math.PI * s) / 420 + phase + offset) +
    0.8 * random() +
    disturbance(component);
  return {
    sensor,
    timestamp: T0 + s * 1000,
    values: { b_x: value('b_x', 9, 0), b_y: value('b_y', 5, 1.2), b_z: value('b_z', 7, 2.1) },
  };
}

/** Scores of every channel for windows ending at `s`, with the anomaly's channels over their thresholds. */
function scoresAt(s: number, random: () => number): WindowScore[] {
  const scores: WindowScore[] = [];
  for (const [channel, entry] of Object.entries(bundle.manifest.channels)) {
    const threshold = bundle.thresholds[channel]!;
    const start = s - WINDOW_S + 1;
    let ratio = 0.45 + 0.12 * random();
    if (DISTURBED[channel] && start < ANOMALY.to && s >= ANOMALY.from)
      ratio = DISTURBED[channel]! * (0.85 + 0.2 * random());
    if (channel === SPIKE.channel && start <= SPIKE.at + 5 && s >= SPIKE.at) ratio = SPIKE.ratio;
    const rmse = ratio * threshold;
    scores.push({
      channel,
      ...entry,
      start: T0 + start * 1000,
      end: T0 + s * 1000,
      rmse,
      threshold,
      anomalous: rmse > threshold,
    });
  }
  return scores;
}

interface Inputs {
  readonly samples$: Subject<Sample>;
  readonly scores$: Subject<WindowScore>;
  readonly votes$: Subject<BucketVote>;
  readonly events$: Subject<AnomalyEvent>;
}

/**
 * The synthetic network as the live path would report it: samples every second, scores every step, bucket
 * votes a window behind the samples, and events from the votes (start at the first anomalous bucket of OBS1,
 * end after three normal ones; a sensor event where a channel is flagged alone).
 */
class SyntheticNetwork {
  /** Anomalous windows per channel: first and last second, RMSE. */
  private readonly flagged = new Map<string, Array<{ from: number; to: number; rmse: number }>>();
  private open: {
    start: number;
    last: number;
    normal: number;
    peak: number;
    channels: Map<string, number>;
  } | null = null;
  private spikeReported = false;
  readonly events: AnomalyEvent[] = [];

  constructor(private readonly inputs: Inputs) {}

  /** Pushes the seconds `[from, to)`. */
  feed(from: number, to: number): void {
    const random = noise(from + 1);
    for (let s = from; s < to; s++) {
      for (const sensor of Object.values(GROUPS).flat())
        this.inputs.samples$.next(sampleAt(sensor, s, random));
      if (s >= WINDOW_S - 1 && (s - WINDOW_S + 1) % STEP_S === 0) {
        for (const score of scoresAt(s, random)) {
          this.inputs.scores$.next(score);
          if (!score.anomalous) continue;
          const spans = this.flagged.get(score.channel) ?? [];
          spans.push({ from: s - WINDOW_S + 1, to: s, rmse: score.rmse });
          this.flagged.set(score.channel, spans);
        }
      }
      const bucket = s - WINDOW_S;
      if (bucket >= 0) this.decide(bucket);
    }
  }

  /** Channels flagged at second `s`, with their highest RMSE there. */
  private flaggedAt(s: number, members: readonly string[]): Map<string, number> {
    const result = new Map<string, number>();
    for (const channel of members) {
      for (const span of this.flagged.get(channel) ?? []) {
        if (s >= span.from && s <= span.to)
          result.set(channel, Math.max(result.get(channel) ?? 0, span.rmse));
      }
    }
    return result;
  }

  private decide(s: number): void {
    const all = Object.keys(bundle.manifest.channels);
    const ofGroup = (group: string) => all.filter((c) => bundle.manifest.channels[c]!.group === group);
    const vote = (group: string, members: readonly string[]) => {
      const votes = this.flaggedAt(s, members).size;
      const required = Math.ceil(members.length * 0.56);
      const result = { group, start: T0 + s * 1000, votes, required, anomalous: votes >= required };
      this.inputs.votes$.next(result);
      return result;
    };
    const obs1 = vote('OBS1', ofGroup('OBS1'));
    vote('OBS2', ofGroup('OBS2'));
    vote('global', all);

    const event = (kind: 'anomaly.start' | 'anomaly.end', start: number): AnomalyEvent => ({
      id: `OBS1-${T0 + start * 1000}`,
      event: kind,
      scope: 'group',
      group: 'OBS1',
      start: iso(start),
      peakVotes: this.open!.peak,
      requiredVotes: obs1.required,
      channels: channelList(this.flaggedAt(s, ofGroup('OBS1'))),
      bundleVersion: 'test',
    });
    if (obs1.anomalous) {
      const flagged = this.flaggedAt(s, ofGroup('OBS1'));
      if (!this.open) {
        this.open = { start: s, last: s, normal: 0, peak: obs1.votes, channels: new Map() };
        this.emit(event('anomaly.start', s));
      }
      this.open.last = s;
      this.open.normal = 0;
      this.open.peak = Math.max(this.open.peak, obs1.votes);
      for (const [channel, rmse] of flagged) {
        this.open.channels.set(channel, Math.max(rmse, this.open.channels.get(channel) ?? 0));
      }
    } else if (this.open && ++this.open.normal === 3) {
      // As the live path does, the end names every channel of the event with its highest RMSE.
      this.emit({
        ...event('anomaly.end', this.open.start),
        end: iso(this.open.last + 1),
        channels: channelList(this.open.channels),
      });
      this.open = null;
    }

    const spike = this.flaggedAt(s, [SPIKE.channel]);
    if (spike.size > 0 && !this.spikeReported) {
      this.spikeReported = true;
      this.emit({
        id: `S4_OBS2-${T0 + s * 1000}`,
        event: 'sensor.anomaly',
        scope: 'sensor',
        group: 'OBS2',
        sensor: 'S4_OBS2',
        start: iso(s),
        channels: channelList(spike),
        bundleVersion: 'test',
      });
    }
  }

  private emit(event: AnomalyEvent): void {
    this.events.push(event);
    this.inputs.events$.next(event);
  }
}

const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const channelList = (rmse: Map<string, number>) =>
  [...rmse]
    .map(([channel, value]) => ({ channel, rmse: value, threshold: bundle.thresholds[channel]! }))
    .sort((a, b) => a.channel.localeCompare(b.channel));

describe('the dashboard page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('opens before any data and draws what arrives', async () => {
    const inputs = {
      samples$: new Subject<Sample>(),
      scores$: new Subject<WindowScore>(),
      votes$: new Subject<BucketVote>(),
      events$: new Subject<AnomalyEvent>(),
    };
    const dashboard = createDashboard({ bundle, ...inputs, updateIntervalMs: 50 });
    const server = await startHttpServer({
      port: 0,
      ready: () => true,
      registry: new Registry(),
      routes: dashboard.routes,
    });
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    try {
      await page.goto(server.url);
      await page.locator('#connection[data-state="live"]').waitFor();
      expect(await page.locator('#events-sub').textContent()).toBe('none yet');
      expect(await page.locator('[data-sensor]').count()).toBe(4);
      new SyntheticNetwork(inputs).feed(0, 240);
      await page.locator('[data-kind="sensor.anomaly"]').waitFor();
      await page.locator('[data-sensor="S4_OBS2"] .uplot[data-shaded="1"]').first().waitFor();
      expect(await page.locator('#facts').textContent()).toContain('12 channels');
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      dashboard.close();
      await server.close();
    }
  });

  it('shows history from before it opened, live updates and the event that names its channels', async () => {
    const inputs = {
      samples$: new Subject<Sample>(),
      scores$: new Subject<WindowScore>(),
      votes$: new Subject<BucketVote>(),
      events$: new Subject<AnomalyEvent>(),
    };
    const dashboard = createDashboard({
      bundle,
      ...inputs,
      title: 'magwatch · test network',
      updateIntervalMs: 100,
    });
    const server = await startHttpServer({
      port: 0,
      ready: () => true,
      registry: new Registry(),
      routes: dashboard.routes,
    });
    const network = new SyntheticNetwork(inputs);
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    try {
      // The page opens in the middle of the anomaly: what came before must come from the snapshot.
      network.feed(0, 420);
      const [sensorEvent, eventStart] = network.events;
      expect([sensorEvent?.event, eventStart?.event]).toEqual(['sensor.anomaly', 'anomaly.start']);
      await page.goto(server.url);
      const row = page.locator(`[data-event-id="${eventStart!.id}"]`);
      await row.waitFor();
      expect(await row.getAttribute('data-state')).toBe('open');
      await page.locator('#connection[data-state="live"]').waitFor();
      await page.locator('[data-sensor="S1_OBS1"].alarm').waitFor();
      await page.locator('[data-sensor="S1_OBS1"] .uplot[data-shaded="1"]').first().waitFor();
      expect(await page.locator('[data-group="OBS1"] .panel-head .badge').textContent()).toBe(
        'anomaly · group',
      );
      expect(await page.locator('[data-sensor="S3_OBS2"].alarm').count()).toBe(0);
      mkdirSync('artifacts', { recursive: true });
      await page.screenshot({ path: 'artifacts/dashboard-active.png', fullPage: true });

      // Live: the rest of the recording, with the anomaly's end, arrives over the event stream.
      network.feed(420, 600);
      expect(network.events.at(-1)).toMatchObject({ id: eventStart!.id, event: 'anomaly.end' });
      await page.locator(`[data-event-id="${eventStart!.id}"][data-state="ended"]`).waitFor();
      await page.locator(`[data-event-id="${sensorEvent!.id}"]`).waitFor();
      await page.locator('[data-sensor="S1_OBS1"]:not(.alarm)').waitFor();
      const chips = page.locator(`[data-event-id="${eventStart!.id}"] .chip`);
      const channels = await chips.evaluateAll((nodes) =>
        nodes.map((node) => node.getAttribute('data-channel')),
      );
      expect(channels).toEqual(Object.keys(DISTURBED).sort());
      expect(await chips.first().textContent()).toMatch(/^S1_OBS1 b_x\d\.\d\d \/ \d\.\d\d$/);
      await page.locator('#data-time', { hasText: '12:09:59' }).waitFor();
      await page.screenshot({ path: 'artifacts/dashboard.png', fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      dashboard.close();
      await server.close();
    }
  });
});
