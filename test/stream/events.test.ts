import { describe, expect, it } from 'vitest';
import type { FinalBucket } from '../../src/stream/buckets.js';
import type { ChannelInfo } from '../../src/stream/channel-window.js';
import { GroupEvents } from '../../src/stream/events.js';
import { info } from './helpers.js';

const BUCKET_MS = 1_000;
const a1 = info('S1_OBS1__b_x', 'OBS1', 1.5);
const a2 = info('S2_OBS1__b_x', 'OBS1', 1.5);
const b1 = info('S3_OBS2__b_x', 'OBS2', 1.5);

function bucket(
  group: string,
  second: number,
  flagged: Array<[ChannelInfo, number]>,
  required = 2,
): FinalBucket {
  const votes = flagged.length;
  return {
    vote: { group, start: second * BUCKET_MS, votes, required, anomalous: votes >= required },
    flagged: new Map(flagged),
  };
}

function events(multiGroup = true, minNormal = 2) {
  return new GroupEvents('OBS1', { bucketMs: BUCKET_MS, minNormal, bundleVersion: 'site@1', multiGroup });
}

describe('GroupEvents', () => {
  it('starts at the first anomalous bucket and ends after minNormal normal buckets in a row', () => {
    const group = events(false, 2);
    const global = (s: number) => bucket('global', s, []);
    expect(group.step(bucket('OBS1', 0, [[a1, 2]]), global(0))).toEqual([]);
    const start = group.step(
      bucket('OBS1', 1, [
        [a1, 2],
        [a2, 3],
      ]),
      global(1),
    );
    expect(start.map((e) => e.event)).toEqual(['anomaly.start']);
    // One normal bucket between anomalous ones does not end the event.
    expect(group.step(bucket('OBS1', 2, []), global(2))).toEqual([]);
    expect(
      group.step(
        bucket('OBS1', 3, [
          [a1, 4],
          [a2, 2],
        ]),
        global(3),
      ),
    ).toEqual([]);
    expect(group.step(bucket('OBS1', 4, [[a1, 2]]), global(4))).toEqual([]);
    const end = group.step(bucket('OBS1', 5, []), global(5));
    expect(end).toMatchInlineSnapshot(`
      [
        {
          "bundleVersion": "site@1",
          "channels": [
            {
              "channel": "S1_OBS1__b_x",
              "rmse": 4,
              "threshold": 1.5,
            },
            {
              "channel": "S2_OBS1__b_x",
              "rmse": 3,
              "threshold": 1.5,
            },
          ],
          "end": "1970-01-01T00:00:04.000Z",
          "event": "anomaly.end",
          "group": "OBS1",
          "id": "OBS1-1000",
          "peakVotes": 2,
          "requiredVotes": 2,
          "scope": "group",
          "start": "1970-01-01T00:00:01.000Z",
        },
      ]
    `);
    expect(group.active).toBe(false);
  });

  it('explains the start with the channels that voted in the first anomalous bucket', () => {
    const group = events();
    const [start] = group.step(
      bucket('OBS1', 7, [
        [a2, 2.5],
        [a1, 2],
      ]),
      bucket('global', 7, []),
    );
    expect(start).toMatchInlineSnapshot(`
      {
        "bundleVersion": "site@1",
        "channels": [
          {
            "channel": "S1_OBS1__b_x",
            "rmse": 2,
            "threshold": 1.5,
          },
          {
            "channel": "S2_OBS1__b_x",
            "rmse": 2.5,
            "threshold": 1.5,
          },
        ],
        "event": "anomaly.start",
        "group": "OBS1",
        "id": "OBS1-7000",
        "peakVotes": 2,
        "requiredVotes": 2,
        "scope": "group",
        "start": "1970-01-01T00:00:07.000Z",
      }
    `);
  });

  it('is global when the global vote is anomalous in its first bucket', () => {
    const group = events();
    const global = bucket(
      'global',
      0,
      [
        [a1, 2],
        [a2, 2],
        [b1, 2],
      ],
      3,
    );
    const [start] = group.step(
      bucket('OBS1', 0, [
        [a1, 2],
        [a2, 2],
      ]),
      global,
    );
    expect(start).toMatchObject({ event: 'anomaly.start', scope: 'global', groups: ['OBS1', 'OBS2'] });
  });

  it('stays a group event when only its own channels carry the global vote', () => {
    const group = events();
    const flagged: Array<[ChannelInfo, number]> = [
      [a1, 2],
      [a2, 2],
    ];
    // A local disturbance big enough to pass the global vote alone is still local.
    const [start] = group.step(bucket('OBS1', 0, flagged), bucket('global', 0, flagged, 2));
    expect(start).toMatchObject({ event: 'anomaly.start', scope: 'group' });
    expect(start).not.toHaveProperty('groups');
  });

  it('ends as global when the network confirms the event after it started', () => {
    const group = events(true, 1);
    const quiet = (s: number) =>
      bucket(
        'global',
        s,
        [
          [a1, 2],
          [a2, 2],
        ],
        3,
      );
    const [start] = group.step(
      bucket('OBS1', 0, [
        [a1, 2],
        [a2, 2],
      ]),
      quiet(0),
    );
    expect(start!.scope).toBe('group');
    group.step(
      bucket('OBS1', 1, [
        [a1, 2],
        [a2, 2],
      ]),
      bucket(
        'global',
        1,
        [
          [a1, 2],
          [a2, 2],
          [b1, 2],
        ],
        3,
      ),
    );
    const [end] = group.step(bucket('OBS1', 2, []), bucket('global', 2, [], 3));
    expect(end).toMatchObject({ event: 'anomaly.end', scope: 'global', groups: ['OBS1', 'OBS2'] });
  });

  it('stays a group event in a network of one group', () => {
    const group = events(false);
    const flagged: Array<[ChannelInfo, number]> = [
      [a1, 2],
      [a2, 2],
    ];
    const [start] = group.step(bucket('OBS1', 0, flagged), bucket('global', 0, flagged));
    expect(start!.scope).toBe('group');
    expect(start!.groups).toBeUndefined();
  });

  it('ends an open event at its last anomalous bucket when the stream ends', () => {
    const group = events();
    group.step(
      bucket('OBS1', 3, [
        [a1, 2],
        [a2, 2],
      ]),
      null,
    );
    group.step(bucket('OBS1', 4, []), null);
    expect(group.end()).toMatchObject({
      event: 'anomaly.end',
      id: 'OBS1-3000',
      end: '1970-01-01T00:00:04.000Z',
    });
    expect(group.end()).toBeNull();
  });

  it('gives the global vote no event of its own for a disturbance that one group carries', () => {
    const global = new GroupEvents('global', {
      bucketMs: BUCKET_MS,
      minNormal: 1,
      bundleVersion: 'site@1',
      multiGroup: true,
    });
    const local = bucket('global', 0, [
      [a1, 2],
      [a2, 2],
    ]);
    expect(global.step(local, local)).toEqual([]);
    expect(global.active).toBe(false);
    const wide = bucket('global', 1, [
      [a1, 2],
      [b1, 2],
    ]);
    const [start] = global.step(wide, wide);
    expect(start).toMatchObject({
      event: 'anomaly.start',
      scope: 'global',
      group: 'global',
      groups: ['OBS1', 'OBS2'],
    });
    // Back to one group only: for the global vote's own event that is the end.
    const [end] = global.step(local, local);
    expect(end).toMatchObject({ event: 'anomaly.end', scope: 'global' });
  });
});
