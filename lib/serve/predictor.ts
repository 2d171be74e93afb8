/**
 * What the server needs from a model: a vocabulary and an async `predict` on image bytes.
 *
 * A `Learner` (and what `loadLearner(dir)` returns) already has this shape. `loadPredictor(dir)`
 * obtains one from an export folder through `loadLearner`; `setPredictorLoader` points it
 * elsewhere (tests, or another model format).
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** One prediction, as `learn.predict` returns it. */
export interface Prediction {
  /** The predicted class (`vocab[index]`). */
  label: string;
  /** Index of the predicted class in `vocab`. */
  index: number;
  /** One probability per class, in `vocab` order. */
  probs: number[];
  /** Multi-label models: every class over the threshold. */
  labels?: string[];
}

/** The model side of the server: anything with a `vocab` and a `predict` on image bytes. */
export interface Predictor {
  /** Class names, in the order of `probs`. */
  vocab: string[];
  /** Classify one encoded image (JPEG, PNG, ...). */
  predict(input: Buffer): Promise<Prediction>;
  /** Classify several at once (optional; the server batches waiting requests when present). */
  predictBatch?: (inputs: Buffer[]) => Promise<Prediction[]>;
  /** Whether the model is multi-label (optional). */
  isMultiLabel?: boolean;
  /** Free the model's tensors (optional; `close()` calls it for a model the server loaded). */
  dispose?: () => void;
}

/** Turns an export folder into a `Predictor`. */
export type PredictorLoader = (dir: string) => Promise<Predictor>;

let loader: PredictorLoader | undefined;

/** Make `serve(dir)` and the CLI load export folders with `fn` instead of `loadLearner`; `undefined` restores the default. */
export function setPredictorLoader(fn: PredictorLoader | undefined): void {
  loader = fn;
}

/** Load the model exported to `dir` (by `learn.export(dir)`); errors name the folder and what is missing. */
export async function loadPredictor(dir: string): Promise<Predictor> {
  const abs = path.resolve(dir);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch {
    throw new Error(`export folder "${dir}" does not exist (resolved to ${abs}); create it with learn.export("${dir}")`);
  }
  if (!stat.isDirectory()) {
    throw new Error(`"${dir}" is a file, not an export folder; pass the folder learn.export(dir) wrote`);
  }
  const load = loader ?? defaultLoader();
  const p = await load(abs);
  if (!p || !Array.isArray(p.vocab) || typeof p.predict !== "function") {
    throw new Error(`the model loaded from "${dir}" has no vocab/predict; is it a tsfast export?`);
  }
  return p;
}

// The learner module is looked up at call time, so the server builds and is tested on its own.
function defaultLoader(): PredictorLoader {
  let mod: { loadLearner?: (dir: string) => Promise<unknown> };
  try {
    mod = require("../learner/export") as typeof mod;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot load an export folder: tsfast's loadLearner (lib/learner/export) is not available (${msg.split("\n")[0]})`);
  }
  if (typeof mod.loadLearner !== "function") {
    throw new Error("cannot load an export folder: lib/learner/export has no loadLearner function");
  }
  const loadLearner = mod.loadLearner;
  return async (dir) => {
    const learn = (await loadLearner(dir)) as Predictor & { model?: { dispose?: () => unknown } };
    // An exported learner owns its model's weights; the server frees them on close().
    if (typeof learn.dispose !== "function" && typeof learn.model?.dispose === "function") {
      const model = learn.model;
      learn.dispose = () => void model.dispose!();
    }
    return learn;
  };
}

/**
 * Make a fresh process able to restore any export, as `import "tsfast"` does for a notebook: load the
 * public API (it registers the models' custom layer classes) and hand the data floor's
 * `prepareInferenceBatch` to the learner. The `tsfast` command calls it before `loadPredictor`.
 */
export function loadRuntime(): void {
  tryRequire("../index");
  const learner = tryRequire("../learner/export") as { setInferencePreparer?: (f: unknown) => void } | undefined;
  const data = (tryRequire("../data") ?? tryRequire("../data/loader")) as { prepareInferenceBatch?: unknown } | undefined;
  if (typeof learner?.setInferencePreparer === "function" && typeof data?.prepareInferenceBatch === "function") {
    learner.setInferencePreparer(data.prepareInferenceBatch);
  }
}

function tryRequire(id: string): unknown {
  try {
    return require(id) as unknown;
  } catch (e) {
    // Only a module that is absent from this build is skipped; a module that fails to load is an error.
    if ((e as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" && String((e as Error).message).includes(`'${id}'`)) return undefined;
    throw e;
  }
}

/** The class probabilities sorted high to low, best `k` first. */
export function topK(probs: number[], vocab: string[], k: number): { label: string; index: number; probability: number }[] {
  return probs
    .map((p, i) => ({ label: vocab[i] ?? String(i), index: i, probability: p }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, Math.max(0, k));
}
