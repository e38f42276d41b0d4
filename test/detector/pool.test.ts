import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bundle, loadBundle } from '../../src/detector/bundle.js';
import type { Engine } from '../../src/detector/engine.js';
import { createOnnxEngine } from '../../src/detector/engines/onnx.js';
import { MIN_SLICE, type PooledEngine, planSlices } from '../../src/detector/engines/pool.js';
import { createTfjsEngine } from '../../src/detector/engines/tfjs.js';

// The worker needs compiled JavaScript: the test command builds dist/ first.
const POOL_MODULE = '../../dist/detector/engines/pool.js';
const EXAMPLE = fileURLToPath(new URL('../../examples/model', import.meta.url));

type CreateEnginePool = (
  bundle: Bundle,
  engine: PooledEngine,
  threads?: number,
  script?: URL,
) => Promise<Engine>;

let createEnginePool: CreateEnginePool;
let bundle: Bundle;
let threaded: Engine;
let inline: Engine;
let pooledTfjs: Engine;
let inlineTfjs: Engine;

beforeAll(async () => {
  bundle = await loadBundle(EXAMPLE);
  ({ createEnginePool } = (await import(POOL_MODULE)) as { createEnginePool: CreateEnginePool });
  // Two threads even on a one-core machine, so that batches are always split.
  threaded = await createEnginePool(bundle, { kind: 'onnx', options: {} }, 2);
  inline = await createOnnxEngine(bundle);
  pooledTfjs = await createEnginePool(bundle, { kind: 'tfjs', options: { backend: 'wasm' } }, 2);
  inlineTfjs = await createTfjsEngine(bundle, { backend: 'wasm' });
});
afterAll(async () => {
  await threaded?.dispose();
  await inline?.dispose();
  await pooledTfjs?.dispose();
  await inlineTfjs?.dispose();
});

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, value, i) => Math.max(max, Math.abs(value - b[i]!)), 0);
}

function batch(count: number) {
  const channels = Object.keys(bundle.manifest.channels);
  const data = new Float32Array(count * bundle.manifest.window);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i / 7) + ((i * 7919) % 13) / 13;
  return { channels: Array.from({ length: count }, (_, w) => channels[w % channels.length]!), data };
}

describe('the ONNX engine in a pool of worker threads', () => {
  test('scores exactly as the sessions on the calling thread', async () => {
    const windows = batch(40);
    expect(await threaded.score(windows)).toEqual(await inline.score(windows));
    expect(threaded.backend).toBe(inline.backend);
  });

  test("splits one model's windows between the threads and reassembles them in batch order", async () => {
    const channel = Object.keys(bundle.manifest.channels)[3]!;
    const windows = batch(33);
    const one = { channels: windows.channels.map(() => channel), data: windows.data };
    expect(await threaded.reconstruct(one)).toEqual(await inline.reconstruct(one));
    expect(threaded).toMatchObject({ offThread: true, threads: 2 });
  });

  test('leaves the event loop free while a large batch is scored', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    await threaded.score(batch(2048));
    const elapsed = performance.now() - started;
    clearInterval(timer);
    // On the calling thread the loop would not tick at all until the run ends.
    expect(ticks).toBeGreaterThan(Math.min(10, elapsed / 10));
  });

  test('reports a bad batch as an error, and keeps working', async () => {
    await expect(threaded.score({ channels: ['nope__b_x'], data: new Float32Array(64) })).rejects.toThrow(
      /not in the model bundle/,
    );
    expect((await threaded.score(batch(2))).length).toBe(2);
  });
});

describe('the TensorFlow.js engine in a pool of worker threads', () => {
  test('reconstructs as the stacked engine on the calling thread, with its mode and backend', async () => {
    // Enough windows to be split between the two threads.
    const windows = batch(160);
    expect(
      maxDifference(await pooledTfjs.reconstruct(windows), await inlineTfjs.reconstruct(windows)),
    ).toBeLessThan(1e-5);
    expect(pooledTfjs).toMatchObject({
      name: 'tfjs',
      backend: inlineTfjs.backend,
      mode: 'stacked',
      offThread: true,
    });
  });
});

describe('a pool thread that dies', () => {
  test.each([
    ['exit', /inference worker thread exited with code 3/],
    ['error', /simulated fault in an inference thread/],
  ] as const)(
    'by %s fails the batch it held; the other thread scores the next ones',
    async (how, message) => {
      const dir = await mkdtemp(join(tmpdir(), 'magwatch-pool-death-'));
      process.env['MAGWATCH_TEST_DEATH'] = how;
      process.env['MAGWATCH_TEST_DEATH_MARKER'] = join(dir, 'dead');
      const dying = new URL('../fixtures/pool/dying-worker.mjs', import.meta.url);
      const pool = await createEnginePool(bundle, { kind: 'onnx', options: {} }, 2, dying);
      try {
        // Split between both threads; one of them dies on its slice.
        await expect(pool.score(batch(40))).rejects.toThrow(message);
        const windows = batch(40);
        expect(await pool.score(windows)).toEqual(await inline.score(windows));
        expect(await pool.score(batch(3))).toHaveLength(3);
      } finally {
        await pool.dispose();
        delete process.env['MAGWATCH_TEST_DEATH'];
        delete process.env['MAGWATCH_TEST_DEATH_MARKER'];
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('slicing a batch between threads', () => {
  const sizes = (plan: number[][]) => plan.map((slice) => slice.length);

  test('keeps a small batch whole', () => {
    expect(planSlices(['m', 'm', 'm'], 2)).toEqual([[0, 1, 2]]);
    expect(planSlices(Array(40).fill('m'), 1)).toEqual([Array.from({ length: 40 }, (_, i) => i)]);
    // TensorFlow.js splits only batches of at least two slices of MIN_SLICE.tfjs.
    expect(planSlices(Array(2 * MIN_SLICE.tfjs - 1).fill('m'), 2, MIN_SLICE.tfjs)).toHaveLength(1);
    expect(planSlices(Array(2 * MIN_SLICE.tfjs).fill('m'), 2, MIN_SLICE.tfjs)).toHaveLength(2);
  });

  test("cuts one model's windows into even, contiguous slices", () => {
    const plan = planSlices(Array(301).fill('shared'), 2);
    expect(sizes(plan)).toEqual([151, 150]);
    expect(plan.flat()).toEqual(Array.from({ length: 301 }, (_, i) => i));
  });

  test("keeps each model's windows on one thread and balances the threads", () => {
    const models = Array.from({ length: 90 }, (_, w) => `m${w % 9}`);
    const plan = planSlices(models, 2);
    expect(sizes(plan).sort()).toEqual([40, 50]);
    for (const slice of plan) {
      const owners = new Set(slice.map((w) => models[w]));
      for (const other of plan.filter((s) => s !== slice))
        expect(other.some((w) => owners.has(models[w]))).toBe(false);
    }
    expect(plan.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });

  test('with a model order, gives each thread a contiguous run of models, balanced by windows', () => {
    // One window per model, interleaved in the batch: runs 0-4 and 5-8 keep the stacked engine's merged
    // groups of neighbouring models whole.
    const order = new Map(Array.from({ length: 9 }, (_, m) => [`m${m}`, m]));
    const models = [4, 8, 0, 6, 2, 1, 7, 3, 5].map((m) => `m${m}`);
    const plan = planSlices(models, 2, 4, order);
    expect(plan.map((slice) => slice.map((w) => models[w]).sort())).toEqual([
      ['m0', 'm1', 'm2', 'm3', 'm4'],
      ['m5', 'm6', 'm7', 'm8'],
    ]);
    // Unequal counts: the cut falls where the first run reaches half of the windows.
    const heavy = [
      ...Array(30).fill('m0'),
      ...Array(10).fill('m1'),
      ...Array(10).fill('m2'),
      ...Array(10).fill('m3'),
    ];
    expect(sizes(planSlices(heavy, 2, 4, order))).toEqual([30, 30]);
    expect(sizes(planSlices(heavy, 3, 4, order))).toEqual([30, 10, 20]);
  });

  test('gives windows of unknown channels a slice of their own, for the thread to report', () => {
    const plan = planSlices([...Array(20).fill('m'), ...Array(10).fill(undefined)], 2);
    expect(sizes(plan).sort()).toEqual([10, 20]);
  });
});
