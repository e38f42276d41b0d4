import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { groupTimes, magpyFlagTimes, wicFamily, zipEntry } from '../../src/quality/wic.js';
import { REAL_DATA } from '../helpers/cli.js';

/** A zip of the given entries, written as a stream writes it: sizes only in the central directory. */
function streamedZip(entries: Array<{ name: string; text: string; deflate: boolean }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, text, deflate } of entries) {
    const raw = Buffer.from(text);
    const data = deflate ? deflateRawSync(raw) : raw;
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(8, 6); // sizes follow in a data descriptor: left 0 here
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(deflate ? 8 : 0, 10);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

describe('zipEntry', () => {
  test('reads stored and deflated entries by name, with sizes from the central directory', () => {
    const zip = streamedZip([
      { name: 'a.txt', text: 'stored text', deflate: false },
      { name: 'b.sec', text: 'deflated '.repeat(100), deflate: true },
    ]);
    expect(zipEntry(zip, 'a.txt').toString()).toBe('stored text');
    expect(zipEntry(zip, 'b.sec').toString()).toBe('deflated '.repeat(100));
    expect(() => zipEntry(zip, 'c')).toThrow(/no entry c \(entries: a.txt, b.sec\)/);
    expect(() => zipEntry(Buffer.from('not a zip at all, just text of some length'), 'a')).toThrow(
      /not a zip/,
    );
  });
});

describe('magpyFlagTimes and groupTimes', () => {
  test('rounds MagPy times to the second, keeps one per time, and groups close ones', () => {
    const json = JSON.stringify({
      WICsec_1_0001: [
        ['2018-08-02 14:36:17.999988', '2018-08-02 14:36:17.999988', 'x', 1, 'aof', ''],
        ['2018-08-02 14:36:18', '2018-08-02 14:36:18', 'y', 1, 'aof', ''],
        ['2018-08-02 14:35:27', '2018-08-02 14:35:27', 'x', 1, 'aof', ''],
        ['2018-08-02 14:40:00', '2018-08-02 14:40:00', 'z', 1, 'aof', ''],
      ],
    });
    const times = magpyFlagTimes(json);
    const at = (m: number, s: number) => Date.UTC(2018, 7, 2, 14, m, s);
    expect(times).toEqual([at(35, 27), at(36, 18), at(40, 0)]);
    expect(groupTimes(times, 64_000)).toEqual([
      { start: at(35, 27), end: at(36, 18) },
      { start: at(40, 0), end: at(40, 0) },
    ]);
  });
});

describe('wicFamily', () => {
  test('splits the real WIC day and labels it from its flags', async () => {
    const dir = join(REAL_DATA, 'wic-2018-08-02');
    const family = await wicFamily(join(dir, 'example1.zip'), join(dir, 'flagging_example.json'));
    expect(family.train.channels).toEqual(['WIC__E', 'WIC__H', 'WIC__Z']);
    expect(family.train.timestamps.length).toBe(6 * 3600);
    expect(family.heldOut.timestamps.length).toBe(3 * 3600);
    const [day] = family.cases;
    expect(day!.test.timestamps.length).toBe(15 * 3600);
    // 63 flagged seconds between 14:33:30 and 15:22:30, grouped where less than 64 s apart.
    expect(day!.events[0]!.start).toBe(Date.UTC(2018, 7, 2, 14, 33, 30));
    expect(day!.events.at(-1)!.end).toBe(Date.UTC(2018, 7, 2, 15, 22, 30));
    expect(day!.events).toHaveLength(19);
  });
});
