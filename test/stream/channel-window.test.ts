import { describe, expect, it } from 'vitest';
import { ChannelWindow, type DueWindow } from '../../src/stream/channel-window.js';

function makeChannel(window: number, step: number, maxGapMs = 1_000, mean = 0, scale = 1) {
  const channel = new ChannelWindow(
    { channel: 'S1__b_x', sensor: 'S1', component: 'b_x', group: 'OBS_ALL', mean, scale, threshold: 1 },
    { window, step, maxGapMs },
  );
  const due: DueWindow[] = [];
  channel.windows$.subscribe((w) => due.push(w));
  return { channel, due };
}

/** Feeds values 0, 1, 2, … at timestamps t0, t0 + 10, … */
function feed(channel: ChannelWindow, count: number, t0 = 0, first = 0): void {
  for (let i = 0; i < count; i++) channel.accept(t0 + i * 10, first + i);
}

describe('ChannelWindow', () => {
  it('emits the first window at W samples and then every step samples', () => {
    const { channel, due } = makeChannel(4, 4);
    feed(channel, 3);
    expect(due).toHaveLength(0);
    feed(channel, 1, 30, 3);
    expect(due).toHaveLength(1);
    feed(channel, 7, 40, 4);
    expect(due.map((w) => [...w.data])).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(due.map((w) => [w.start, w.end])).toEqual([
      [0, 30],
      [40, 70],
    ]);
    expect(channel.counts.windows).toBe(2);
  });

  it('emits overlapping windows when step is below W', () => {
    const { channel, due } = makeChannel(4, 2);
    feed(channel, 9);
    // Offline windows of 9 samples: starts 0, 2, 4 (start + W <= n).
    expect(due.map((w) => [...w.data])).toEqual([
      [0, 1, 2, 3],
      [2, 3, 4, 5],
      [4, 5, 6, 7],
    ]);
    // Each window's votes are complete up to the next window's start.
    expect(due.map((w) => w.settledBefore)).toEqual([20, 40, 60]);
  });

  it('settles up to just past its end when windows do not overlap', () => {
    const { channel, due } = makeChannel(3, 3);
    feed(channel, 3);
    expect(due[0]!.settledBefore).toBe(21);
  });

  it('scales values with the channel scaler', () => {
    const { channel, due } = makeChannel(2, 2, 1_000, 10, 4);
    channel.accept(0, 18);
    channel.accept(10, 2);
    expect([...due[0]!.data]).toEqual([2, -2]);
  });

  it('drops duplicates and late samples and counts them by reason', () => {
    const { channel, due } = makeChannel(3, 3);
    expect(channel.accept(100, 1)).toBe('accepted');
    expect(channel.accept(100, 9)).toBe('duplicate');
    expect(channel.accept(90, 9)).toBe('late');
    expect(channel.accept(110, 2)).toBe('accepted');
    expect(channel.accept(120, 3)).toBe('accepted');
    expect(channel.counts).toEqual({ accepted: 3, duplicate: 1, late: 1, gapResets: 0, windows: 1 });
    expect([...due[0]!.data]).toEqual([1, 2, 3]);
  });

  it('empties the buffer after a gap so that no window spans it', () => {
    const { channel, due } = makeChannel(3, 3, 50);
    feed(channel, 2);
    // 10 → 200 is a gap of 190 ms, beyond maxGapMs 50.
    feed(channel, 3, 200, 100);
    expect(channel.counts.gapResets).toBe(1);
    expect(due.map((w) => [...w.data])).toEqual([[100, 101, 102]]);
    expect(due[0]!.start).toBe(200);
  });

  it('keeps the buffer across a gap no longer than maxGapMs', () => {
    const { channel, due } = makeChannel(3, 3, 50);
    channel.accept(0, 0);
    channel.accept(50, 1);
    channel.accept(100, 2);
    expect(channel.counts.gapResets).toBe(0);
    expect(due).toHaveLength(1);
  });

  it('hands each window to onDue before windows$, and completes windows$ on close', () => {
    const order: string[] = [];
    const channel = new ChannelWindow(
      {
        channel: 'S1__b_x',
        sensor: 'S1',
        component: 'b_x',
        group: 'OBS_ALL',
        mean: 0,
        scale: 1,
        threshold: 1,
      },
      { window: 2, step: 2, maxGapMs: 1_000 },
      (w) => order.push(`onDue ${w.end}`),
    );
    feed(channel, 2);
    expect(order).toEqual(['onDue 10']);
    let completed = false;
    channel.windows$.subscribe({
      next: (w) => order.push(`windows$ ${w.end}`),
      complete: () => (completed = true),
    });
    feed(channel, 2, 20, 2);
    expect(order).toEqual(['onDue 10', 'onDue 30', 'windows$ 30']);
    channel.close();
    expect(completed).toBe(true);
    feed(channel, 2, 40, 4);
    expect(order).toHaveLength(3);
    let lateCompleted = false;
    channel.windows$.subscribe({ complete: () => (lateCompleted = true) });
    expect(lateCompleted).toBe(true);
  });
});
