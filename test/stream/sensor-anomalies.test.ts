import { describe, expect, it } from 'vitest';
import type { FinalBucket } from '../../src/stream/buckets.js';
import type { ChannelInfo } from '../../src/stream/channel-window.js';
import { SensorAnomalies } from '../../src/stream/sensor-anomalies.js';
import { info } from './helpers.js';

const x = info('S1_OBS1__b_x');
const y = info('S1_OBS1__b_y');
const other = info('S2_OBS1__b_x');

function global(second: number, flagged: ChannelInfo[]): FinalBucket {
  const votes = flagged.length;
  return {
    vote: { group: 'global', start: second * 1_000, votes, required: 5, anomalous: false },
    flagged: new Map(flagged.map((c) => [c, 3])),
  };
}

const nobodyCarries = () => false;

describe('SensorAnomalies', () => {
  it('reports a sensor once per stretch, whichever of its channels is flagged', () => {
    const sensors = new SensorAnomalies('v');
    expect(
      sensors.step(global(0, [x]), nobodyCarries).map((e) => [e.id, e.channels.map((c) => c.channel)]),
    ).toEqual([['S1_OBS1-0', ['S1_OBS1__b_x']]]);
    expect(sensors.step(global(1, [x, y]), nobodyCarries)).toEqual([]);
    expect(sensors.step(global(2, [y]), nobodyCarries)).toEqual([]);
    expect(sensors.step(global(3, []), nobodyCarries)).toEqual([]);
    expect(sensors.step(global(4, [y]), nobodyCarries).map((e) => e.id)).toEqual(['S1_OBS1-4000']);
  });

  it('stays quiet while a vote carries the sensor and reports when the vote stops carrying it', () => {
    const sensors = new SensorAnomalies('v');
    let carried = true;
    expect(sensors.step(global(0, [x, other]), () => carried)).toEqual([]);
    carried = false;
    const events = sensors.step(global(1, [x]), () => carried);
    expect(events.map((e) => [e.event, e.scope, e.sensor, e.start])).toEqual([
      ['sensor.anomaly', 'sensor', 'S1_OBS1', '1970-01-01T00:00:01.000Z'],
    ]);
  });

  it('lists only the channels no vote carries', () => {
    const sensors = new SensorAnomalies('v');
    const [event] = sensors.step(global(0, [x, y]), (c) => c === x);
    expect(event!.channels).toEqual([{ channel: 'S1_OBS1__b_y', rmse: 3, threshold: 1 }]);
  });
});
