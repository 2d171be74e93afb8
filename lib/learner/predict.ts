/**
 * Prediction on raw inputs: a model, the inference facts saved with it (vocab, activation,
 * preprocessing spec) and the data floor's `prepareInferenceBatch`, which `lib/wiring.ts` registers
 * here with `setInferencePreparer` (the learner floor cannot import the data floor's loaders).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { Prediction } from "./contracts";
import type { Loss } from "./losses";
import { greyPng } from "../display/image";

/** A prediction refused because of its input (an empty text, ...): the caller's to fix; `tsfast serve` answers 422. */
export class PredictInputError extends Error {
  override name = "PredictInputError";
}

/** A prediction refused because the model's outputs are not finite (broken weights): not the input's fault; `tsfast serve` answers 500. */
export class BrokenModelError extends Error {
  override name = "BrokenModelError";
}

export type { Prediction };

/** How model outputs become probabilities. */
export type Activation = "softmax" | "sigmoid" | "none";

/**
 * Turns file paths or encoded images into a model input batch (the data floor's `prepareInputs`):
 * the batch alone, or with each input's map from the model's [-1, 1] back to its original pixels.
 */
export type PrepareInferenceBatch = (
  spec: unknown,
  inputs: (string | Buffer)[],
) => Promise<tf.Tensor4D | { x: tf.Tensor4D; unproject?: ((pts: Float32Array) => Float32Array)[] }>;

/** What a model outputs when not classes (the data floor's `InferenceTarget`, carried in the spec). */
export type PredictTarget = { kind: "points"; n: number } | { kind: "mask"; codes: string[] } | { kind: "regression"; n: number } | { kind: "next-token" };

function targetOf(spec: unknown): PredictTarget | undefined {
  const t = (spec as { target?: PredictTarget } | null)?.target;
  return t && typeof t === "object" && typeof t.kind === "string" ? t : undefined;
}

let preparer: PrepareInferenceBatch | undefined;

/** Tell the learner how to preprocess `predict` inputs (`lib/wiring.ts` registers the data floor's `prepareInferenceBatch`). */
export function setInferencePreparer(f: PrepareInferenceBatch): void {
  preparer = f;
}

function inferencePreparer(): PrepareInferenceBatch {
  if (preparer) return preparer;
  throw new Error("predict needs the data module's prepareInferenceBatch; import it from tsfast or call setInferencePreparer(fn)");
}

/** The activation a loss implies. */
export function activationOf(loss: Loss): { activation: Activation; thresh: number } {
  const l = loss as Loss & { activationName?: Activation; thresh?: number };
  if (l.activationName) return { activation: l.activationName, thresh: l.thresh ?? 0.5 };
  if (/CrossEntropy/.test(loss.name)) return { activation: "softmax", thresh: 0.5 };
  if (/BCE/.test(loss.name)) return { activation: "sigmoid", thresh: l.thresh ?? 0.5 };
  return { activation: "none", thresh: 0.5 };
}

/** What `predict` needs besides the model. */
export interface InferenceInfo {
  vocab: string[];
  isMultiLabel: boolean;
  inferenceSpec: unknown;
  activation: Activation;
  thresh: number;
}

/** Run a model on one input (file path, encoded image, or an already prepared tensor) and decode it. */
export async function predictWith(model: tf.LayersModel, meta: InferenceInfo, input: string | Buffer | tf.Tensor): Promise<Prediction> {
  const x = input instanceof tf.Tensor ? (input.rank === 3 ? tf.expandDims(input, 0) : input.clone()) : undefined;
  const [r] = await predictManyWith(model, meta, x ?? [input as string | Buffer]);
  x?.dispose();
  return r!;
}

/**
 * Forget every layer's carried state (a layer with a `reset()`: the recurrent models' hidden state), as
 * fastai's `ModelResetter` does before validation: a prediction must not depend on what ran before it.
 */
export function resetModelState(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    const r = (layer as unknown as { reset?: () => void }).reset;
    if (typeof r === "function") r.call(layer);
  }
}

/** Run a model on many inputs at once (paths / encoded images, or a prepared NHWC batch) and decode each. */
export async function predictManyWith(model: tf.LayersModel, meta: InferenceInfo, inputs: (string | Buffer)[] | tf.Tensor): Promise<Prediction[]> {
  await ready();
  const prepared = inputs instanceof tf.Tensor ? inputs : await inferencePreparer()(meta.inferenceSpec, inputs);
  const x = prepared instanceof tf.Tensor ? prepared : prepared.x;
  const unproject = prepared instanceof tf.Tensor ? undefined : prepared.unproject;
  const target = targetOf(meta.inferenceSpec);
  let rows: number[][];
  let outShape: number[];
  try {
    resetModelState(model);
    const out = tf.tidy(() => {
      const logits = model.apply(x, { training: false }) as tf.Tensor;
      return meta.activation === "softmax" ? tf.softmax(logits) : meta.activation === "sigmoid" ? tf.sigmoid(logits) : logits;
    });
    outShape = out.shape;
    const flat = tf.reshape(out, [x.shape[0]!, -1]);
    rows = (await flat.array()) as number[][];
    tf.dispose([out, flat]);
  } finally {
    if (x !== inputs) x.dispose();
  }
  const broken = rows.findIndex((r) => !r.every(Number.isFinite));
  if (broken >= 0) {
    throw new BrokenModelError(
      `predict: the model output NaN or infinite values (input ${broken}), so no label can be trusted; its weights are broken ` +
        `(did training diverge?). Train again with a lower learning rate, or load a checkpoint saved before it went wrong`,
    );
  }
  if (target?.kind === "points") return rows.map((row, i) => pointsPrediction(row, target.n, unproject?.[i]));
  if (target?.kind === "mask") return Promise.all(rows.map((row) => maskPrediction(row, outShape, target.codes)));
  if (target?.kind === "regression") return rows.map((values) => ({ label: values.map((v) => Number(v.toPrecision(6))).join(", "), index: -1, probs: values, values }));
  const name = (i: number) => meta.vocab[i] ?? String(i);
  // a language model scores every position: the prediction is the token after the last one
  if (target?.kind === "next-token") rows = rows.map((r) => r.slice(r.length - meta.vocab.length));
  return rows.map((probs) => {
    const index = argMax(probs);
    const r: Prediction = { label: name(index), index, probs };
    if (meta.isMultiLabel) r.labels = probs.flatMap((p, i) => (p > meta.thresh ? [name(i)] : []));
    return r;
  });
}

function argMax(xs: ArrayLike<number>, from = 0, n = xs.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (xs[from + i]! > xs[from + best]!) best = i;
  return best;
}

/** n [x, y] points: the model's [-1, 1] outputs (`probs`) and, when the input's geometry is known, pixels of the original image. */
function pointsPrediction(row: number[], n: number, unproject?: (pts: Float32Array) => Float32Array): Prediction {
  if (row.length !== 2 * n) throw new Error(`predict: the model outputs ${row.length} numbers for ${n} points (${2 * n} expected)`);
  const px = unproject ? unproject(Float32Array.from(row)) : undefined;
  const points = px ? Array.from({ length: n }, (_, k) => [px[2 * k]!, px[2 * k + 1]!] as [number, number]) : undefined;
  const shown = (points ?? []).map(([x, y]) => `(${x.toFixed(1)}, ${y.toFixed(1)})`).join(" ");
  return { label: shown || `${n} points`, index: -1, probs: row, ...(points ? { points } : {}) };
}

/** Class indices per pixel at the model's input size, with their PNG (grey, value = class) and the share of each class. */
async function maskPrediction(row: number[], outShape: number[], codes: string[]): Promise<Prediction> {
  const [, h, w, c] = outShape as [number, number, number, number];
  if (c !== codes.length || h * w * c !== row.length) throw new Error(`predict: the model outputs shape [${outShape.join(", ")}], not [n, h, w, ${codes.length}] scores for the codes`);
  const indices = new Uint8Array(h * w);
  const share = new Array<number>(c).fill(0);
  for (let p = 0; p < h * w; p++) {
    const k = argMax(row, p * c, c);
    indices[p] = k;
    share[k]! += 1 / (h * w);
  }
  // the largest class but the background; the background when nothing else is there
  const fg = argMax(share.map((v, k) => (k === 0 ? -1 : v)));
  const top = share[fg]! > 0 ? fg : 0;
  return {
    label: codes[top] ?? String(top),
    index: top,
    probs: share,
    mask: { width: w, height: h, indices: Array.from(indices), png: (await greyPng(indices, w, h)).toString("base64") },
  };
}

/**
 * One input as a model batch of one (caller disposes): a prepared tensor (HWC or NHWC) as it is,
 * a file path or encoded image through the validation pipeline that `spec` recorded.
 */
export async function prepareOne(spec: unknown, input: string | Buffer | tf.Tensor): Promise<tf.Tensor> {
  await ready();
  if (input instanceof tf.Tensor) return input.rank === 3 ? tf.expandDims(input, 0) : input.clone();
  const prepared = await inferencePreparer()(spec, [input]);
  return prepared instanceof tf.Tensor ? prepared : prepared.x;
}
