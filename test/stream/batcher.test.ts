import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Batcher, type ScoredBatch } from '../../src/stream/batcher.js';
import { dueWindow, FakeEngine, info } from './helpers.js';

const W = 4;
const channel = info('S1__b_x', 'OBS1', 2);

function makeBatcher(
  engine: FakeEngine,
  options: { maxBatch: number; maxDelayMs: number; maxQueue?: number },
) {
  const errors: unknown[] = [];
  const batcher = new Batcher(engine, { window: W, ...options, onError: (e) => errors.push(e) });
  const scored: ScoredBatch[] = [];
  batcher.scored$.subscribe((b) => scored.push(b));
  return { batcher, scored, errors };
}

describe('Batcher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a batch as soon as maxBatch windows wait', async () => {
    const engine = new FakeEngine(W);
    const { batcher, scored } = makeBatcher(engine, { maxBatch: 3, maxDelayMs: 1_000 });
    batcher.add(dueWindow(channel, 0, W));
    batcher.add(dueWindow(channel, 40, W));
    expect(engine.batches).toHaveLength(0);
    batcher.add(dueWindow(channel, 80, W));
    expect(engine.batches).toHaveLength(1);
    expect(engine.batches[0]!.channels).toEqual(['S1__b_x', 'S1__b_x', 'S1__b_x']);
    expect(engine.batches[0]!.data).toHaveLength(3 * W);
    await vi.advanceTimersByTimeAsync(0);
    expect(scored.map((b) => b.scores.length)).toEqual([3]);
  });

  it('sends a partial batch maxDelayMs after its oldest window arrived', async () => {
    const engine = new FakeEngine(W);
    const { batcher, scored } = makeBatcher(engine, { maxBatch: 10, maxDelayMs: 100 });
    batcher.add(dueWindow(channel, 0, W));
    await vi.advanceTimersByTimeAsync(60);
    batcher.add(dueWindow(channel, 40, W));
    await vi.advanceTimersByTimeAsync(39);
    expect(engine.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(engine.batches).toHaveLength(1);
    expect(scored[0]!.windows.map((w) => w.start)).toEqual([0, 40]);
  });

  it('flags a window strictly above its threshold', async () => {
    const engine = new FakeEngine(W);
    const { batcher, scored } = makeBatcher(engine, { maxBatch: 3, maxDelayMs: 10 });
    batcher.add(dueWindow(channel, 0, W, 1.5));
    batcher.add(dueWindow(channel, 40, W, 2));
    batcher.add(dueWindow(channel, 80, W, 2.5));
    await vi.advanceTimersByTimeAsync(0);
    expect(scored[0]!.scores.map((s) => [s.rmse, s.threshold, s.anomalous])).toEqual([
      [1.5, 2, false],
      [2, 2, false],
      [2.5, 2, true],
    ]);
    expect(scored[0]!.scores[0]).toMatchObject({
      channel: 'S1__b_x',
      sensor: 'S1',
      component: 'b_x',
      group: 'OBS1',
      start: 0,
      end: 3,
    });
  });

  it('keeps one batch in flight and sends what waited meanwhile when it returns', async () => {
    const engine = new FakeEngine(W, true);
    const { batcher, scored } = makeBatcher(engine, { maxBatch: 2, maxDelayMs: 10 });
    for (let i = 0; i < 5; i++) batcher.add(dueWindow(channel, i * 40, W));
    expect(engine.batches).toHaveLength(1);
    expect(batcher.queueDepth).toBe(3);
    engine.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(engine.batches.map((b) => b.channels.length)).toEqual([2, 2]);
    engine.release();
    await vi.advanceTimersByTimeAsync(0);
    // The last window waits for its own delay.
    expect(engine.batches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(10);
    expect(engine.batches).toHaveLength(3);
    engine.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(scored.flatMap((b) => b.windows.map((w) => w.start))).toEqual([0, 40, 80, 120, 160]);
    expect(batcher.counts).toMatchObject({ batches: 3, scored: 5, batchSizeMax: 2, batchSizeSum: 5 });
  });

  it('hands an engine on other threads its next batch before passing on the scores', async () => {
    for (const offThread of [true, false]) {
      const engine = new FakeEngine(W, true);
      engine.offThread = offThread;
      const { batcher, scored } = makeBatcher(engine, { maxBatch: 2, maxDelayMs: 10 });
      const sentWhenScored: number[] = [];
      batcher.scored$.subscribe(() => sentWhenScored.push(engine.batches.length));
      for (let i = 0; i < 4; i++) batcher.add(dueWindow(channel, i * 40, W));
      engine.release();
      await vi.advanceTimersByTimeAsync(0);
      expect(scored).toHaveLength(1);
      // Off the event loop, the second batch is already with the engine when the first one's scores go out.
      expect(sentWhenScored).toEqual([offThread ? 2 : 1]);
      expect(engine.batches).toHaveLength(2);
    }
  });

  it('drops the oldest waiting windows beyond maxQueue and counts them', async () => {
    const engine = new FakeEngine(W, true);
    const { batcher, scored } = makeBatcher(engine, { maxBatch: 2, maxDelayMs: 10, maxQueue: 3 });
    for (let i = 0; i < 7; i++) batcher.add(dueWindow(channel, i * 40, W));
    // Two in flight, five arrived behind them, three kept.
    expect(batcher.queueDepth).toBe(3);
    expect(batcher.counts.droppedQueue).toBe(2);
    const drained = batcher.drain();
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(0);
      engine.release();
    }
    await drained;
    expect(scored.flatMap((b) => b.windows.map((w) => w.start))).toEqual([0, 40, 160, 200, 240]);
  });

  it('scores everything waiting on drain without waiting for the delay', async () => {
    const engine = new FakeEngine(W);
    const { batcher, scored } = makeBatcher(engine, { maxBatch: 2, maxDelayMs: 60_000 });
    for (let i = 0; i < 5; i++) batcher.add(dueWindow(channel, i * 40, W));
    await batcher.drain();
    expect(scored.map((b) => b.scores.length)).toEqual([2, 2, 1]);
    expect(batcher.queueDepth).toBe(0);
  });

  it('counts the windows of a failed batch and keeps going', async () => {
    const engine = new FakeEngine(W);
    const failing = vi.spyOn(engine, 'score').mockRejectedValueOnce(new Error('engine down'));
    const { batcher, scored, errors } = makeBatcher(engine, { maxBatch: 2, maxDelayMs: 10 });
    batcher.add(dueWindow(channel, 0, W));
    batcher.add(dueWindow(channel, 40, W));
    batcher.add(dueWindow(channel, 80, W));
    await batcher.drain();
    expect(failing).toHaveBeenCalledTimes(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['engine down']);
    expect(batcher.counts).toMatchObject({ failedBatches: 1, droppedInference: 2, scored: 1 });
    expect(scored.flatMap((b) => b.windows.map((w) => w.start))).toEqual([80]);
  });

  it('subtracts each window mean when the bundle was trained that way', async () => {
    const engine = new FakeEngine(W);
    const batcher = new Batcher(engine, { window: W, maxBatch: 1, maxDelayMs: 0, preprocess: 'window-mean' });
    const window = dueWindow(channel, 0, W);
    window.data.set([1, 2, 3, 6]);
    batcher.add(window);
    await batcher.drain();
    expect([...engine.batches[0]!.data]).toEqual([-2, -1, 0, 3]);
    expect([...window.data]).toEqual([1, 2, 3, 6]);
  });
});
