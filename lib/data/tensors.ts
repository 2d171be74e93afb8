/**
 * Data already in tensors (fastai's `DataLoader(dset, bs, shuffle)` over a dataset of tensors):
 * what the "from scratch" lessons feed a `Learner` with, no files involved.
 */
import * as tf from "../engine/tf";
import { Rng } from "./random";

/** Options of `TensorDataLoader` and `tensorDataLoaders`. */
export interface TensorLoaderOptions {
  /** Batch size (default 64). */
  bs?: number;
  /** Shuffle each epoch (default: true for training, false for validation). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Drop the last, smaller batch (fastai trains tables with it; default false). */
  dropLast?: boolean;
}

/** Batches of rows of `x` and `y`, in order or shuffled each epoch; each batch is a fresh pair the consumer disposes. */
export class TensorDataLoader implements AsyncIterable<{ xb: tf.Tensor; yb: tf.Tensor }> {
  readonly n: number;
  readonly bs: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly rng: Rng;

  constructor(
    readonly x: tf.Tensor,
    readonly y: tf.Tensor,
    opts: TensorLoaderOptions = {},
  ) {
    if (!(x instanceof tf.Tensor) || !(y instanceof tf.Tensor)) throw new Error("TensorDataLoader needs two tensors: inputs x and targets y");
    if (x.shape[0] !== y.shape[0]) {
      throw new Error(`TensorDataLoader: x has ${x.shape[0]} rows but y has ${y.shape[0]}; they must have one target per input`);
    }
    this.n = x.shape[0] ?? 0;
    this.bs = opts.bs ?? 64;
    if (!Number.isInteger(this.bs) || this.bs < 1) throw new Error(`TensorDataLoader: bs must be a positive integer, got ${this.bs}`);
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.rng = new Rng(opts.seed ?? 0);
  }

  /** Batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.n / this.bs) : Math.ceil(this.n / this.bs);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<{ xb: tf.Tensor; yb: tf.Tensor }> {
    const order = this.shuffle ? this.rng.permutation(this.n) : null;
    for (let i = 0; i < this.n; i += this.bs) {
      if (this.dropLast && i + this.bs > this.n) break;
      const end = Math.min(this.n, i + this.bs);
      if (!order) {
        yield tf.tidy(() => ({ xb: this.x.slice(i, end - i), yb: this.y.slice(i, end - i) }));
        continue;
      }
      const idx = tf.tensor1d(order.slice(i, end), "int32");
      const batch = tf.tidy(() => ({ xb: tf.gather(this.x, idx), yb: tf.gather(this.y, idx) }));
      idx.dispose();
      yield batch;
    }
  }
}

/** fastai's `DataLoaders(train_dl, valid_dl)` over tensors: training shuffled, validation in order. */
export function tensorDataLoaders(
  train: [tf.Tensor, tf.Tensor],
  valid: [tf.Tensor, tf.Tensor],
  opts: TensorLoaderOptions & { vocab?: string[] } = {},
): { train: TensorDataLoader; valid: TensorDataLoader; vocab?: string[]; c?: number } {
  const { vocab, ...loader } = opts;
  return {
    train: new TensorDataLoader(train[0], train[1], { shuffle: true, ...loader }),
    valid: new TensorDataLoader(valid[0], valid[1], { ...loader, shuffle: false }),
    ...(vocab ? { vocab, c: vocab.length } : {}),
  };
}
