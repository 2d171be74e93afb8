/**
 * The native backend's storage: the cpu backend's, plus reuse of float32 output arrays.
 *
 * tfjs allocates a new TypedArray for every kernel output. Large fresh arrays come from fresh
 * pages, and first-touching them (page faults, serialised across threads) cost as much as the
 * elementwise work itself. Arrays the native kernels allocated are recycled when tfjs disposes
 * their tensor — but only while nobody else can hold them: an array that was ever read out
 * (`dataSync`, `data`), stored twice, or had a view of its buffer stored is never recycled.
 *
 * Why the oneDNN weight cache stays right. The addon keeps filters reordered for oneDNN under a
 * token that `weightToken` (addon.ts) gives each Float32Array object. A token must therefore name
 * one *contents* of an array, never just the object. The contents of a float32 array that tfjs
 * storage holds change only at these points, and each one renews the array's token:
 *   1. `write`/`move`: the array becomes a tensor's storage (a kernel's fresh output, or user
 *      data — a user may refill their own array between two `tf.tensor` calls);
 *   2. `alloc` hands an array out of the pool (its next owner will overwrite it);
 *   3. `NativeAdamOptimizer` updates a variable in place, only when `isExclusive` says no other
 *      tensor, view or reader can see that array;
 *   4. inference's fused residual add (conv-bn.ts) writes a block's sum into the identity's array, only
 *      when it is exclusive and no layer reads it after the add.
 * Every other kernel writes only into arrays it has just allocated, before any token names them.
 * This assumes what tfjs assumes: a tensor's values are immutable. Writing into the array that
 * `dataSync()`/`bufferSync()` returned, or into your own array after `tf.tensor(array)`, changes
 * a tensor behind tfjs's back; the native engine may then keep using the cached filter.
 * Issue 12's bug: neither step 1 nor step 2 existed, so a recycled filter array kept its old token
 * and convolutions read the weights it had held under its previous tensor. Either step alone
 * covers recycling; step 1 also covers an array a user refills between two `tf.tensor` calls.
 */
import * as os from "node:os";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type * as tf from "../tf";
import { renewToken } from "./addon";

type Values = Parameters<MathBackendCPU["write"]>[0];

/**
 * The idle arrays kept for reuse: a quarter of the machine's memory, at least 1 GiB and at most 4 GiB.
 * An idle array is one tfjs disposed; without the pool it would be garbage waiting for the collector,
 * so keeping it costs little memory, while a step whose sizes do not all fit takes fresh pages for
 * the rest every step. ResNet-34 at 128 px, batch 32, needs between 1 and 2 GiB idle at the end of its
 * step (the previous weights and moments next to the freed activations): with 1 GiB its Learner epoch
 * ran at 47.6 img/s and took 4.8 GiB of fresh arrays over two epochs, with 2 GiB 54.4 img/s and 1.5 GiB,
 * and the process's peak RSS was lower (2,396 against 2,477 MiB).
 */
export function defaultPoolLimit(totalBytes = os.totalmem()): number {
  return Math.min(4 * 2 ** 30, Math.max(2 ** 30, Math.floor(totalBytes / 4)));
}
const POOL_LIMIT_BYTES = defaultPoolLimit();
const MIN_POOLED = 1 << 14; // small arrays are cheap to allocate: not worth tracking
/**
 * A size nobody has asked `alloc` for in this many calls is stale (a model trained earlier): when the
 * pool is full, its idle arrays make room for the sizes in use. A training step asks for each of its
 * sizes every few hundred calls (ResNet-34: ~500 a step), so sizes in use never go stale.
 */
const STALE_AFTER_ALLOCS = 4096;

/** The cpu backend with recycled float32 outputs; every native kernel allocates through `alloc`. */
export class NativeBackend extends MathBackendCPU {
  private pool = new Map<number, Float32Array[]>();
  private pooledBytes = 0;
  /** `alloc` calls so far, and the call at which each pooled size was last asked for. */
  private allocClock = 0;
  private lastAsked = new Map<number, number>();
  /** The `alloc` call at which stale sizes were last dropped (see `alloc`). */
  private lastSweep = 0;
  /** Arrays `alloc` made whose buffer is still exclusively tfjs-internal. */
  private recyclable = new WeakSet<Float32Array>();
  /** Arrays now stored under a live dataId (or, when not recyclable, ever stored). */
  private stored = new WeakSet<Float32Array>();
  /** The first array seen (allocated or stored) on each buffer. */
  private ownerOf = new WeakMap<ArrayBufferLike, Float32Array>();
  /** Buffers some other array, tensor or reader may also see: never updated in place. */
  private shared = new WeakSet<ArrayBufferLike>();
  private enabled = process.env["TSFAST_NATIVE_POOL"] !== "0";
  /** How many arrays `alloc` handed out again from the pool (tests check recycling really ran). */
  reused = 0;

  /** Bytes of idle arrays the pool holds now. */
  get idleBytes(): number {
    return this.pooledBytes;
  }

  private poison = false;
  private limitBytes = POOL_LIMIT_BYTES;

  /**
   * Turn recycling on or off (benchmarks and tests compare both; `TSFAST_NATIVE_POOL=0` starts it
   * off). With `poison`, every recycled array is filled with NaN before it is handed out, so a
   * kernel that leaves part of its output unwritten shows up as NaN instead of stale numbers.
   * `limitBytes` caps the idle arrays kept (default `defaultPoolLimit()`; tests use a small one).
   */
  setPooling(on: boolean, opts: { poison?: boolean; limitBytes?: number } = {}): void {
    this.enabled = on;
    this.poison = opts.poison ?? false;
    this.limitBytes = opts.limitBytes ?? POOL_LIMIT_BYTES;
    if (!on) this.releasePool();
  }

  /** Whether outputs are recycled now. */
  get pooling(): boolean {
    return this.enabled;
  }

  /** A float32 array of `n` elements with arbitrary contents: the caller must write all of it. */
  alloc(n: number): Float32Array {
    if (!this.enabled || n < MIN_POOLED) {
      const small = new Float32Array(n);
      this.ownerOf.set(small.buffer, small); // ours: may be updated in place, never pooled
      return small;
    }
    this.lastAsked.set(n, ++this.allocClock);
    // Every so often, the arrays of sizes nobody asks for any more (a model trained earlier) go, full
    // pool or not, so the collector can give their memory to the sizes in use.
    if (this.allocClock - this.lastSweep > STALE_AFTER_ALLOCS) {
      this.lastSweep = this.allocClock;
      this.dropStale(Infinity);
    }
    const a = this.pool.get(n)?.pop();
    if (a) {
      this.pooledBytes -= a.byteLength;
      this.reused++;
      renewToken(a); // step 2: the reorders cached for its old contents must never serve the new ones
      if (this.poison) a.fill(NaN);
      return a;
    }
    const fresh = new Float32Array(n);
    this.recyclable.add(fresh);
    this.ownerOf.set(fresh.buffer, fresh);
    return fresh;
  }

  /**
   * Whether `values` is an array `alloc` made, the only array on its buffer, stored once, and never
   * read out: then nothing but its one tensor can observe an in-place update of it. (An array from
   * anywhere else — a user's `tf.tensor(array)`, a cpu kernel — may be held by someone else.)
   */
  isExclusive(values: Values | undefined): values is Float32Array {
    return values instanceof Float32Array && !this.shared.has(values.buffer) && this.ownerOf.get(values.buffer) === values &&
      values.byteOffset === 0 && values.byteLength === values.buffer.byteLength;
  }

  private claim(values: Values): void {
    if (!(values instanceof Float32Array)) return;
    renewToken(values); // step 1
    const buf = values.buffer;
    const owner = this.ownerOf.get(buf);
    if (!owner) {
      // Not from `alloc`: a user's array or a cpu kernel's output, which someone else may hold.
      this.ownerOf.set(buf, values);
      this.stored.add(values);
      this.shared.add(buf);
      return;
    }
    if (owner !== values || this.stored.has(owner)) {
      // a view, or stored twice: two tensors see this memory
      this.recyclable.delete(owner);
      this.shared.add(buf);
    } else this.stored.add(owner);
  }

  private escape(values: Values | undefined): void {
    if (values instanceof Float32Array) {
      const owner = this.ownerOf.get(values.buffer);
      if (owner) this.recyclable.delete(owner);
      this.shared.add(values.buffer);
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
      if (this.enabled && this.pooledBytes + values.byteLength > this.limitBytes) this.dropStale(values.byteLength);
      if (this.enabled && this.pooledBytes + values.byteLength <= this.limitBytes) {
        const list = this.pool.get(values.length) ?? [];
        list.push(values);
        this.pool.set(values.length, list);
        this.pooledBytes += values.byteLength;
      }
    }
    return gone;
  }

  /**
   * Free room for `bytes` (`Infinity`: drop all of them) by dropping the idle arrays of stale sizes
   * (see STALE_AFTER_ALLOCS). Without
   * it, a pool filled by a larger model trained earlier kept every array of the next model out:
   * a ResNet-18 Learner epoch after ResNet-34 training ran 18 % slower, after a U-Net 25 %, each of
   * its arrays fresh (page faults) while 1 GiB of arrays nobody asked for stayed idle.
   */
  private dropStale(bytes: number): void {
    for (const [size, list] of this.pool) {
      if (this.pooledBytes + bytes <= this.limitBytes) return;
      if (this.allocClock - (this.lastAsked.get(size) ?? 0) <= STALE_AFTER_ALLOCS) continue;
      for (const a of list) this.pooledBytes -= a.byteLength;
      this.pool.delete(size);
      this.lastAsked.delete(size);
    }
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
