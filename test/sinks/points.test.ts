import { describe, expect, it } from 'vitest';
import { encodePoint } from '../../src/sinks/line-protocol.js';
import { eventPoint, INTEGER_FIELDS, rmsePoint, votePoint } from '../../src/sinks/points.js';
import type { AnomalyEvent } from '../../src/stream/types.js';

describe('DESIGN measurements', () => {
  it('maps a window score to magwatch_rmse at the window end', () => {
    const point = rmsePoint({
      channel: 'S1_OBS1_1__b_x',
      sensor: 'S1_OBS1_1',
      component: 'b_x',
      group: 'OBS1',
      start: 1000,
      end: 64_000,
      rmse: 0.75,
      threshold: 0.5,
      anomalous: true,
    });
    expect(point).toEqual({
      measurement: 'magwatch_rmse',
      tags: { channel: 'S1_OBS1_1__b_x', sensor: 'S1_OBS1_1', component: 'b_x', group: 'OBS1' },
      fields: { rmse: 0.75, threshold: 0.5, anomalous: true },
      time: 64_000,
    });
  });

  it('maps a bucket vote to magwatch_votes at the bucket start, with integer votes', () => {
    const point = votePoint({ group: 'global', start: 5000, votes: 3, required: 5, anomalous: false });
    expect(encodePoint(point, { integerFields: INTEGER_FIELDS })).toBe(
      'magwatch_votes,group=global votes=3i,required=5i,anomalous=false 5000',
    );
  });

  it('maps an event to magwatch_events at the event start', () => {
    const event: AnomalyEvent = {
      id: 'OBS1-1',
      event: 'anomaly.end',
      scope: 'group',
      group: 'OBS1',
      start: '2024-03-01T00:00:10.000Z',
      end: '2024-03-01T00:01:00.000Z',
      peakVotes: 6,
      requiredVotes: 5,
      channels: [
        { channel: 'S1_OBS1_1__b_x', rmse: 2, threshold: 1 },
        { channel: 'S2_OBS1_1__b_z', rmse: 3, threshold: 1 },
      ],
      bundleVersion: '1',
    };
    expect(encodePoint(eventPoint(event), { integerFields: INTEGER_FIELDS })).toMatchInlineSnapshot(
      `"magwatch_events,group=OBS1 event="anomaly.end",votes=6i,channels="S1_OBS1_1__b_x,S2_OBS1_1__b_z",id="OBS1-1",scope="group",required=5i,end=1709251260000 1709251210000"`,
    );
  });

  it('writes a sensor event with zero votes and its sensor as a tag', () => {
    const point = eventPoint({
      id: 's-1',
      event: 'sensor.silent',
      scope: 'sensor',
      group: 'OBS2',
      sensor: 'S9',
      start: '2024-03-01T00:00:00.000Z',
      channels: [],
      bundleVersion: '1',
    });
    expect(point.fields).toEqual({
      event: 'sensor.silent',
      votes: 0,
      channels: '',
      id: 's-1',
      scope: 'sensor',
    });
    // A tag, so that two sensors of one group flagged at the same time are two points.
    expect(point.tags).toEqual({ group: 'OBS2', sensor: 'S9' });
    expect(point.time).toBe(Date.parse('2024-03-01T00:00:00.000Z'));
  });
});
