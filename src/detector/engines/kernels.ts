import * as tf from '@tensorflow/tfjs';

const NAMES = [
  'BatchMatMul',
  '_FusedMatMul',
  'Concat',
  'Slice',
  'Sigmoid',
  'Tanh',
  'Multiply',
  'Add',
] as const;
type KernelName = (typeof NAMES)[number];

/** Values from which `tanh` goes through Sigmoid on wasm; the two cost the same at about 700. */
const LARGE_TANH = 1024;

/**
 * Backends whose kernels return plain results the engine does not track, so that they can be called
 * directly and freed by hand. Others (the native `tensorflow` backend) build tracked tensors inside their
 * kernels; there the calls go through the engine.
 */
const DIRECT_BACKENDS = new Set(['wasm', 'cpu']);

/**
 * The handful of TensorFlow.js kernels a recurrent pass needs. A `tf.*` op spends 1-3 µs per call on
 * argument checks, dtype casting and the engine's tensor bookkeeping before its kernel runs; a forward
 * pass makes about 1,700 calls on tensors of a few hundred values, where that was a quarter of the time
 * (one window on wasm: 7.0 ms through `tf.*`, 5.0-5.4 ms here). On wasm and cpu the backend's registered
 * kernels are called directly, elsewhere through `engine().runKernel`, which skips the op's checks but
 * keeps the tracking. The arithmetic is the backend's own kernels either way; whatever these methods
 * return must be handed to `free`.
 */
export class Kernels {
  private readonly backend: tf.KernelBackend;
  /** The kernels to call directly; null where calls go through the engine. */
  private readonly kernels: Record<KernelName, tf.KernelFunc> | null;
  /** Values from which `tanh` goes through Sigmoid: `LARGE_TANH` on wasm, never elsewhere. */
  private readonly largeTanh: number;
  private readonly two = tf.scalar(2);
  private readonly minusOne = tf.scalar(-1);

  constructor() {
    const name = tf.getBackend();
    this.backend = tf.backend();
    this.largeTanh = name === 'wasm' ? LARGE_TANH : Number.POSITIVE_INFINITY;
    const kernels: Partial<Record<KernelName, tf.KernelFunc>> = {};
    for (const kernel of NAMES) {
      const config = tf.getKernel(kernel, name);
      if (!config) throw new Error(`TensorFlow.js backend ${name} has no ${kernel} kernel`);
      kernels[kernel] = config.kernelFunc;
    }
    this.kernels = DIRECT_BACKENDS.has(name) ? (kernels as Record<KernelName, tf.KernelFunc>) : null;
  }

  private run(name: KernelName, inputs: unknown, attrs: object = {}): tf.TensorInfo {
    if (!this.kernels) {
      return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
    }
    return this.kernels[name]({
      inputs: inputs as tf.NamedTensorInfoMap,
      backend: this.backend,
      attrs: attrs as tf.NamedAttrMap,
    }) as tf.TensorInfo;
  }

  matMul(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }

  /** σ(a·b) in one call: a gate's product and its activation (on wasm 5 µs against 9 for the two apart). */
  matMulSigmoid(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run(
      '_FusedMatMul',
      { a, b },
      { transposeA: false, transposeB: false, activation: 'sigmoid' },
    );
  }

  concat(parts: readonly tf.TensorInfo[], axis: number): tf.TensorInfo {
    return this.run('Concat', parts, { axis });
  }

  slice(x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
    return this.run('Slice', { x }, { begin, size });
  }

  sigmoid(x: tf.TensorInfo): tf.TensorInfo {
    return this.run('Sigmoid', { x });
  }

  /**
   * tanh; on wasm, of `LARGE_TANH` values or more, as 2σ(2x) - 1, because the wasm backend's Tanh is a
   * scalar loop (about 12 ns a value) and its Sigmoid a vectorised one: four calls instead of one beat it
   * from there on (at 2,700 values 13 against 40 µs). The two agree to about 1e-7.
   */
  tanh(x: tf.TensorInfo): tf.TensorInfo {
    if (tf.util.sizeFromShape(x.shape) < this.largeTanh) return this.run('Tanh', { x });
    return this.scoped((keep) => {
      const sigmoid = keep(this.sigmoid(keep(this.mul(x, this.two))));
      return this.add(keep(this.mul(sigmoid, this.two)), this.minusOne);
    });
  }

  mul(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run('Multiply', { a, b });
  }

  add(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run('Add', { a, b });
  }

  /** Copies a result out of the backend. */
  async read(x: tf.TensorInfo): Promise<Float32Array> {
    return (await this.backend.read(x.dataId)) as Float32Array;
  }

  /**
   * Runs `body` and frees every result it hands to `keep` when it ends, by return or throw: the
   * `tf.tidy` of these kernels, except that what `body` returns is the caller's to free.
   */
  scoped<T>(body: (keep: (x: tf.TensorInfo) => tf.TensorInfo) => T): T {
    const kept: tf.TensorInfo[] = [];
    try {
      return body((x) => {
        kept.push(x);
        return x;
      });
    } finally {
      this.free(...kept);
    }
  }

  /** Frees the constants held here. */
  dispose(): void {
    tf.dispose([this.two, this.minusOne]);
  }

  free(...infos: Array<tf.TensorInfo | null | undefined>): void {
    for (const info of infos) {
      if (!info) continue;
      if (this.kernels) this.backend.disposeData(info.dataId);
      else (info as tf.Tensor).dispose();
    }
  }
}
