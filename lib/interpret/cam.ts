/**
 * Class activation maps, as the fastai book's chapter 18 computes them: where in the picture a
 * layer saw the evidence for a class.
 *
 * CAM (Zhou et al. 2016), for a layer whose output the head average-pools and feeds to its last
 * linear layer: map[i, j] = Σ_k W[k, class] · A[i, j, k], W that linear layer's weights (the book's
 * `einsum('ck,kij->cij', weight, act)`; no bias).
 * Grad-CAM (Selvaraju et al. 2017), for any layer:
 *   1. run the model, keeping the layer's activations A (`HookBwd` keeps both);
 *   2. take the gradient of the class's score (its logit) with respect to A;
 *   3. weight each channel by its gradient averaged over the map: w_k = mean_ij ∂score/∂A[i, j, k];
 *   4. map[i, j] = Σ_k w_k · A[i, j, k] (the book stops here; `relu: true` clamps at 0 as the paper).
 * Computing (`camFor`) is kept apart from drawing (`camPng`, `showCam`).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { showImage, tensorToPng } from "../display/image";
import { allLayers, hookGrad, hookOutput, HookBwd } from "../learner/hooks";
import { prepareOne } from "../learner/predict";
import type { CamLearner } from "../learner/contracts";

/** Options of `camFor`. */
export interface CamOptions {
  /** The layer whose activations are mapped (default: the last layer with an image-shaped output, the body's end). */
  layer?: string;
  /** The class: index or name in `dls.vocab` (default: the predicted class). */
  target?: number | string;
  /** "gradcam" (default; any layer) or "cam" (the layer the head pools into its last linear layer). */
  method?: "gradcam" | "cam";
  /** Grad-CAM: clamp the map at 0, as the Grad-CAM paper (default false, as fastai's book). */
  relu?: boolean;
}

/** A class activation map. */
export interface CamResult {
  /** The map, [height][width] of the layer's output grid (not yet resized to the picture). */
  map: number[][];
  /** The class it is for (index in `dls.vocab`), and its name. */
  target: number;
  label?: string;
  /** The model's raw outputs (logits) on the picture. */
  logits: number[];
  layer: string;
  method: "gradcam" | "cam";
}

type Layer = tf.layers.Layer;

/** An image-shaped output [batch, height, width, channels], not a pooled 1×1 one (a head's `AdaptiveConcatPool2d`). */
const rank4 = (l: Layer): boolean => {
  const s = l.outputShape as unknown;
  return Array.isArray(s) && s.length === 4 && !Array.isArray(s[0]) && !(s[1] === 1 && s[2] === 1);
};
const isContainer = (l: Layer): boolean => Array.isArray((l as unknown as { layers?: unknown }).layers);

/** The layer called `name`, else the last image-shaped one; errors list the layers that can be mapped. */
function camLayer(model: tf.LayersModel, name: string | undefined): Layer {
  const mappable = allLayers(model).filter((l) => !isContainer(l) && rank4(l));
  if (mappable.length === 0) throw new Error("camFor: the model has no layer with a [batch, height, width, channels] output to map");
  if (name === undefined) return mappable[mappable.length - 1]!;
  const found = allLayers(model).find((l) => l.name === name);
  if (!found) throw new Error(`camFor: the model has no layer "${name}"; layers it can map: ${mappable.map((l) => l.name).join(", ")}`);
  if (!rank4(found) || isContainer(found)) {
    throw new Error(`camFor: layer "${name}" outputs [${String(found.outputShape)}], not a [batch, height, width, channels] map; layers it can map: ${mappable.map((l) => l.name).join(", ")}`);
  }
  return found;
}

function classIndex(target: number | string | undefined, logits: number[], vocab: string[] | undefined): number {
  if (target === undefined) return logits.indexOf(Math.max(...logits));
  if (typeof target === "string") {
    const i = vocab?.indexOf(target) ?? -1;
    if (i < 0) throw new Error(`camFor: no class "${target}"; the classes are ${vocab?.length ? vocab.join(", ") : "unnamed (give an index)"}`);
    return i;
  }
  if (!Number.isInteger(target) || target < 0 || target >= logits.length) {
    throw new Error(`camFor: target ${target} is not a class index of this model's ${logits.length} outputs (0..${logits.length - 1})`);
  }
  return target;
}

/** The last `Dense` layer of the model: CAM's class weights. */
function lastDense(model: tf.LayersModel): Layer {
  const dense = allLayers(model).filter((l) => l.getClassName() === "Dense");
  if (!dense.length) throw new Error('camFor: method "cam" needs the model to end in a linear (Dense) layer; use method "gradcam"');
  return dense[dense.length - 1]!;
}

/** The class activation map of `image` (a path, encoded image, or prepared HWC/NHWC tensor) for a class (see `CamOptions`). */
export async function camFor(learn: CamLearner, image: string | Buffer | tf.Tensor, opts: CamOptions = {}): Promise<CamResult> {
  await ready();
  const method = opts.method ?? "gradcam";
  if (method !== "gradcam" && method !== "cam") throw new Error(`camFor: method must be "gradcam" or "cam", got ${String(method)}`);
  const model = learn.model;
  const layer = camLayer(model, opts.layer);
  const x = await prepareOne(learn.dls.inferenceSpec?.() ?? null, image);
  try {
    if (x.shape[0] !== 1) throw new Error(`camFor maps one picture; got a batch of ${x.shape[0]}`);
    const hook = method === "gradcam" ? hookGrad(model, layer.name) : hookOutput(model, layer.name);
    try {
      const logitsT = tf.tidy(() => tf.reshape(model.apply(x, { training: false }) as tf.Tensor, [-1]));
      const logits = Array.from(await logitsT.data());
      logitsT.dispose();
      const target = classIndex(opts.target, logits, learn.dls.vocab);
      const act = () => (hook instanceof HookBwd ? hook.output : hook.stored)!;
      const map = tf.tidy(() => {
        let weights: tf.Tensor; // [k]
        if (method === "gradcam") {
          // 2. ∂ logit[target] / ∂ A, caught by the hook on its way back
          const score = (input: tf.Tensor) => tf.sum(tf.slice(tf.reshape(model.apply(input, { training: false }) as tf.Tensor, [1, -1]), [0, target], [1, 1])) as tf.Scalar;
          tf.grad(score)(x);
          const grad = (hook as HookBwd).stored!;
          weights = tf.mean(grad, [0, 1, 2]); // 3.
        } else {
          const dense = lastDense(model);
          const kernel = dense.getWeights()[0]!; // [k, classes]
          const k = act().shape[3]!;
          if (kernel.shape[0] !== k) {
            throw new Error(
              `camFor: CAM weighs the ${k} channels of layer "${layer.name}" by the last linear layer "${dense.name}", which takes ${kernel.shape[0]} inputs; ` +
                'give the layer the head pools into its last linear layer, or use method "gradcam" for any layer',
            );
          }
          weights = tf.reshape(tf.slice(kernel, [0, target], [k, 1]), [k]);
        }
        const m = tf.sum(tf.mul(act(), weights), -1).squeeze([0]); // 4.
        return method === "gradcam" && opts.relu ? tf.relu(m) : m;
      });
      const out = map.arraySync() as number[][];
      map.dispose();
      return { map: out, target, label: learn.dls.vocab?.[target], logits, layer: layer.name, method };
    } finally {
      hook.remove();
    }
  } finally {
    x.dispose();
  }
}

/** Options of `camPng` and `showCam`. */
export interface ShowCamOptions extends CamOptions {
  /** Weight of the heat map over the picture (default 0.5). */
  alpha?: number;
}

/** A dark-to-bright colour ramp (black, purple, red, orange, pale yellow), as matplotlib's "magma". */
const RAMP: [number, number, number][] = [
  [0, 0, 4],
  [81, 18, 124],
  [183, 55, 121],
  [252, 137, 97],
  [252, 253, 191],
];

function ramp(v: number): [number, number, number] {
  const t = Math.min(Math.max(v, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(t), RAMP.length - 2);
  const f = t - i;
  const [a, b] = [RAMP[i]!, RAMP[i + 1]!];
  return [0, 1, 2].map((c) => (a[c]! + f * (b[c]! - a[c]!)) / 255) as [number, number, number];
}

/**
 * The picture with its class activation map blended over it, as PNG bytes: the map scaled to [0, 1],
 * resized (bilinear) to the picture, coloured dark to bright, mixed in with weight `alpha`.
 */
export async function camPng(learn: CamLearner, image: string | Buffer | tf.Tensor, opts: ShowCamOptions = {}): Promise<{ png: Buffer; cam: CamResult }> {
  const cam = await camFor(learn, image, opts);
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`showCam: alpha is the heat map's weight, between 0 and 1; got ${alpha}`);
  const spec = learn.dls.inferenceSpec?.() as { normalize?: { mean: number[]; std: number[] } } | null | undefined;
  const x = await prepareOne(spec ?? null, image);
  const blended = tf.tidy(() => {
    // the picture as the model saw it, un-normalised
    let pic = tf.squeeze(x, [0]) as tf.Tensor3D;
    if (spec?.normalize) pic = tf.add(tf.mul(pic, spec.normalize.std), spec.normalize.mean);
    if (pic.shape[2] === 1) pic = tf.tile(pic, [1, 1, 3]);
    pic = tf.clipByValue(pic.slice([0, 0, 0], [-1, -1, 3]), 0, 1);
    const m = tf.tensor2d(cam.map);
    const lo = m.min();
    const span = tf.maximum(tf.sub(m.max(), lo), 1e-12);
    const heat = tf.image.resizeBilinear(tf.expandDims(tf.div(tf.sub(m, lo), span), -1) as tf.Tensor3D, [pic.shape[0], pic.shape[1]]);
    const v = heat.dataSync();
    const rgb = new Float32Array(v.length * 3);
    v.forEach((h, i) => rgb.set(ramp(h), i * 3));
    const colour = tf.tensor3d(rgb, [pic.shape[0], pic.shape[1], 3]);
    return tf.add(tf.mul(pic, 1 - alpha), tf.mul(colour, alpha)) as tf.Tensor3D;
  });
  x.dispose();
  try {
    return { png: await tensorToPng(blended), cam };
  } finally {
    blended.dispose();
  }
}

/** Show the picture with its class activation map over it (the book's `ax.imshow(cam_map, alpha=0.6, ...)` over the image). */
export async function showCam(learn: CamLearner, image: string | Buffer | tf.Tensor, opts: ShowCamOptions = {}): Promise<CamResult> {
  const { png, cam } = await camPng(learn, image, opts);
  const what = cam.method === "gradcam" ? "Grad-CAM" : "CAM";
  await showImage(png, { title: `${what} of ${cam.label ?? `class ${cam.target}`} at ${cam.layer}` });
  return cam;
}
