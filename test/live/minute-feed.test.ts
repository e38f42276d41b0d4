/**
 * A real 1-minute observatory feed: Boulder's January 2016 (IAGA-2002, components H E Z F) trains a bundle,
 * and a later day is published through mosquitto in the magwatch format (the INTERMAGNET one has no E) into a
 * service whose configuration sets neither time settings nor a field mapping. The bundle's cadence sizes the
 * former and its component names the payload fields, so every window of the day is scored; with the fixed
 * 1 Hz defaults each 60 s step would be a gap and no window would ever fill.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { TRAIN_DEFAULTS, trainBundle } from '../../src/detector/train.js';
import { readInputs } from '../../src/ingest/files.js';
import { type LiveService, startLiveService } from '../../src/service.js';
import { REAL_DATA } from '../helpers/cli.js';
import { collect, memoryLogger, replayFile, waitFor } from '../helpers/live.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const BOULDER = join(REAL_DATA, 'bou-2016-01', 'BOU201601vmin.min');
const W = 16;
const MINUTE = 60_000;

let broker: Mosquitto;
let dir: string;
let service: LiveService | undefined;

beforeAll(async () => {
  broker = await startMosquitto();
  dir = await mkdtemp(join(tmpdir(), 'magwatch-minute-'));
});

afterAll(async () => {
  await service?.stop();
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a 1-minute observatory feed', () => {
  it('is scored window by window with the time settings the bundle cadence gives', async () => {
    const bundle = join(dir, 'bou');
    const training = await readInputs([BOULDER], {
      from: Date.parse('2016-01-01'),
      to: Date.parse('2016-01-02'),
    });
    await trainBundle(training, bundle, {
      ...TRAIN_DEFAULTS,
      window: W,
      step: W,
      epochs: 1,
      workers: 0,
      vote: { fraction: 0.56 },
      inputs: [BOULDER],
    });

    const log = memoryLogger();
    service = await startLiveService(
      configSchema.parse({
        mqtt: {
          url: broker.url,
          clientId: `magwatch-minute-${process.pid}`,
          clean: true,
        },
        model: { path: bundle, engine: 'tfjs' },
        influx: { file: join(dir, 'points.lp'), flushIntervalMs: 100 },
        http: { enabled: false },
        log: { level: 'warn' },
      }),
      log.logger,
    );
    const { detector } = service;
    expect(detector.options).toMatchObject({
      maxGapMs: 5 * MINUTE,
      bucketMs: MINUTE,
      latenessMs: 5 * MINUTE,
    });
    const events = collect(detector.events$);

    const published = await replayFile(BOULDER, broker.url, 60, {
      from: Date.parse('2016-01-03'),
      to: Date.parse('2016-01-04'),
    });
    expect(published.samples).toBe(1440);

    const channels = training.channels.length;
    const windows = Math.floor(1440 / W) * channels;
    await waitFor(
      () => detector.stats().windowsScored === windows,
      `${windows} windows scored`,
      30_000,
      () => `${JSON.stringify(detector.stats())}\n${log.lines().join('\n')}`,
    );
    expect(detector.stats().gapResets).toBe(0);
    expect(events.filter((event) => event.event === 'sensor.silent')).toEqual([]);
  }, 120_000);
});
