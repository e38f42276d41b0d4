/**
 * The few protocol buffer encodings an ONNX ModelProto needs: varints, length-delimited fields (strings,
 * bytes, nested messages, packed varints) and fixed32 floats. Fields are written in the order they are
 * called; protobuf readers accept any order.
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

const encoder = new TextEncoder();

/** Appends protobuf fields to a growing byte buffer; `finish()` returns the encoded message. */
export class ProtoWriter {
  private bytes = new Uint8Array(256);
  private length = 0;

  /** An unsigned or signed integer field (int32, int64, uint64, enum, bool); negatives take ten bytes. */
  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** A float field, 4 bytes little endian. */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.bytes.buffer).setFloat32(this.length, value, true);
    this.length += 4;
    return this;
  }

  string(field: number, value: string): this {
    return this.raw(field, encoder.encode(value));
  }

  /** A bytes field, or an already encoded nested message. */
  raw(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH);
    this.varint(value.length);
    this.reserve(value.length);
    this.bytes.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** A nested message written by `write` into a writer of its own. */
  message(field: number, write: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    write(inner);
    return this.raw(field, inner.finish());
  }

  /** A repeated integer field in packed form (the proto3 default). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const value of values) inner.varint(value);
    return this.raw(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }

  private tag(field: number, wire: number): void {
    // Field numbers in ONNX stay far below 2^28, so the shift cannot overflow.
    this.varint((field << 3) | wire);
  }

  private varint(value: number | bigint): void {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
    }
    this.reserve(10);
    if (typeof value === 'number' && value >= 0 && value <= 0x7fffffff) {
      let small = value;
      while (small >= 0x80) {
        this.bytes[this.length++] = (small & 0x7f) | 0x80;
        small >>>= 7;
      }
      this.bytes[this.length++] = small;
      return;
    }
    // Negative int64 values are encoded as their 64-bit two's complement, as protobuf requires.
    let rest = BigInt.asUintN(64, BigInt(value));
    while (rest >= 0x80n) {
      this.bytes[this.length++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.bytes[this.length++] = Number(rest);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + extra) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}
