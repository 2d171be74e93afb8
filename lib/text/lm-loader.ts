/**
 * fastai's `LMDataLoader`: the language-model batches.
 *
 * The documents (arrays of token ids) are concatenated into one stream and cut into `bs` rows that
 * each read a contiguous stretch of it, so row `r` of batch `b + 1` continues row `r` of batch `b`
 * (a stateful RNN carries its hidden state across batches). The target is the input shifted by one.
 *   1. corpus = (total tokens − 1), rounded down to a multiple of `bs` (the −1 leaves room for the last target);
 *   2. bl = corpus / bs tokens per row; batches = ceil(bl / seqLen), the last one `bl − (batches − 1)·seqLen` long;
 *   3. batch b, row r reads x = stream[r·bl + b·seqLen, + sl) and y = the same window one token later.
 * With `shuffle` (the training loader), each epoch first shuffles the documents' order (as fastai) and
 * then rotates the stream by a random offset in [0, seqLen), so the cuts fall elsewhere every epoch
 * even for a corpus that is one long document; both draws come from the seeded generator.
 */
import * as tf from "../engine/tf";
import { Rng } from "../data/random";

/** `LMDataLoader`'s defaults (fastai's `bs=64, seq_len=72`). */
export const lmLoaderDefaults = { bs: 64, seqLen: 72 } as const;

/** Options of `LMDataLoader` and `lmDataLoaders`. */
export interface LMLoaderOptions {
  /** Rows per batch (default 64). */
  bs?: number;
  /** Tokens per row in a batch (default 72); the last batch of an epoch may be shorter. */
  seqLen?: number;
  /** Shuffle the documents and rotate the stream by a random offset each epoch (default false; `lmDataLoaders` turns it on for training). */
  shuffle?: boolean;
  /** Seed of the shuffles and offsets (default 0). */
  seed?: number;
}

/** fastai's `LMDataLoader` over numericalized documents; yields int32 `xb`, `yb` of shape [bs, sl] the consumer disposes. */
export class LMDataLoader implements AsyncIterable<{ xb: tf.Tensor2D; yb: tf.Tensor2D }> {
  readonly bs: number;
  readonly seqLen: number;
  readonly shuffle: boolean;
  /** Tokens in all documents together. */
  readonly totalTokens: number;
  /** Tokens each row reads in an epoch (fastai's `bl`). */
  readonly rowLen: number;
  /** Batches per epoch. */
  readonly length: number;
  /** Length of the last batch's rows. */
  readonly lastLen: number;
  /** The documents, as given (token ids). */
  readonly docs: Int32Array[];
  private readonly rng: Rng;
  /** The stream of the epoch being iterated (or last iterated). */
  private current?: Int32Array;

  constructor(docs: readonly ArrayLike<number>[] | ArrayLike<number>, opts: LMLoaderOptions = {}) {
    const list = isDocList(docs) ? docs : [docs];
    this.docs = list.map((d) => (d instanceof Int32Array ? d : Int32Array.from(d)));
    this.bs = opts.bs ?? lmLoaderDefaults.bs;
    this.seqLen = opts.seqLen ?? lmLoaderDefaults.seqLen;
    if (!Number.isInteger(this.bs) || this.bs < 1) throw new Error(`LMDataLoader: bs must be a positive integer, got ${this.bs}`);
    if (!Number.isInteger(this.seqLen) || this.seqLen < 1) throw new Error(`LMDataLoader: seqLen must be a positive integer, got ${this.seqLen}`);
    this.shuffle = opts.shuffle ?? false;
    this.rng = new Rng(opts.seed ?? 0);
    this.totalTokens = this.docs.reduce((s, d) => s + d.length, 0);
    const corpus = Math.floor(Math.max(0, this.totalTokens - 1) / this.bs) * this.bs;
    this.rowLen = corpus / this.bs;
    if (this.rowLen < 1) {
      throw new Error(
        `LMDataLoader: ${this.totalTokens} tokens are too few for bs ${this.bs} (each row needs at least one token and its target: give a smaller bs or more text)`,
      );
    }
    this.length = Math.ceil(this.rowLen / this.seqLen);
    this.lastLen = this.rowLen - (this.length - 1) * this.seqLen;
  }

  /** Items, as fastai counts them: rows over all batches. */
  get n(): number {
    return this.length * this.bs;
  }

  /** The concatenated stream of the next epoch: documents in order, or shuffled and rotated. */
  private epochStream(): Int32Array {
    const order = this.shuffle ? this.rng.permutation(this.docs.length) : this.docs.map((_, i) => i);
    const stream = new Int32Array(this.totalTokens);
    let at = 0;
    for (const i of order) {
      stream.set(this.docs[i]!, at);
      at += this.docs[i]!.length;
    }
    if (!this.shuffle) return stream;
    const offset = this.rng.int(this.seqLen);
    if (offset === 0) return stream;
    const rotated = new Int32Array(this.totalTokens);
    rotated.set(stream.subarray(offset), 0);
    rotated.set(stream.subarray(0, offset), this.totalTokens - offset);
    return rotated;
  }

  /** Batch `b` of `stream` as plain arrays: `[x, y]`, each `bs` rows of the batch's length. */
  batchArrays(stream: Int32Array, b: number): [Int32Array, Int32Array, number] {
    const sl = b === this.length - 1 ? this.lastLen : this.seqLen;
    const x = new Int32Array(this.bs * sl);
    const y = new Int32Array(this.bs * sl);
    for (let r = 0; r < this.bs; r++) {
      const st = r * this.rowLen + b * this.seqLen;
      x.set(stream.subarray(st, st + sl), r * sl);
      y.set(stream.subarray(st + 1, st + sl + 1), r * sl);
    }
    return [x, y, sl];
  }

  /** The stream of the epoch being iterated (after its shuffle and rotation), for inspection. */
  get stream(): Int32Array | undefined {
    return this.current;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<{ xb: tf.Tensor2D; yb: tf.Tensor2D }> {
    const stream = this.epochStream();
    this.current = stream;
    for (let b = 0; b < this.length; b++) {
      const [x, y, sl] = this.batchArrays(stream, b);
      yield { xb: tf.tensor2d(x, [this.bs, sl], "int32"), yb: tf.tensor2d(y, [this.bs, sl], "int32") };
    }
  }
}

function isDocList(d: readonly ArrayLike<number>[] | ArrayLike<number>): d is readonly ArrayLike<number>[] {
  return d.length > 0 && typeof (d as ArrayLike<unknown>)[0] !== "number";
}

/** Language-model `DataLoaders`: training shuffled (documents and offset, seeded), validation in order; `vocab` are the tokens. */
export function lmDataLoaders(
  train: readonly ArrayLike<number>[] | ArrayLike<number>,
  valid: readonly ArrayLike<number>[] | ArrayLike<number>,
  opts: Omit<LMLoaderOptions, "shuffle"> & { vocab?: string[] } = {},
): { train: LMDataLoader; valid: LMDataLoader; vocab?: string[]; c?: number } {
  const { vocab, ...loader } = opts;
  return {
    train: new LMDataLoader(train, { ...loader, shuffle: true }),
    valid: new LMDataLoader(valid, { ...loader, shuffle: false }),
    ...(vocab ? { vocab, c: vocab.length } : {}),
  };
}
