/**
 * fastai's collaborative-filtering models (collab.py) as tfjs-layers models, and `collabLearner`.
 *
 * Both take fastai's batch: x = int32 [bs, 2], column 0 the user index, column 1 the item index.
 *   - `EmbeddingDotBias`: a factor vector and a bias per user and per item;
 *       1. dot  = Σ_k u_weight[user, k] · i_weight[item, k]
 *       2. res  = dot + u_bias[user] + i_bias[item]
 *       3. with yRange [lo, hi]: sigmoid(res) · (hi − lo) + lo   (fastai's `sigmoid_range`)
 *   - `EmbeddingNN` (fastai's `TabularModel` with no continuous columns): the user and item
 *     embeddings concatenated, then per hidden size n: Linear (no bias) → ReLU → BatchNorm
 *     (`lin_first`), then Linear(→ 1), then the same `sigmoid_range`.
 * Layers are named as PyTorch names the modules (`u_weight`, `embeds.0`, `layers.0.0`, ...), so the
 * state-dict helpers of `models/weights.ts` map them one to one onto fastai's `state_dict()`.
 * Every embedding starts as fastai's `Embedding`: a normal of std 0.01 truncated at ±2 std.
 */
import * as tf from "../engine/tf";
import { Learner, type LearnerOptions } from "../learner/learner";
import { MSELossFlat } from "../learner/losses";
import type { Prediction } from "../learner/contracts";
import { SigmoidRange } from "./layers";
import { BatchNorm } from "./blocks";
import { encodeCollabRows, type CollabDataLoaders, type CollabRow } from "../collab/data";
import { embSzRule } from "./tabular";

/** fastai's `Embedding` for one column of the int32 [bs, 2] input: row `x[:, column]` of a [nEmb, nf] table. */
export class ColumnEmbedding extends tf.layers.Layer {
  static className = "ColumnEmbedding";
  readonly nEmb: number;
  readonly nf: number;
  readonly column: number;
  private readonly seed?: number;
  private table?: tf.LayerVariable;

  constructor(args: { nEmb: number; nf: number; column: number; seed?: number; name?: string }) {
    super({ name: args.name });
    for (const k of ["nEmb", "nf"] as const) {
      if (!Number.isInteger(args[k]) || args[k] < 1) throw new Error(`ColumnEmbedding: ${k} must be a positive integer, got ${args[k]}`);
    }
    this.nEmb = args.nEmb;
    this.nf = args.nf;
    this.column = args.column;
    this.seed = args.seed;
  }

  override build(): void {
    const init = tf.initializers.truncatedNormal({ mean: 0, stddev: 0.01, ...(this.seed === undefined ? {} : { seed: this.seed }) });
    this.table = this.addWeight("weight", [this.nEmb, this.nf], "float32", init);
    this.built = true;
  }

  /** The [nEmb, nf] table (fastai's `.weight`). */
  get weight(): tf.Variable {
    if (!this.table) throw new Error(`ColumnEmbedding "${this.name}" has no weights yet: it is built when its model is`);
    return this.table.read() as tf.Variable;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0] ?? null, this.nf];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
      const col = tf.reshape(tf.slice(x, [0, this.column], [-1, 1]), [-1]);
      const idx = col.dtype === "int32" ? col : tf.cast(col, "int32");
      return tf.gather(this.table!.read(), idx);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), nEmb: this.nEmb, nf: this.nf, column: this.column };
  }

}

/** Steps 1–2 of `EmbeddingDotBias`: [u, i, ub, ib] → Σ u·i + ub + ib, as [bs, 1]. */
export class DotBias extends tf.layers.Layer {
  static className = "DotBias";

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0] ?? null, 1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [u, i, ub, ib] = inputs as tf.Tensor[];
      return tf.add(tf.add(tf.sum(tf.mul(u!, i!), 1, true), ub!), ib!);
    });
  }
}

tf.serialization.registerClass(ColumnEmbedding);
tf.serialization.registerClass(DotBias);

/** A collaborative-filtering model with its embedding tables by fastai's names. */
export interface CollabModel extends tf.LayersModel {
  /** User factors [nUsers, nFactors] (`EmbeddingNN`: the user embedding, `embeds.0`). */
  readonly uWeight: tf.Variable;
  /** Item factors [nItems, nFactors] (`EmbeddingNN`: the item embedding, `embeds.1`). */
  readonly iWeight: tf.Variable;
  /** User biases [nUsers, 1] (`EmbeddingDotBias` only). */
  readonly uBias?: tf.Variable;
  /** Item biases [nItems, 1] (`EmbeddingDotBias` only). */
  readonly iBias?: tf.Variable;
}

/** Give `model` getters for its tables (`uWeight`, ...), each reading the named `ColumnEmbedding` layer. */
export function asCollabModel(model: tf.LayersModel): CollabModel {
  const table = (layer: string) => () => (model.getLayer(layer) as ColumnEmbedding).weight;
  const names = model.layers.map((l) => l.name);
  const dot = names.includes("u_weight");
  const map: Record<string, string> = dot
    ? { uWeight: "u_weight", iWeight: "i_weight", uBias: "u_bias", iBias: "i_bias" }
    : { uWeight: "embeds.0", iWeight: "embeds.1" };
  for (const [prop, layer] of Object.entries(map)) {
    if (!names.includes(layer)) throw new Error(`not a collaborative-filtering model: it has no layer "${layer}" (its layers: ${names.join(", ")})`);
    if (!(prop in model)) Object.defineProperty(model, prop, { get: table(layer), enumerable: false });
  }
  return model as CollabModel;
}

/** Options of `embeddingDotBias` and `embeddingNN`. */
export interface CollabModelOptions {
  /** Squash the output into [lo, hi] with fastai's `sigmoid_range` (default none). */
  yRange?: [number, number];
  /** Seed of the initialisers (default 0). */
  seed?: number;
}

function input(): tf.SymbolicTensor {
  return tf.input({ shape: [2], dtype: "int32", name: "user_item" });
}

function squash(x: tf.SymbolicTensor, yRange: [number, number] | undefined): tf.SymbolicTensor {
  if (!yRange) return x;
  const [low, high] = yRange;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low < high)) throw new Error(`yRange must be [low, high] with low < high, got ${JSON.stringify(yRange)}`);
  return new SigmoidRange({ low, high, name: "sigmoid_range" }).apply(x) as tf.SymbolicTensor;
}

/** fastai's `EmbeddingDotBias(n_factors, n_users, n_items, y_range)` (see the module note). */
export function embeddingDotBias(nFactors: number, nUsers: number, nItems: number, opts: CollabModelOptions = {}): CollabModel {
  const seed = opts.seed ?? 0;
  const x = input();
  const emb = (name: string, column: number, n: number, nf: number, k: number) =>
    new ColumnEmbedding({ nEmb: n, nf, column, seed: seed * 7919 + k, name }).apply(x) as tf.SymbolicTensor;
  const parts = [emb("u_weight", 0, nUsers, nFactors, 1), emb("i_weight", 1, nItems, nFactors, 2), emb("u_bias", 0, nUsers, 1, 3), emb("i_bias", 1, nItems, 1, 4)];
  const res = new DotBias({ name: "dot_bias" }).apply(parts) as tf.SymbolicTensor;
  return asCollabModel(tf.model({ inputs: x, outputs: squash(res, opts.yRange), name: "EmbeddingDotBias" }));
}

/** fastai's `EmbeddingNN(emb_szs, layers, y_range)` (see the module note); `embSzs` = [[nUsers, width], [nItems, width]]. */
export function embeddingNN(embSzs: [[number, number], [number, number]], layers: number[], opts: CollabModelOptions = {}): CollabModel {
  const seed = opts.seed ?? 0;
  const x = input();
  const embs = embSzs.map(([n, nf], col) => new ColumnEmbedding({ nEmb: n, nf, column: col, seed: seed * 7919 + col + 1, name: `embeds.${col}` }).apply(x) as tf.SymbolicTensor);
  let h = tf.layers.concatenate({ axis: -1, name: "cat" }).apply(embs) as tf.SymbolicTensor;
  const sizes = [embSzs[0][1] + embSzs[1][1], ...layers, 1];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const last = i + 2 === sizes.length;
    const bound = 1 / Math.sqrt(sizes[i]!); // PyTorch's Linear init, weights and bias
    const uniform = (k: number) => tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: seed * 7919 + 100 + 2 * i + k });
    h = tf.layers
      .dense({ units: sizes[i + 1]!, useBias: last, kernelInitializer: uniform(0), biasInitializer: uniform(1), name: `layers.${i}.0` })
      .apply(h) as tf.SymbolicTensor;
    if (!last) {
      h = tf.layers.reLU({ name: `layers.${i}.1` }).apply(h) as tf.SymbolicTensor;
      h = BatchNorm(`layers.${i}.2`).apply(h) as tf.SymbolicTensor;
    }
  }
  return asCollabModel(tf.model({ inputs: x, outputs: squash(h, opts.yRange), name: "EmbeddingNN" }));
}

/** Options of `collabLearner`: fastai's `collab_learner` arguments, then the `Learner`'s. */
export interface CollabLearnerOptions extends Omit<LearnerOptions, "splitter"> {
  /** Factors per user and item of `EmbeddingDotBias` (default 50). */
  nFactors?: number;
  /** Use `EmbeddingNN` instead of `EmbeddingDotBias` (default false). */
  useNn?: boolean;
  /** `EmbeddingNN`'s hidden sizes (default `[nFactors]`). */
  layers?: number[];
  /** `EmbeddingNN`'s embedding widths by column name (default `embSzRule` of each vocabulary). */
  embSzs?: Record<string, number>;
  /** Output range through `sigmoid_range`, e.g. [0, 5.5] (default none). */
  yRange?: [number, number];
  /** Seed of the initialisers (default 0). */
  seed?: number;
}

/** `collabLearner`'s defaults (fastai's). */
export const collabLearnerDefaults = { nFactors: 50, useNn: false } as const;

/** A `Learner` over a `CollabModel` that predicts from `{ user, item }`. */
export class CollabLearner extends Learner<CollabDataLoaders> {
  declare readonly model: CollabModel;

  /** The predicted rating of `user` for `item` (`values[0]`); an unknown user or item throws, naming it. */
  override async predict(input: CollabRow | string | Buffer | tf.Tensor): Promise<Prediction> {
    if (input instanceof tf.Tensor || typeof input === "string" || Buffer.isBuffer(input)) return super.predict(input);
    const x = encodeCollabRows(this.dls.inferenceSpec(), [input]);
    try {
      return await super.predict(x);
    } finally {
      x.dispose();
    }
  }

  /** Predicted ratings of many `{ user, item }` rows in one batch. */
  override async predictBatch(inputs: readonly CollabRow[] | (string | Buffer)[] | tf.Tensor): Promise<Prediction[]> {
    if (inputs instanceof tf.Tensor) return super.predictBatch(inputs);
    const x = encodeCollabRows(this.dls.inferenceSpec(), inputs);
    try {
      return await super.predictBatch(x);
    } finally {
      x.dispose();
    }
  }
}

/** fastai's `collab_learner(dls, n_factors, use_nn, emb_szs, layers, y_range)`: MSE loss, Adam (see `CollabLearnerOptions`). */
export function collabLearner(dls: CollabDataLoaders, opts: CollabLearnerOptions = {}): CollabLearner {
  const { nFactors = collabLearnerDefaults.nFactors, useNn = collabLearnerDefaults.useNn, layers, embSzs, yRange, seed, ...learnerOpts } = opts;
  const nUsers = dls.users.size;
  const nItems = dls.items.size;
  let model: CollabModel;
  if (useNn) {
    const width = (name: string, n: number) => embSzs?.[name] ?? embSzRule(n);
    model = embeddingNN([[nUsers, width(dls.userName, nUsers)], [nItems, width(dls.itemName, nItems)]], layers ?? [nFactors], { yRange, seed });
  } else {
    model = embeddingDotBias(nFactors, nUsers, nItems, { yRange, seed });
  }
  return new CollabLearner(dls, model, { lossFunc: MSELossFlat(), ...learnerOpts });
}
