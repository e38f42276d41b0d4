/**
 * A fixed-capacity ring of (timestamp, value) samples: the last `capacity` samples of one channel, overwritten
 * oldest first, read back in time order without allocating.
 */
export class RingBuffer {
  private readonly values: Float32Array;
  private readonly times: Float64Array;
  /** Index the next sample is written to. */
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    // One allocation for both: with thousands of channels, each ArrayBuffer's own bookkeeping adds up.
    const storage = new ArrayBuffer(
      capacity * (Float64Array.BYTES_PER_ELEMENT + Float32Array.BYTES_PER_ELEMENT),
    );
    this.times = new Float64Array(storage, 0, capacity);
    this.values = new Float32Array(storage, capacity * Float64Array.BYTES_PER_ELEMENT, capacity);
  }

  /** Samples held, at most `capacity`. */
  get length(): number {
    return this.size;
  }

  push(timestamp: number, value: number): void {
    this.values[this.head] = value;
    this.times[this.head] = timestamp;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    if (this.size < this.capacity) this.size++;
  }

  /** Timestamp of the `age`-th newest sample: 0 is the newest, `length - 1` the oldest. */
  timeAt(age: number): number {
    return this.times[this.slot(age)]!;
  }

  /** Value of the `age`-th newest sample. */
  valueAt(age: number): number {
    return this.values[this.slot(age)]!;
  }

  /** Copies the newest `count` values, oldest first, into `out` from `offset`. */
  copyLatest(count: number, out: Float32Array, offset = 0): void {
    if (count > this.size) throw new RangeError(`ring holds ${this.size} samples, ${count} requested`);
    let from = this.head - count;
    if (from < 0) from += this.capacity;
    const firstPart = Math.min(count, this.capacity - from);
    out.set(this.values.subarray(from, from + firstPart), offset);
    if (firstPart < count) out.set(this.values.subarray(0, count - firstPart), offset + firstPart);
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
  }

  private slot(age: number): number {
    if (age < 0 || age >= this.size)
      throw new RangeError(`ring holds ${this.size} samples, age ${age} requested`);
    const at = this.head - 1 - age;
    return at < 0 ? at + this.capacity : at;
  }
}
