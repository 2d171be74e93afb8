/**
 * The inference side of the data floor: `prepareInferenceBatch` turns new inputs (file paths or
 * encoded images) into a model input batch by running exactly the validation pipeline that
 * `dls.inferenceSpec()` recorded. `lib/wiring.ts` hands it to the learner for `predict`, export
 * and the server.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { applyBatchTfms, type BatchTfm } from "./augment";
import { decodeImage, type DecodeRecord } from "./decode";
import { applyMatrix, pointsBackThroughPlans, unitToPixels } from "./follow";
import { Rng } from "./random";
import type { ItemTfm } from "./transforms";
import { encodeCollabRows, isCollabSpec } from "../collab/data";

/** Everything `predict`, export and the server need to turn raw images into a model input batch (JSON). */
export interface InferenceSpec {
  /** Format version of this object. */
  version: 1;
  /** Item transforms, run as on the validation set. */
  itemTfms: ItemTfm[];
  /** Batch transforms, run as on the validation set (resize to the final size, normalise). */
  batchTfms: BatchTfm[];
  /** Channel statistics when normalised. */
  normalize?: { mean: number[]; std: number[] };
  vocab: string[];
  isMultiLabel: boolean;
  /**
   * What the model's output is, when not classes: `points` (n [x, y] pairs, [-1, 1] of the model's
   * input), `mask` (class scores per pixel over `codes`), `regression` (n numbers). Absent: classes.
   */
  target?: InferenceTarget;
  /** "L": the input is decoded grey, one channel (`ImageBlock({ cls: "grey" })`). Absent: RGB. */
  mode?: "L";
}

/** The kinds of output `predict` decodes besides classes (see `InferenceSpec.target`). */
export type InferenceTarget = { kind: "points"; n: number } | { kind: "mask"; codes: string[] } | { kind: "regression"; n: number };

/** A model input batch, and for each input how a point of the model's [-1, 1] maps back to the original image's pixels. */
export interface PreparedInputs {
  x: tf.Tensor4D;
  /** Points ([-1, 1] of the model input, x, y pairs) → pixels of input i's original image, (0, 0) its top-left corner. */
  unproject: ((pts: Float32Array) => Float32Array)[];
}

/** Decode `inputs` (paths or bytes), apply the validation item and batch transforms of `spec`: a float32 NHWC batch (caller disposes). */
export async function prepareInferenceBatch(spec: InferenceSpec, inputs: (string | Buffer)[]): Promise<tf.Tensor4D> {
  return (await prepareInputs(spec, inputs)).x;
}

/**
 * `prepareInferenceBatch`, plus the geometry each input went through, so `predict` can give points
 * in pixels of the original image (what `predict` uses; the caller disposes `x`).
 */
export async function prepareInputs(spec: InferenceSpec, inputs: (string | Buffer)[]): Promise<PreparedInputs> {
  await ready();
  if (inputs.length === 0) throw new Error("prepareInferenceBatch: no inputs given");
  // collaborative filtering: inputs are { user, item } rows, the batch int32 [n, 2] indices
  if (isCollabSpec(spec)) return { x: encodeCollabRows(spec, inputs) as unknown as tf.Tensor4D, unproject: [] };
  const noUpscale = upscaleIsRedundant(spec.itemTfms, spec.batchTfms);
  const records: DecodeRecord[] = inputs.map(() => ({ srcWidth: 0, srcHeight: 0, plans: [] }));
  const mode = spec.mode ?? "RGB";
  const imgs = await Promise.all(inputs.map((x, i) => decodeImage(x, spec.itemTfms, false, new Rng(0), { noUpscale, mode, record: records[i]! })));
  const res = applyBatchTfms(imgs, spec.batchTfms, false, new Rng(0));
  const unproject = imgs.map((img, i) => (pts: Float32Array) => {
    const r = records[i]!;
    // model input [-1, 1] → the decoded image's [-1, 1] (the batch matrix) → its pixel centres →
    // back through the item transforms → the original's corner-based pixels
    const src = unitToPixels(applyMatrix(pts.slice(), res.mats.subarray(9 * i, 9 * i + 9)), img.width, img.height);
    return pointsBackThroughPlans(src, r.srcWidth, r.srcHeight, r.plans).map((v) => v + 0.5);
  });
  if (mode === "L") {
    // grey decodes into three equal channels: keep one, as ImageBlock's batches do
    const one = new Float32Array(res.data.length / 3);
    for (let p = 0; p < one.length; p++) one[p] = res.data[3 * p]!;
    return { x: tf.tensor4d(one, [res.shape[0], res.shape[1], res.shape[2], 1], "float32"), unproject };
  }
  return { x: tf.tensor4d(res.data, res.shape, "float32"), unproject };
}

/**
 * True when a batch transform resamples every image to a final size no larger than the last item
 * transform's, so enlarging in the item transform is redundant (see `DecodeOptions.noUpscale`).
 */
export function upscaleIsRedundant(itemTfms: readonly ItemTfm[], batchTfms: readonly BatchTfm[]): boolean {
  const last = itemTfms[itemTfms.length - 1];
  const aff = batchTfms.find((t) => t.type === "AffineAug");
  if (!last || !aff || aff.type !== "AffineAug" || !aff.size) return false;
  return aff.size[0] <= last.size[0] && aff.size[1] <= last.size[1];
}
