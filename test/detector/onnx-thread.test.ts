import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bundle, loadBundle } from '../../src/detector/bundle.js';
import type { Engine } from '../../src/detector/engine.js';
import { createOnnxEngine } from '../../src/detector/engines/onnx.js';

// The worker needs compiled JavaScript: the test command builds dist/ first.
const THREAD_MODULE = '../../dist/detector/engines/onnx-thread.js';
const EXAMPLE = fileURLToPath(new URL('../../examples/model', import.meta.url));

let bundle: Bundle;
let threaded: Engine;
let inline: Engine;

beforeAll(async () => {
  bundle = await loadBundle(EXAMPLE);
  const { createOnnxThreadEngine } = (await import(THREAD_MODULE)) as {
    createOnnxThreadEngine: (bundle: Bundle) => Promise<Engine>;
  };
  threaded = await createOnnxThreadEngine(bundle);
  inline = await createOnnxEngine(bundle);
});
afterAll(async () => {
  await threaded?.dispose();
  await inline?.dispose();
});

function batch(count: number) {
  const channels = Object.keys(bundle.manifest.channels);
  const data = new Float32Array(count * bundle.manifest.window);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i / 7) + ((i * 7919) % 13) / 13;
  return { channels: Array.from({ length: count }, (_, w) => channels[w % channels.length]!), data };
}

describe('the ONNX engine in a worker thread', () => {
  test('scores exactly as the sessions on the calling thread', async () => {
    const windows = batch(40);
    expect(await threaded.score(windows)).toEqual(await inline.score(windows));
    expect(threaded.backend).toBe(inline.backend);
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
