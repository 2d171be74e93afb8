/**
 * Prediction on raw inputs: a model, the inference facts saved with it (vocab, activation,
 * preprocessing spec) and the data floor's `prepareInferenceBatch`, which `lib/wiring.ts` registers
 * here with `setInferencePreparer` (the learner floor cannot import the data floor's loaders).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { Prediction } from "./contracts";
import type { Loss } from "./losses";

export type { Prediction };

/** How model outputs become probabilities. */
export type Activation = "softmax" | "sigmoid" | "none";

/** Turns file paths or encoded images into a model input batch (the data floor's `prepareInferenceBatch`). */
export type PrepareInferenceBatch = (spec: unknown, inputs: (string | Buffer)[]) => Promise<tf.Tensor4D>;

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

/** Run a model on many inputs at once (paths / encoded images, or a prepared NHWC batch) and decode each. */
export async function predictManyWith(model: tf.LayersModel, meta: InferenceInfo, inputs: (string | Buffer)[] | tf.Tensor): Promise<Prediction[]> {
  await ready();
  const x = inputs instanceof tf.Tensor ? inputs : await inferencePreparer()(meta.inferenceSpec, inputs);
  let rows: number[][];
  try {
    const out = tf.tidy(() => {
      const logits = model.apply(x, { training: false }) as tf.Tensor;
      const p = meta.activation === "softmax" ? tf.softmax(logits) : meta.activation === "sigmoid" ? tf.sigmoid(logits) : logits;
      return tf.reshape(p, [x.shape[0]!, -1]);
    });
    rows = (await out.array()) as number[][];
    out.dispose();
  } finally {
    if (x !== inputs) x.dispose();
  }
  const broken = rows.findIndex((r) => !r.every(Number.isFinite));
  if (broken >= 0) {
    throw new Error(
      `predict: the model output NaN or infinite values (input ${broken}), so no label can be trusted; its weights are broken ` +
        `(did training diverge?). Train again with a lower learning rate, or load a checkpoint saved before it went wrong`,
    );
  }
  const name = (i: number) => meta.vocab[i] ?? String(i);
  return rows.map((probs) => {
    let index = 0;
    probs.forEach((p, i) => {
      if (p > probs[index]!) index = i;
    });
    const r: Prediction = { label: name(index), index, probs };
    if (meta.isMultiLabel) r.labels = probs.flatMap((p, i) => (p > meta.thresh ? [name(i)] : []));
    return r;
  });
}
