/**
 * Which layers' calls are exactly one 2-D channels-last convolution (with the layer's bias and
 * activation), and how they pad: what a fusion outside the layer may stand in for. tfjs-layers'
 * `Conv2D` is known here; tsfast's `PaddedConv2D` registers itself (models/layers.ts).
 *
 * Identity, not class name: a layer counts only while its `call` is the very function registered
 * (not a subclass's or a patched one, not a hook's replacement) and tfjs's `setCallHook` is not
 * watching it.
 */
import * as tf from "./tf";

/** A convolution's padding as tfjs's conv ops take it. */
export type ConvPad = "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]];

/** The members of tfjs-layers' 2-D convolution layers that a fusion reads. */
export interface ConvLayerLike {
  kernel: tf.LayerVariable | null;
  bias: tf.LayerVariable | null;
  strides: number[];
  dilationRate: number[];
  dataFormat: string;
  activation: { getClassName(): string } | null;
  call: unknown;
  _callHook?: unknown;
}

const known = new Map<unknown, (layer: ConvLayerLike) => ConvPad | undefined>();

/** Declare `call` (a prototype's method) a plain 2-D convolution whose padding `pad` reads off the layer. */
export function registerConvCall(call: unknown, pad: (layer: ConvLayerLike) => ConvPad | undefined): void {
  known.set(call, pad);
}

// tfjs-layers' Conv2D: `padding` "same" or "valid" ("causal" is for 1-D convolutions only)
registerConvCall((Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1, name: "tsfast_conv2d_call_probe" })) as { call: unknown }).call, (l) => {
  const p = (l as unknown as { padding: string }).padding;
  return p === "same" || p === "valid" ? p : undefined;
});

/**
 * The padding of `layer` when its call right now is a registered plain channels-last 2-D convolution
 * with no activation and a built kernel; undefined otherwise.
 */
export function plainConvPad(layer: unknown): ConvPad | undefined {
  const l = layer as ConvLayerLike;
  const pad = known.get(l.call);
  if (!pad || l._callHook != null || !l.kernel || l.dataFormat !== "channelsLast") return undefined;
  if (l.activation != null && l.activation.getClassName() !== "linear") return undefined;
  return pad(l);
}
