/**
 * The native backend's storage: the cpu backend's, plus reuse of float32 output arrays.
 *
 * tfjs allocates a new TypedArray for every kernel output. Large fresh arrays come from fresh
 * pages, and first-touching them (page faults, serialised across threads) cost as much as the
 * elementwise work itself. Arrays the native kernels allocated are recycled when tfjs disposes
 * their tensor — but only while nobody else can hold them: an array that was ever read out
 * (`dataSync`, `data`), stored twice, or had a view of its buffer stored is never recycled.
 */
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type * as tf from "../tf";

type Values = Parameters<MathBackendCPU["write"]>[0];

const POOL_LIMIT_BYTES = 1 << 30; // at most 1 GiB of idle arrays kept for reuse
const MIN_POOLED = 1 << 14; // small arrays are cheap to allocate: not worth tracking

/** The cpu backend with recycled float32 outputs; every native kernel allocates through `alloc`. */
export class NativeBackend extends MathBackendCPU {
  private pool = new Map<number, Float32Array[]>();
  private pooledBytes = 0;
  /** Arrays `alloc` made whose buffer is still exclusively tfjs-internal. */
  private recyclable = new WeakSet<Float32Array>();
  /** Recyclable arrays now stored under a live dataId. */
  private stored = new WeakSet<Float32Array>();
  private ownerOf = new WeakMap<ArrayBufferLike, Float32Array>();
  private enabled = process.env["TSFAST_NATIVE_POOL"] !== "0";

  /** A float32 array of `n` elements with arbitrary contents: the caller must write all of it. */
  alloc(n: number): Float32Array {
    if (!this.enabled || n < MIN_POOLED) return new Float32Array(n);
    const a = this.pool.get(n)?.pop();
    if (a) {
      this.pooledBytes -= a.byteLength;
      return a;
    }
    const fresh = new Float32Array(n);
    this.recyclable.add(fresh);
    this.ownerOf.set(fresh.buffer, fresh);
    return fresh;
  }

  private claim(values: Values): void {
    if (!(values instanceof Float32Array)) return;
    const owner = this.ownerOf.get(values.buffer);
    if (!owner) return;
    if (owner !== values || this.stored.has(owner)) this.recyclable.delete(owner); // a view, or stored twice
    else this.stored.add(owner);
  }

  private escape(values: Values | undefined): void {
    if (values instanceof Float32Array) {
      const owner = this.ownerOf.get(values.buffer);
      if (owner) this.recyclable.delete(owner);
    }
  }

  override write(values: Values, shape: number[], dtype: tf.DataType): tf.DataId {
    this.claim(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: tf.DataId, values: Values, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.claim(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: tf.DataId): Values {
    const v = super.readSync(dataId);
    this.escape(v);
    return v;
  }

  override read(dataId: tf.DataId): Promise<Values> {
    this.escape(this.data.get(dataId)?.values);
    return super.read(dataId);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const gone = super.disposeData(dataId, force);
    if (gone && values instanceof Float32Array && !this.data.has(dataId) && this.recyclable.has(values)) {
      this.stored.delete(values);
      if (this.pooledBytes + values.byteLength <= POOL_LIMIT_BYTES) {
        const list = this.pool.get(values.length) ?? [];
        list.push(values);
        this.pool.set(values.length, list);
        this.pooledBytes += values.byteLength;
      }
    }
    return gone;
  }

  /** Drop every idle array (they are garbage-collected as usual). */
  releasePool(): void {
    this.pool.clear();
    this.pooledBytes = 0;
  }

  override dispose(): void {
    this.releasePool();
    super.dispose();
  }
}
