import { describe, expect, it } from 'vitest';
import { type ListenedChannel, SilenceWatch } from '../../src/stream/silence.js';
import { info } from './helpers.js';

function listened(channel: string, heardAt: number, lastTimestamp = Number.NaN): ListenedChannel {
  return { info: info(channel), heardAt, lastTimestamp, lastRmse: 0.5, silent: false };
}

describe('SilenceWatch', () => {
  it('reports channels of one sensor that fall silent together in one event', () => {
    const watch = new SilenceWatch(1_000, 'v', 0);
    const channels = [
      listened('S1__b_x', 100, 5_000),
      listened('S1__b_y', 100, 5_000),
      listened('S2__b_x', 900),
    ];
    const events = watch.check(channels, 1_100);
    expect(events.map((e) => [e.event, e.sensor, e.id, e.channels.map((c) => c.channel)])).toEqual([
      ['sensor.silent', 'S1', 'S1-silent-5000', ['S1__b_x', 'S1__b_y']],
    ]);
    expect(watch.check(channels, 1_500)).toEqual([]);
  });

  it('keeps one episode id until every channel of the sensor is back', () => {
    const watch = new SilenceWatch(1_000, 'v', 0);
    const [bx, by] = [listened('S1__b_x', 0, 700), listened('S1__b_y', 500, 800)];
    expect(watch.check([bx!, by!], 1_000).map((e) => e.id)).toEqual(['S1-silent-700']);
    expect(watch.check([bx!, by!], 1_500).map((e) => e.id)).toEqual(['S1-silent-700']);
    expect(watch.resumed('S1', [bx!], 9_000)).toMatchObject({ event: 'sensor.resumed', id: 'S1-silent-700' });
    expect(by!.silent).toBe(true);
    expect(watch.resumed('S1', [by!], 9_500).id).toBe('S1-silent-700');
    by!.lastTimestamp = 9_500;
    by!.heardAt = 10_000;
    expect(watch.check([bx!, by!], 11_000).map((e) => e.id)).toEqual(['S1-silent-9500']);
  });
});
