/**
 * Parameter groups over tfjs layers: which variables a group owns, which are batch-norm or bias
 * parameters (no weight decay by default), and freezing groups while batch-norm keeps training.
 */
import * as tf from "../engine/tf";
import type { Param } from "./optimizer";

type Layer = tf.layers.Layer;
type LayerVariable = Layer["weights"][number];

interface Internals {
  _trainableWeights: LayerVariable[];
  _nonTrainableWeights: LayerVariable[];
  layers?: Layer[];
}

/** The leaf layers (not containers) under `layer`, depth first. */
export function leafLayers(layer: Layer): Layer[] {
  const sub = (layer as unknown as Internals).layers;
  if (Array.isArray(sub)) return sub.flatMap(leafLayers);
  return [layer];
}

/** True for normalisation layers (BatchNormalization, LayerNormalization, ...), whose params fastai treats specially. */
export function isNormLayer(layer: Layer): boolean {
  return /Normalization$/.test(layer.getClassName());
}

/** The trainable-by-design variables of a leaf layer (kernels, biases, gamma, beta), whether frozen now or not. */
export function designTrainable(layer: Layer): LayerVariable[] {
  return (layer as unknown as Internals)._trainableWeights ?? [];
}

/** Non-trainable variables of a leaf layer (batch-norm moving statistics). */
export function designNonTrainable(layer: Layer): LayerVariable[] {
  return (layer as unknown as Internals)._nonTrainableWeights ?? [];
}

/** A parameter with the layer variable that owns it. */
export interface GroupParam extends Param {
  layerVariable: LayerVariable;
  layer: Layer;
}

/** Build parameter groups from layer groups; `doWd` is false for norm-layer and bias params unless `wdBnBias`. */
export function paramGroups(groups: Layer[][], wdBnBias: boolean): GroupParam[][] {
  const seen = new Set<LayerVariable>();
  return groups.map((g) =>
    g.flatMap(leafLayers).flatMap((layer) =>
      designTrainable(layer)
        .filter((lv) => !seen.has(lv) && (seen.add(lv), true))
        .map((lv) => {
          const short = lv.originalName.split("/").pop() ?? lv.originalName;
          const bnOrBias = isNormLayer(layer) || /bias/i.test(short);
          return { variable: lv.read() as tf.Variable, doWd: wdBnBias || !bnOrBias, layerVariable: lv, layer };
        }),
    ),
  );
}

/**
 * Freeze groups `[0, n)` and unfreeze the rest (fastai's `freeze_to`); negative `n` counts from the
 * end. Norm layers in frozen groups stay trainable when `trainBn`.
 */
export function freezeGroups(groups: Layer[][], n: number, trainBn: boolean): void {
  const frozenIdx = n >= 0 ? n : groups.length + n;
  if (frozenIdx >= groups.length) {
    console.warn(`freezeTo(${n}): freezing ${frozenIdx} groups but the model has ${groups.length}; the whole model is frozen`);
  }
  groups.forEach((g, i) => {
    const frozen = i < frozenIdx;
    for (const layer of g.flatMap(leafLayers)) layer.trainable = !frozen || (trainBn && isNormLayer(layer));
  });
}

/** Whether a parameter is trained now (its variable is marked trainable by its layer). */
export function isTrained(p: GroupParam): boolean {
  return p.layer.trainable && p.layerVariable.trainable;
}

/** The share of their starting values BatchNorm's moving statistics may keep after a fit before we warn. */
const BN_STALE_SHARE = 0.01;

/**
 * The warning for a fit of `steps` training steps when BatchNorm layers of `model` keep tfjs's
 * default momentum 0.99 (PyTorch's 0.01) or more: after n steps their moving mean and variance
 * still hold momentum^n of their starting values (0 and 1), and validation uses them. Undefined
 * when no layer is affected or the fit is long enough (fewer than 1 % left: 459 steps at 0.99).
 */
export function bnMomentumWarning(model: tf.LayersModel, steps: number): string | undefined {
  const slow = leafLayers(model)
    .filter((l) => l.getClassName() === "BatchNormalization")
    .map((l) => ({ name: l.name, momentum: Number(l.getConfig()["momentum"]) }))
    .filter((b) => b.momentum >= 0.99 && b.momentum < 1);
  if (slow.length === 0) return undefined;
  const momentum = Math.min(...slow.map((b) => b.momentum));
  const share = Math.pow(momentum, steps);
  if (share < BN_STALE_SHARE) return undefined;
  const names = slow.slice(0, 3).map((b) => `"${b.name}"`).join(", ") + (slow.length > 3 ? ` and ${slow.length - 3} more` : "");
  return (
    `tsfast: BatchNormalization layer${slow.length > 1 ? "s" : ""} ${names} use${slow.length > 1 ? "" : "s"} momentum ${momentum} ` +
    `(tfjs's default; PyTorch's 0.01): after this fit's ${steps} training steps the moving mean and variance still hold ` +
    `${(share * 100).toFixed(0)} % of their starting values (0 and 1), and validation uses them, so validation loss and ` +
    `metrics can sit near chance while training loss falls. Build BatchNorm with momentum 0.9 (PyTorch's 0.1): ` +
    `tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }), or tsfast's ConvLayer / LinBnDrop / simpleCnn.`
  );
}
