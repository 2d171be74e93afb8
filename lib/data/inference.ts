/**
 * The inference side of the data floor: `prepareInferenceBatch` turns new inputs (file paths or
 * encoded images) into a model input batch by running exactly the validation pipeline that
 * `dls.inferenceSpec()` recorded. `lib/wiring.ts` hands it to the learner for `predict`, export
 * and the server.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { applyBatchTfms, type BatchTfm } from "./augment";
import { decodeImage } from "./decode";
import { Rng } from "./random";
import type { ItemTfm } from "./transforms";

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
}

/** Decode `inputs` (paths or bytes), apply the validation item and batch transforms of `spec`: a float32 NHWC batch (caller disposes). */
export async function prepareInferenceBatch(spec: InferenceSpec, inputs: (string | Buffer)[]): Promise<tf.Tensor4D> {
  await ready();
  if (inputs.length === 0) throw new Error("prepareInferenceBatch: no inputs given");
  const opts = { noUpscale: upscaleIsRedundant(spec.itemTfms, spec.batchTfms) };
  const imgs = await Promise.all(inputs.map((x) => decodeImage(x, spec.itemTfms, false, new Rng(0), opts)));
  const res = applyBatchTfms(imgs, spec.batchTfms, false, new Rng(0));
  return tf.tensor4d(res.data, res.shape, "float32");
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
