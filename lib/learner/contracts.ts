/**
 * The contracts between the floors, in one place: what the learner needs from data, what
 * `visionLearner` needs on top, what interpretation needs from a learner, and what the server
 * needs from one. They are structural types, so a floor depends on a shape, never on a class of
 * a floor above or beside it: the data floor's `DataLoaders` satisfies `DataLoadersLike` without
 * importing it, and a `Learner` satisfies `InterpretableLearner` and `LearnerLike` as it is.
 */
import type * as tf from "../engine/tf";

// ---------------------------------------------------------------- learner ← data

/** A batch as the data floor yields it: inputs and targets (the learner disposes both). */
export interface BatchLike {
  xb: tf.Tensor;
  yb: tf.Tensor;
}

/** What the learner needs from a data loader (structurally the data floor's `DataLoader`). */
export interface DataLoaderLike extends AsyncIterable<BatchLike> {
  /** Batches per epoch. */
  length: number;
  /** Items. */
  n?: number;
  /**
   * fastai's `dl.new(...)`: a copy over the same items with other options; `train: true` applies the
   * training transforms (random crops, `augTransforms`), which `tta` uses on the validation items.
   */
  new?(opts: { shuffle?: boolean; dropLast?: boolean; train?: boolean }): DataLoaderLike;
}

/**
 * What the learner needs from `DataLoaders` (structurally the data floor's class). `L` is the
 * loader type: interpretation reads the loaders through `LoaderLike` at run time, so it asks for
 * `DataLoadersLike<unknown>` and accepts any learner's data as it is.
 */
export interface DataLoadersLike<L = DataLoaderLike> {
  train: L;
  valid: L;
  /** Class names (classification). */
  vocab?: string[];
  /** Number of classes. */
  c?: number;
  /** Multi-hot targets (BCE loss) rather than class indices. */
  isMultiLabel?: boolean;
  /** The target's block kind ("category", "multicategory", "regression", "points", "mask"): picks the default loss. */
  targetKind?: string;
  /** Inputs and targets per batch (fastai's `n_inp`); the Learner trains one of each. Default 1 and 1. */
  nInp?: number;
  nTargets?: number;
  /** The dataset folder; the learner's default `path`. */
  path?: string;
  /** JSON-serialisable description of inference preprocessing (saved by `export`). */
  inferenceSpec?(): unknown;
}

// ---------------------------------------------------------------- models ← data

/** What `visionLearner` needs from `DataLoaders` besides `DataLoadersLike` (structurally the data floor's class). */
export interface VisionDataLoaders {
  /** Number of classes. */
  c?: number;
  /** Multi-hot targets (BCE loss) rather than class indices. */
  isMultiLabel?: boolean;
  /** The `Normalize` stats present in the batch transforms, if any. */
  normalize?: { mean: number[]; std: number[] };
  /** Adds a batch transform (a `Normalize` here) to both loaders. */
  addBatchTfm?(t: { type: "Normalize"; mean: number[]; std: number[] }): void;
  /** One batch (of the validation set with `valid: true`): the number of input channels, grey or colour. */
  oneBatch?(opts?: { valid?: boolean }): Promise<{ xb: tf.Tensor; yb: tf.Tensor }>;
}

// ---------------------------------------------------------------- interpret ← learner

/** What interpretation needs of a data loader: its items in prediction order and their images. */
export interface LoaderLike {
  /** What `getItems` returned, e.g. file paths; `getPreds` returns predictions in this order. */
  items: readonly unknown[];
  /** Item `i` after the validation item transforms, float in [0,1], un-normalised. */
  loadImage(i: number): Promise<tf.Tensor3D>;
  /** Whether batches come shuffled (then predictions are not in item order). */
  shuffle?: boolean;
  /** Items found unreadable and skipped by iteration (so absent from `getPreds`). */
  bad?: ReadonlySet<number>;
  /** fastai's `dl.new(...)`: a copy with other options, e.g. unshuffled for predictions in item order. */
  new?(opts: { shuffle?: boolean; dropLast?: boolean; train?: boolean }): LoaderLike;
}

/** What `getPreds` returns; the caller disposes the tensors. */
export interface Preds {
  preds: tf.Tensor2D;
  targs: tf.Tensor;
  losses?: tf.Tensor1D;
}

/** What interpretation (`ClassificationInterpretation`, `showResults`, the cleaner) needs of a `Learner`. */
export interface InterpretableLearner {
  dls: DataLoadersLike<unknown>;
  /** `dl` (a loader to predict on instead of split `dsIdx`) is used only for the training split, see `fromLearner`. */
  getPreds(opts?: { dsIdx?: number; withLoss?: boolean; dl?: unknown }): Promise<Preds>;
}

/** What `camFor` / `showCam` need of a `Learner`: its model, and its data's vocabulary and inference preprocessing. */
export interface CamLearner {
  model: tf.LayersModel;
  dls: { vocab?: string[]; inferenceSpec?(): unknown };
}

// ---------------------------------------------------------------- serve ← learner

/** One prediction, as `learn.predict` returns it. */
export interface Prediction {
  /** The predicted class (`vocab[index]`). */
  label: string;
  /** Index of the predicted class in `vocab`. */
  index: number;
  /** One probability per class, in `vocab` order (raw outputs for regression). */
  probs: number[];
  /** Multi-label models: every class whose probability exceeds the threshold. */
  labels?: string[];
  /**
   * Key-point models: each point in pixels of the original image, (0, 0) its top-left corner (`probs`
   * holds the raw [-1, 1] outputs; `label` the points as text; `index` -1).
   */
  points?: [number, number][];
  /**
   * Segmentation models: the class of each pixel at the model's input size (row-major), and the same
   * as a grey PNG (base64; pixel value = class index). `probs` is each class's share of the pixels,
   * `label`/`index` the largest class other than 0 (the background).
   */
  mask?: { width: number; height: number; indices: number[]; png: string };
  /** Regression models: the predicted numbers (also in `probs`; `index` -1). */
  values?: number[];
}

/** What the server needs of a trained `Learner`: its vocabulary lives on `dls`. */
export interface LearnerLike {
  /** The learner's data: `vocab` names the classes. */
  dls: { vocab?: string[]; isMultiLabel?: boolean };
  /** `learn.predict`. */
  predict(input: Buffer): Promise<Prediction>;
  /** `learn.predictBatch`, when present. */
  predictBatch?: (inputs: Buffer[]) => Promise<Prediction[]>;
  /** The model, reported by `GET /info`. */
  model?: unknown;
}
