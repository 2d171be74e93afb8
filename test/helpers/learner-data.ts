/**
 * A tiny in-memory stand-in for the data floor's `DataLoaders` (structurally the Data contract),
 * plus small models, for the learner's tests.
 */
import * as tf from "../../lib/engine/tf";
import type { BatchLike, DataLoaderLike, DataLoadersLike } from "../../lib/learner/contracts";

/** A loader over fixed arrays, in order (no shuffling), yielding fresh tensors the consumer disposes. */
export class ArrayLoader implements DataLoaderLike {
  readonly n: number;
  constructor(
    readonly xs: number[][],
    readonly ys: number[] | number[][],
    readonly bs: number,
    readonly shape: [number, number, number],
    readonly multi = false,
  ) {
    this.n = xs.length;
  }
  get length(): number {
    return Math.ceil(this.n / this.bs);
  }
  /** Item names (the Data contract's `items`), in prediction order. */
  get items(): string[] {
    return this.xs.map((_, i) => `item${i}`);
  }
  /** Item `i` as an image tensor (the Data contract's `loadImage`). */
  async loadImage(i: number): Promise<tf.Tensor3D> {
    return tf.tensor3d(this.xs[i]!, this.shape);
  }
  async *[Symbol.asyncIterator](): AsyncIterator<BatchLike> {
    for (let i = 0; i < this.n; i += this.bs) {
      const x = this.xs.slice(i, i + this.bs);
      const y = this.ys.slice(i, i + this.bs);
      const xb = tf.tensor4d(x.flat(), [x.length, ...this.shape]);
      const yb = this.multi ? tf.tensor2d(y as number[][]) : tf.tensor1d(y as number[], "int32");
      yield { xb, yb };
    }
  }
}

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two-class data on 2×2×1 "images": class 1 when the pixel sum is positive. */
export function toyDls(opts: { n?: number; bs?: number; seed?: number; classes?: number } = {}): DataLoadersLike & { train: ArrayLoader; valid: ArrayLoader } {
  const n = opts.n ?? 64;
  const bs = opts.bs ?? 16;
  const r = rng(opts.seed ?? 1);
  const make = (m: number) => {
    const xs: number[][] = [];
    const ys: number[] = [];
    for (let i = 0; i < m; i++) {
      const x = [0, 0, 0, 0].map(() => r() * 2 - 1);
      xs.push(x);
      ys.push(x.reduce((a, b) => a + b, 0) > 0 ? 1 : 0);
    }
    return { xs, ys };
  };
  const t = make(n);
  const v = make(Math.floor(n / 2));
  return {
    train: new ArrayLoader(t.xs, t.ys, bs, [2, 2, 1]),
    valid: new ArrayLoader(v.xs, v.ys, bs, [2, 2, 1]),
    vocab: ["neg", "pos"],
    c: 2,
    isMultiLabel: false,
    inferenceSpec: () => ({ kind: "toy" }),
  };
}

/** flatten → dense(8) → batchNorm → relu → dense(c): two parameter groups [body, head]. */
export function toyModel(c = 2, seed = 7): { model: tf.LayersModel; body: tf.layers.Layer[]; head: tf.layers.Layer[] } {
  const input = tf.input({ shape: [2, 2, 1] });
  const flat = tf.layers.flatten();
  const d1 = tf.layers.dense({ units: 8, kernelInitializer: tf.initializers.glorotUniform({ seed }) });
  const bn = tf.layers.batchNormalization();
  const act = tf.layers.activation({ activation: "relu" });
  const d2 = tf.layers.dense({ units: c, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) });
  const out = d2.apply(act.apply(bn.apply(d1.apply(flat.apply(input))))) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  return { model, body: [flat, d1, bn, act], head: [d2] };
}
