/**
 * The well-kept mljs models the table and collaborative-filtering lessons use (decision trees,
 * random forests, PCA), re-exported so that a notebook in any folder imports them from `tsfast`
 * alone. The classes are mljs's own; only their option and method types are spelled out here,
 * because `ml-cart` ships none and `ml-random-forest`'s declare every option as required.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cart = require("ml-cart") as { DecisionTreeClassifier: unknown; DecisionTreeRegression: unknown };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const forest = require("ml-random-forest") as { RandomForestClassifier: unknown; RandomForestRegression: unknown };
export { PCA } from "ml-pca";

/** `ml-cart`'s tree options (CART: Gini impurity for classes, squared error for numbers). */
export interface DecisionTreeOptions {
  /** Deepest level of the tree (default Infinity). */
  maxDepth?: number;
  /** Fewest rows a node must hold to be split (default 3). */
  minNumSamples?: number;
  /** Smallest impurity gain worth a split (default 0.01 for the classifier). */
  gainThreshold?: number;
}

/** A fitted tree or forest: rows of numbers in, one label index or value per row out. */
export interface TabularEstimator {
  train(xs: number[][], ys: number[]): void;
  predict(xs: number[][]): number[];
}

/** `ml-random-forest`'s options; unset ones keep its defaults. */
export interface RandomForestOptions {
  /** Trees in the forest (default 50). */
  nEstimators?: number;
  /** Features tried per tree: a count, or a fraction in (0, 1] (default 1.0). */
  maxFeatures?: number;
  /** Draw the features with replacement (default true). */
  replacement?: boolean;
  /** Train each tree on a bootstrap sample of the rows (default true). */
  useSampleBagging?: boolean;
  /** Seed of the feature and row draws (default 42). */
  seed?: number;
  /** Options of every tree. */
  treeOptions?: DecisionTreeOptions;
  /** Skip the out-of-bag predictions (default false). */
  noOOB?: boolean;
  /** How a regression forest combines its trees (default "mean"). */
  selectionMethod?: "mean" | "median";
}

/** A random forest: also reports each feature's share of the impurity reduction. */
export interface RandomForest extends TabularEstimator {
  featureImportance(): number[];
}

export const DecisionTreeClassifier = cart.DecisionTreeClassifier as new (options?: DecisionTreeOptions) => TabularEstimator;
export const DecisionTreeRegression = cart.DecisionTreeRegression as new (options?: DecisionTreeOptions) => TabularEstimator;
export const RandomForestClassifier = forest.RandomForestClassifier as new (options?: RandomForestOptions) => RandomForest;
export const RandomForestRegression = forest.RandomForestRegression as new (options?: RandomForestOptions) => RandomForest;
