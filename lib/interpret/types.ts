/**
 * The parts of a `Learner` and its `DataLoaders` that interpretation uses, as structural types
 * (HELPERS.md's Learner and Data contracts), so this floor depends on no concrete class.
 */
import type * as tf from "../engine/tf";

/** What interpretation needs of a `DataLoader`: its items in prediction order and their images. */
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

/** What interpretation needs of `DataLoaders`. */
export interface DataLoadersLike {
  train: LoaderLike;
  valid: LoaderLike;
  vocab: readonly string[];
  isMultiLabel?: boolean;
}

/** What `learn.getPreds` returns (the caller disposes the tensors). */
export interface PredsResult {
  preds: tf.Tensor2D;
  targs: tf.Tensor;
  losses?: tf.Tensor1D;
}

/** What interpretation needs of a `Learner`. */
export interface LearnerLike {
  dls: DataLoadersLike;
  /** `dl` (a loader to predict on instead of split `dsIdx`) is used only for the training split, see `fromLearner`. */
  getPreds(opts?: { dsIdx?: number; withLoss?: boolean; dl?: LoaderLike }): Promise<PredsResult>;
  predict?(input: string | Buffer): Promise<{ label: string; index: number; probs: number[] }>;
}

/** The loader of split `dsIdx` (0 = train, 1 = valid), with an error naming the value otherwise. */
export function loaderOf(dls: DataLoadersLike, dsIdx: number): LoaderLike {
  if (dsIdx === 0) return dls.train;
  if (dsIdx === 1) return dls.valid;
  throw new Error(`dsIdx must be 0 (train) or 1 (valid), got ${dsIdx}`);
}
