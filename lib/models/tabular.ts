/**
 * fastai's `TabularModel` and `tabular_learner` (`tabular/model.py`, `tabular/learner.py`).
 *
 * The input is `TabularPandas`' packed matrix `[batch, nCat + nCont]`; the model takes it apart
 * again and runs fastai's forward:
 *   1. `embeds.i`: column i's category index → an embedding of `embSzs[i]` features;
 *   2. the embeddings concatenated, then dropout `embedP` (`emb_drop`);
 *   3. `bn_cont`: BatchNorm over the continuous columns (PyTorch's plain `BatchNorm1d`);
 *   4. [embeddings, continuous] → `LinBnDrop(linFirst)` per hidden size (linear, ReLU, BatchNorm,
 *      dropout `ps[i]`) → a last linear to the outputs → `SigmoidRange(yRange)` when given.
 * Layer names follow the PyTorch module's state dict (`embeds.0`, `bn_cont`, `layers.0.lin`, ...),
 * so `bench/tabular_torch.py`'s weights load into it.
 */
import * as tf from "../engine/tf";
import { BN_EPS, BN_MOMENTUM, LinBnDrop } from "./blocks";
import { SigmoidRange } from "./layers";
import { Learner, type LearnerOptions } from "../learner/learner";
import { activationOf, predictWith } from "../learner/predict";
import type { Prediction } from "../learner/contracts";
import type { Cell } from "../tabular/frame";
import type { TabularRow } from "../tabular/core";
import { prepareTabularRows, type TabularDataLoaders } from "../tabular/data";

type SymbolicTensor = tf.SymbolicTensor;

/** Python's `round` (half to even), which fastai's rule uses. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** fastai's `emb_sz_rule`: embedding width for a column of `nCat` categories (`#na#` counted), min(600, round(1.6 · nCat^0.56)). */
export function embSzRule(nCat: number): number {
  if (!Number.isInteger(nCat) || nCat < 1) throw new Error(`embSzRule: nCat must be a positive integer, got ${nCat}`);
  return Math.min(600, roundHalfEven(1.6 * nCat ** 0.56));
}

/** Columns `[start, start + size)` of a `[batch, features]` input (how the model unpacks `TabularPandas`' matrix). */
export class TabularColumns extends tf.layers.Layer {
  static className = "TabularColumns";
  readonly start: number;
  readonly size: number;

  constructor(args: { start: number; size: number; name?: string }) {
    super({ name: args.name });
    this.start = args.start;
    this.size = args.size;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0]!, this.size];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
    return tf.slice(x, [0, this.start], [-1, this.size]);
  }

  // tfjs' default `fromConfig` (new cls(config)) and `getClassName` (the static className) suffice
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), start: this.start, size: this.size };
  }
}
tf.serialization.registerClass(TabularColumns);

/** Options of `tabularModel` / `tabularLearner` (fastai's `tabular_config` + `layers`), with fastai's defaults. */
export interface TabularModelOptions {
  /** Hidden layer sizes (default [200, 100]). */
  layers?: readonly number[];
  /** Dropout of each hidden layer: one number for all, or one per layer (default 0). */
  ps?: number | readonly number[];
  /** Dropout after the embeddings (default 0). */
  embedP?: number;
  /** Squash outputs into [low, high] with `SigmoidRange` (regression; default none). */
  yRange?: [number, number];
  /** Embedding widths by column name (default `embSzRule` of each vocabulary's size). */
  embSzs?: Record<string, number>;
  /** BatchNorm on the continuous columns (default true). */
  bnCont?: boolean;
  /** Seed of every initialiser (default 0). */
  seed?: number;
}

/** `tabularModel`'s defaults. */
export const tabularModelDefaults = { layers: [200, 100] as readonly number[], embedP: 0, bnCont: true } as const;

/**
 * fastai's `TabularModel(emb_szs, n_cont, out_sz, layers, ...)`: `embSzs` as `[vocabulary size,
 * width]` per categorical column, in input order; see the module note.
 */
export function tabularModel(embSzs: readonly [number, number][], nCont: number, outSz: number, opts: TabularModelOptions = {}): tf.LayersModel {
  const layers = opts.layers ?? tabularModelDefaults.layers;
  const ps = typeof opts.ps === "number" || opts.ps === undefined ? layers.map(() => (opts.ps as number | undefined) ?? 0) : [...opts.ps];
  if (ps.length !== layers.length) throw new Error(`ps gives ${ps.length} dropout values for ${layers.length} layers; give one per layer, or one number`);
  let n = (opts.seed ?? 0) * 10007 + 1;
  const seed = () => n++;
  const nCat = embSzs.length;
  const input = tf.input({ shape: [nCat + nCont], name: "input" });
  const parts: SymbolicTensor[] = [];
  if (nCat) {
    const embs = embSzs.map(([ni, nf], i) => {
      const col = new TabularColumns({ start: i, size: 1, name: `cat_${i}` }).apply(input) as SymbolicTensor;
      const e = tf.layers
        .embedding({ inputDim: ni, outputDim: nf, embeddingsInitializer: tf.initializers.truncatedNormal({ stddev: 0.01, seed: seed() }), name: `embeds.${i}` })
        .apply(col) as SymbolicTensor;
      return tf.layers.flatten({ name: `embeds.${i}.flat` }).apply(e) as SymbolicTensor;
    });
    let x = embs.length > 1 ? (tf.layers.concatenate({ name: "embeds.cat" }).apply(embs) as SymbolicTensor) : embs[0]!;
    if ((opts.embedP ?? 0) > 0) x = tf.layers.dropout({ rate: opts.embedP!, seed: seed(), name: "emb_drop" }).apply(x) as SymbolicTensor;
    parts.push(x);
  }
  if (nCont) {
    let x = new TabularColumns({ start: nCat, size: nCont, name: "conts" }).apply(input) as SymbolicTensor;
    if (opts.bnCont ?? tabularModelDefaults.bnCont) {
      x = tf.layers.batchNormalization({ axis: -1, epsilon: BN_EPS, momentum: BN_MOMENTUM, name: "bn_cont" }).apply(x) as SymbolicTensor;
    }
    parts.push(x);
  }
  if (parts.length === 0) throw new Error("tabularModel needs at least one categorical or continuous column");
  let x = parts.length > 1 ? (tf.layers.concatenate({ name: "x" }).apply(parts) as SymbolicTensor) : parts[0]!;
  const sizes = [x.shape[1] as number, ...layers, outSz];
  for (let i = 0; i < sizes.length - 1; i++) {
    const last = i === sizes.length - 2;
    const block = LinBnDrop(sizes[i]!, sizes[i + 1]!, { bn: !last, p: last ? 0 : ps[i], act: last ? null : "relu", linFirst: true });
    x = block.build(x, { name: `layers.${i}`, seed });
  }
  if (opts.yRange) x = new SigmoidRange({ low: opts.yRange[0], high: opts.yRange[1], name: "sigmoid_range" }).apply(x) as SymbolicTensor;
  return tf.model({ inputs: input, outputs: x, name: "tabular_model" });
}

/** A prediction on a table row: the class (or numbers) and the row as the model saw it (`#na#` for an unseen category). */
export interface TabularPrediction extends Prediction {
  row: Record<string, Cell>;
}

/** A `Learner` on a table: `predict` takes a row object (fastai's `learn.predict(df.iloc[0])`). */
export class TabularLearner extends Learner<TabularDataLoaders> {

  /** Predict one row `{ column: value, ... }`: a missing column is an error naming it; an unseen category becomes `#na#`. */
  override async predict(row: TabularRow | string | Buffer | tf.Tensor): Promise<TabularPrediction> {
    if (row instanceof tf.Tensor || typeof row === "string" || Buffer.isBuffer(row)) {
      throw new Error("a tabular learner predicts a row object, e.g. learn.predict({ age: 39, workclass: \"Private\", ... })");
    }
    const spec = this.dls.inferenceSpec();
    const x = await prepareTabularRows(spec, [row]);
    try {
      const info = { vocab: this.dls.vocab ?? [], isMultiLabel: false, inferenceSpec: spec, ...activationOf(this.lossFunc) };
      const pred = await predictWith(this.model, info, x);
      return { ...pred, row: this.dls.to.decodeRow(-1, x.dataSync(), []) };
    } finally {
      x.dispose();
    }
  }
}

/** fastai's `tabular_learner(dls, layers, metrics, y_range, ...)`: a `TabularModel` sized from the data, in a `TabularLearner`. */
export function tabularLearner(dls: TabularDataLoaders, opts: TabularModelOptions & LearnerOptions = {}): TabularLearner {
  const to = dls.to;
  const cards = to.cardinalities;
  const known = new Set(to.catNames);
  const wrong = Object.keys(opts.embSzs ?? {}).find((k) => !known.has(k));
  if (wrong) throw new Error(`embSzs names "${wrong}", which is not a categorical column; they are: ${to.catNames.join(", ")}`);
  const embSzs = to.catNames.map((c, i) => [cards[i]!, opts.embSzs?.[c] ?? embSzRule(cards[i]!)] as [number, number]);
  const model = tabularModel(embSzs, to.contNames.length, dls.c, opts);
  const { layers: _l, ps: _p, embedP: _e, yRange: _y, embSzs: _s, bnCont: _b, seed: _seed, ...learnerOpts } = opts;
  return new TabularLearner(dls, model, learnerOpts);
}
