import { rename, writeFile } from 'node:fs/promises';
import { loadBundle, loadLayersModel, onnxPath } from '../bundle.js';
import { type AutoencoderWeights, extractWeights, type LstmWeights } from '../model.js';
import { ProtoWriter } from './protobuf.js';

/** ONNX IR version 8 is what opset 17 ships with; ONNX Runtime 1.14 and later read it. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;
/** Input tensor: float32 [batch, window, 1], scaled samples. */
export const ONNX_INPUT = 'windows';
/** Output tensor: float32 [batch, window, 1], the reconstruction of each window. */
export const ONNX_OUTPUT = 'reconstruction';

// Enum values and field numbers from onnx.proto, the parts used here.
const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_INTS = 7;
const Model = { irVersion: 1, producerName: 2, docString: 6, graph: 7, opset: 8, metadata: 14 };
const Graph = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const Node = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 };
const Attribute = { name: 1, i: 3, ints: 8, type: 20 };
const Tensor = { dims: 1, dataType: 2, name: 8, rawData: 9 };
// ValueInfoProto.{name, type}, TypeProto.tensor_type, TypeProto.Tensor.{elem_type, shape}, TensorShapeProto.dim,
// Dimension.{dim_value, dim_param}, OperatorSetIdProto.{domain, version}, StringStringEntryProto.{key, value}.
const ValueInfo = { name: 1, type: 2 };
const TypeProto = { tensorType: 1, elemType: 1, shape: 2 };
const Shape = { dim: 1, value: 1, param: 2 };
const OpsetId = { domain: 1, version: 2 };
const Entry = { key: 1, value: 2 };

/** Keras stores LSTM gates as i, f, c, o; ONNX as i, o, f, c. Entry g is the Keras gate of ONNX gate g. */
const KERAS_GATE_OF_ONNX = [0, 3, 1, 2] as const;

interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: typeof FLOAT | typeof INT64;
  readonly data: Uint8Array;
}

interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly ints?: Record<string, number>;
  readonly intLists?: Record<string, readonly number[]>;
}

function floatBytes(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (const [i, value] of values.entries()) view.setBigInt64(i * 8, BigInt(value), true);
  return bytes;
}

/**
 * Converts one Keras LSTM layer into the W, R and B inputs of the ONNX LSTM operator: W [1, 4u, in] and
 * R [1, 4u, u] are the Keras kernels transposed with the gates reordered; B [1, 8u] holds the Keras bias
 * as the input bias and zeros as the recurrent bias (ONNX adds both).
 */
export function lstmToOnnx(layer: LstmWeights): { W: Float32Array; R: Float32Array; B: Float32Array } {
  const { units, inputSize, kernel, recurrentKernel, bias } = layer;
  const W = new Float32Array(4 * units * inputSize);
  const R = new Float32Array(4 * units * units);
  const B = new Float32Array(8 * units);
  for (let gate = 0; gate < 4; gate++) {
    const kerasGate = KERAS_GATE_OF_ONNX[gate]!;
    for (let unit = 0; unit < units; unit++) {
      const row = gate * units + unit;
      const column = kerasGate * units + unit;
      for (let i = 0; i < inputSize; i++) W[row * inputSize + i] = kernel[i * 4 * units + column]!;
      for (let h = 0; h < units; h++) R[row * units + h] = recurrentKernel[h * 4 * units + column]!;
      B[row] = bias[column]!;
    }
  }
  return { W, R, B };
}

function writeTensor(writer: ProtoWriter, tensor: Initializer): void {
  writer.packedInts(Tensor.dims, tensor.dims);
  writer.int(Tensor.dataType, tensor.type);
  writer.string(Tensor.name, tensor.name);
  writer.raw(Tensor.rawData, tensor.data);
}

function writeNode(writer: ProtoWriter, node: NodeSpec, index: number): void {
  for (const input of node.inputs) writer.string(Node.input, input);
  for (const output of node.outputs) writer.string(Node.output, output);
  writer.string(Node.name, `${node.op.toLowerCase()}_${index}`);
  writer.string(Node.opType, node.op);
  for (const [name, value] of Object.entries(node.ints ?? {})) {
    writer.message(Node.attribute, (a) =>
      a.string(Attribute.name, name).int(Attribute.i, value).int(Attribute.type, ATTR_INT),
    );
  }
  for (const [name, values] of Object.entries(node.intLists ?? {})) {
    writer.message(Node.attribute, (a) => {
      a.string(Attribute.name, name);
      for (const value of values) a.int(Attribute.ints, value);
      a.int(Attribute.type, ATTR_INTS);
    });
  }
}

/** A float32 [batch, window, 1] value description with a named, dynamic batch dimension. */
function writeWindowValue(writer: ProtoWriter, name: string, window: number): void {
  writer.string(ValueInfo.name, name);
  writer.message(ValueInfo.type, (type) =>
    type.message(TypeProto.tensorType, (tensor) => {
      tensor.int(TypeProto.elemType, FLOAT);
      tensor.message(TypeProto.shape, (shape) => {
        shape.message(Shape.dim, (dim) => dim.string(Shape.param, 'batch'));
        shape.message(Shape.dim, (dim) => dim.int(Shape.value, window));
        shape.message(Shape.dim, (dim) => dim.int(Shape.value, 1));
      });
    }),
  );
}

/**
 * Builds the autoencoder as an ONNX model (IR 8, opset 17, standard operators only).
 *
 * The ONNX LSTM operator runs time-major ([seq, batch, in]), so the graph transposes on the way in and out:
 * Transpose → LSTM(64) → LSTM(latent), last hidden state → Expand to `window` steps (RepeatVector) →
 * LSTM(latent) → LSTM(64) → MatMul + Add (TimeDistributed Dense) → Transpose.
 * The batch-major `layout = 1` attribute would save the transposes, but ONNX Runtime's CPU LSTM rejects it
 * ("Batchwise recurrent operations (layout == 1) are not supported", onnxruntime-node 1.30).
 * The first decoder LSTM sees the same input at every step, yet the standard LSTM operator always multiplies
 * its whole input sequence by W; it does so in one GEMM before the recurrence, about 7% of the graph's
 * multiply-adds at W=64, latent=32, and no standard operator can feed a per-window gate bias instead.
 *
 * @returns the serialised ModelProto, input `windows` and output `reconstruction`, both float32
 *   [batch, window, 1] with a dynamic `batch` dimension.
 */
export function exportOnnx(weights: AutoencoderWeights): Uint8Array {
  const { window, latent } = weights;
  const [encoder1, encoder2, decoder1, decoder2] = weights.lstm;
  const chained =
    encoder1.inputSize === 1 &&
    encoder2.inputSize === encoder1.units &&
    decoder1.inputSize === encoder2.units &&
    decoder2.inputSize === decoder1.units &&
    weights.dense.kernel.length === decoder2.units;
  if (!Number.isInteger(window) || window < 1 || !chained) {
    throw new Error(
      `exportOnnx: weights do not form the reference autoencoder (window ${window}, latent ${latent})`,
    );
  }
  const initializers: Initializer[] = [];
  const constant = (name: string, dims: number[], values: ArrayLike<number>) => {
    initializers.push({ name, dims, type: FLOAT, data: floatBytes(values) });
    return name;
  };
  const int64s = (name: string, values: number[]) => {
    initializers.push({ name, dims: [values.length], type: INT64, data: int64Bytes(values) });
    return name;
  };

  const nodes: NodeSpec[] = [];
  const squeezeDirection = int64s('direction_axis', [1]);
  // Adds one forward LSTM; returns the name of its full output sequence [seq, batch, u] or last state.
  const lstm = (name: string, input: string, layer: LstmWeights, lastStateOnly: boolean): string => {
    const { W, R, B } = lstmToOnnx(layer);
    const u = layer.units;
    const inputs = [
      input,
      constant(`${name}.W`, [1, 4 * u, layer.inputSize], W),
      constant(`${name}.R`, [1, 4 * u, u], R),
      constant(`${name}.B`, [1, 8 * u], B),
    ];
    // Default activations (sigmoid, tanh, tanh) are exactly Keras' LSTM with a sigmoid recurrent activation.
    if (lastStateOnly) {
      nodes.push({ op: 'LSTM', inputs, outputs: ['', `${name}.Y_h`], ints: { hidden_size: u } });
      return `${name}.Y_h`;
    }
    nodes.push({ op: 'LSTM', inputs, outputs: [`${name}.Y`], ints: { hidden_size: u } });
    nodes.push({ op: 'Squeeze', inputs: [`${name}.Y`, squeezeDirection], outputs: [`${name}.seq`] });
    return `${name}.seq`;
  };

  nodes.push({
    op: 'Transpose',
    inputs: [ONNX_INPUT],
    outputs: ['time_major'],
    intLists: { perm: [1, 0, 2] },
  });
  const encoded = lstm('encoder_1', 'time_major', encoder1, false);
  // Y_h is [1, batch, latent]; broadcasting against [window, 1, 1] repeats it at every step.
  const state = lstm('encoder_2', encoded, encoder2, true);
  const repeatShape = int64s('repeat_shape', [window, 1, 1]);
  nodes.push({ op: 'Expand', inputs: [state, repeatShape], outputs: ['repeated'] });
  const decoded1 = lstm('decoder_1', 'repeated', decoder1, false);
  const decoded2 = lstm('decoder_2', decoded1, decoder2, false);
  const denseKernel = constant('dense.kernel', [weights.dense.kernel.length, 1], weights.dense.kernel);
  const denseBias = constant('dense.bias', [1], weights.dense.bias);
  nodes.push({ op: 'MatMul', inputs: [decoded2, denseKernel], outputs: ['dense.product'] });
  nodes.push({ op: 'Add', inputs: ['dense.product', denseBias], outputs: ['dense.output'] });
  nodes.push({
    op: 'Transpose',
    inputs: ['dense.output'],
    outputs: [ONNX_OUTPUT],
    intLists: { perm: [1, 0, 2] },
  });

  const model = new ProtoWriter();
  model.int(Model.irVersion, ONNX_IR_VERSION);
  model.string(Model.producerName, 'magwatch');
  model.string(Model.docString, `LSTM autoencoder, window ${window}, latent ${latent}`);
  model.message(Model.opset, (opset) => opset.string(OpsetId.domain, '').int(OpsetId.version, ONNX_OPSET));
  model.message(Model.graph, (graph) => {
    for (const [index, node] of nodes.entries()) graph.message(Graph.node, (n) => writeNode(n, node, index));
    graph.string(Graph.name, 'magwatch_autoencoder');
    for (const tensor of initializers) graph.message(Graph.initializer, (t) => writeTensor(t, tensor));
    graph.message(Graph.input, (value) => writeWindowValue(value, ONNX_INPUT, window));
    graph.message(Graph.output, (value) => writeWindowValue(value, ONNX_OUTPUT, window));
  });
  for (const [key, value] of [
    ['magwatch.window', String(window)],
    ['magwatch.latent', String(latent)],
  ]) {
    model.message(Model.metadata, (entry) => entry.string(Entry.key, key!).string(Entry.value, value!));
  }
  return model.finish();
}

/**
 * Writes `models/<name>.onnx` for every model of a bundle, from its TensorFlow.js weights; each file is
 * written beside its target and renamed, so an interrupted run never leaves a truncated model.
 *
 * @returns the paths written, in the bundle's model order.
 */
export async function exportBundleOnnx(bundleDir: string): Promise<string[]> {
  const bundle = await loadBundle(bundleDir);
  const written: string[] = [];
  for (const name of bundle.models) {
    const layers = await loadLayersModel(bundle.dir, name);
    let bytes: Uint8Array;
    try {
      bytes = exportOnnx(extractWeights(layers));
    } finally {
      layers.dispose();
    }
    const target = onnxPath(bundle.dir, name);
    const partial = `${target}.partial`;
    await writeFile(partial, bytes);
    await rename(partial, target);
    written.push(target);
  }
  return written;
}
