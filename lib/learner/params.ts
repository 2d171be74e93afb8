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
