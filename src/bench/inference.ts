import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackendAttempt, selectTfBackend } from '../detector/backend.js';
import type { Bundle } from '../detector/bundle.js';
import type { Engine, WindowBatch } from '../detector/engine.js';
import { defaultEngineFactories } from '../detector/engines/index.js';
import { createTfjsEngine } from '../detector/engines/tfjs.js';
import { benchBundleDirs, benchChannels, writeRandomBundle } from './bundles.js';

/** Throughput and latency of one engine at one batch size. */
export interface Timing {
  /** Windows reconstructed and scored per second of wall time. */
  readonly windowsPerSec: number;
  /** Median time of one `score` call, milliseconds. */
  readonly p50Ms: number;
  /** 99th percentile time of one `score` call, milliseconds. */
  readonly p99Ms: number;
  /** Number of timed calls. */
  readonly calls: number;
}

/** The nearest-rank quantile of ascending `sorted`. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Calls `engine.score(batch)` until `seconds` have passed, at least once; the first call of an engine
 * should already have happened (see `warmUp`), so that one-off set-up is not timed.
 */
export async function timeScoring(engine: Engine, batch: WindowBatch, seconds: number): Promise<Timing> {
  const latencies: number[] = [];
  const start = performance.now();
  const budget = seconds * 1000;
  do {
    const before = performance.now();
    await engine.score(batch);
    latencies.push(performance.now() - before);
  } while (performance.now() - start < budget);
  const elapsed = latencies.reduce((a, b) => a + b, 0);
  latencies.sort((a, b) => a - b);
  return {
    windowsPerSec: (latencies.length * batch.channels.length) / (elapsed / 1000),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    calls: latencies.length,
  };
}

/** One scoring call of one window per model, which pays for lazy initialisation outside the timings. */
export async function warmUp(engine: Engine, bundle: Bundle): Promise<void> {
  const channels = Object.keys(bundle.manifest.channels);
  await engine.score(windowBatch(channels, channels.length, bundle.manifest.window, 7));
}

/**
 * `count` windows of smooth seeded noise, cycling through `channels` so that the windows of different
 * models interleave as they do in a live batch.
 */
export function windowBatch(
  channels: readonly string[],
  count: number,
  window: number,
  seed: number,
): WindowBatch {
  let state = seed >>> 0 || 1;
  const random = () => {
    // xorshift32: reproducible across runs and engines, and cheap.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const data = new Float32Array(count * window);
  for (let w = 0; w < count; w++) {
    const phase = random() * 2 * Math.PI;
    for (let i = 0; i < window; i++) data[w * window + i] = Math.sin(phase + i / 8) + 0.3 * (random() - 0.5);
  }
  return { channels: Array.from({ length: count }, (_, w) => channels[w % channels.length]!), data };
}

/** `shared`: one model for all channels; `per-channel`: one model per channel, as the reference trains. */
export type BundleMode = 'shared' | 'per-channel';

export interface BenchRow {
  readonly engine: string;
  readonly backend: string;
  /** `stacked` or `layers` for TensorFlow.js, `session` for ONNX Runtime. */
  readonly variant: string;
  readonly mode: BundleMode;
  readonly models: number;
  readonly batch: number;
  readonly windowsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly calls: number;
  /** TensorFlow.js layers `predict` on wasm, same bundle and batch, same run. */
  readonly referenceWindowsPerSec: number;
  /** `windowsPerSec / referenceWindowsPerSec`. */
  readonly speedup: number;
}

export interface InferenceBenchOptions {
  /** Engines to time besides the reference: `onnx`, `tfjs`. */
  readonly engines: readonly string[];
  /** Windows per `score` call; one window per channel (a step of the whole network) is always timed too. */
  readonly batches: readonly number[];
  /** Time budget per engine and batch size, seconds. */
  readonly seconds: number;
  /** Channels, hence models of the per-channel bundle. */
  readonly channels: number;
  /** Window length W; default 64. */
  readonly window?: number;
  /** Bottleneck width; default 32. */
  readonly latent?: number;
  /** TensorFlow.js backends to time the stacked engine on; default `BENCH_TFJS_BACKENDS`. */
  readonly tfjsBackends?: readonly string[];
  /** Worker threads of both engines (ONNX Runtime: single-threaded sessions each); default one per core, at most 4. */
  readonly threads?: number;
}

/** TensorFlow.js backends the bench times the stacked engine on by default; those that do not start here are noted. */
export const BENCH_TFJS_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

/** A candidate engine of the bench, or why it cannot run here. */
type Contender = { engine: Engine; variant: string } | { skip: string };

/**
 * Times every engine asked for on a shared and a per-channel bundle with seeded random weights, against
 * the TensorFlow.js layers reference timed in the same run. Rows go to `report` as they are measured;
 * engines that cannot run here go to `note` in one line each.
 */
export async function runInferenceBench(
  options: InferenceBenchOptions,
  report: (row: BenchRow) => void,
  note: (line: string) => void,
): Promise<void> {
  const window = options.window ?? 64;
  const latent = options.latent ?? 32;
  const channels = benchChannels(options.channels);
  // The reference runs on wasm, and building the models there is also far quicker than on tfjs's cpu default.
  const { backend } = await selectTfBackend('wasm');
  if (backend !== 'wasm') note(`wasm did not initialise; the reference runs on ${backend}`);
  const root = await mkdtemp(join(tmpdir(), 'magwatch-bench-'));
  try {
    const dirs = benchBundleDirs(root);
    const bundles: Array<[BundleMode, Bundle]> = [
      ['shared', await writeRandomBundle(dirs.shared, { channels, window, latent, shared: true })],
      ['per-channel', await writeRandomBundle(dirs.perChannel, { channels, window, latent, shared: false })],
    ];
    for (const [mode, bundle] of bundles) {
      const reference = await createTfjsEngine(bundle, { backend: 'wasm', mode: 'layers' });
      const contenders = [
        ...(options.engines.includes('onnx') ? [await startOnnx(bundle, options.threads)] : []),
        ...(options.engines.includes('tfjs')
          ? await Promise.all(
              (options.tfjsBackends ?? BENCH_TFJS_BACKENDS).map((name) =>
                startTfjs(bundle, name, options.threads),
              ),
            )
          : []),
      ];
      for (const contender of contenders) if ('skip' in contender) note(`${mode}: ${contender.skip}`);
      const running = contenders.filter((c): c is { engine: Engine; variant: string } => 'engine' in c);
      try {
        await warmUp(reference, bundle);
        for (const { engine } of running) await warmUp(engine, bundle);
        const sizes = [...new Set([...options.batches, options.channels])].sort((a, b) => a - b);
        for (const size of sizes) {
          const batch = windowBatch(channels, size, window, size);
          const base = await timeScoring(reference, batch, options.seconds);
          const row = (engine: Engine, variant: string, timing: Timing): BenchRow => ({
            engine: engine.name,
            backend: engine.backend,
            variant,
            mode,
            models: bundle.models.length,
            batch: size,
            ...timing,
            referenceWindowsPerSec: base.windowsPerSec,
            speedup: timing.windowsPerSec / base.windowsPerSec,
          });
          report(row(reference, 'layers', base));
          for (const { engine, variant } of running) {
            report(row(engine, variant, await timeScoring(engine, batch, options.seconds)));
          }
        }
      } finally {
        await reference.dispose();
        for (const { engine } of running) await engine.dispose();
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * The stacked engine on `backend` as `run` and `detect` start it: in worker threads, one per core (at most
 * 4). A backend that does not start here leaves the engine on another; that one is closed and skipped.
 */
async function startTfjs(bundle: Bundle, backend: string, threads: number | undefined): Promise<Contender> {
  const engine = await defaultEngineFactories.tfjs(bundle, { backend, mode: 'stacked', threads });
  if (engine.backend === backend) return { engine, variant: 'stacked' };
  const { tried = [] } = engine as Engine & { tried?: readonly BackendAttempt[] };
  await engine.dispose();
  const why = tried.find((attempt) => attempt.backend === backend && attempt.error)?.error;
  return { skip: `tfjs on ${backend} skipped: it does not start here (${why ?? 'not registered'})` };
}

/** Exports the bundle's models to ONNX and starts ONNX Runtime on them, or says why it cannot. */
async function startOnnx(bundle: Bundle, threads: number | undefined): Promise<Contender> {
  try {
    const { exportBundleOnnx } = await import('../detector/onnx/export.js');
    await exportBundleOnnx(bundle.dir);
  } catch (error) {
    return { skip: `onnx skipped: cannot export the bench models to ONNX (${firstLine(error)})` };
  }
  try {
    return {
      engine: await defaultEngineFactories.onnx(bundle, { threads, provider: 'auto' }),
      variant: 'session',
    };
  } catch (error) {
    return { skip: `onnx skipped: the ONNX engine does not start here (${firstLine(error)})` };
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n', 1)[0]!;
}
