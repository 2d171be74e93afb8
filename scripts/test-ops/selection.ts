/**
 * Which of tfjs-core's test files `test-ops` runs, and which specs it skips (each with a reason).
 */

/**
 * Suite files kept (paths under `@tensorflow/tfjs-core/dist/`): every op test (incl. fused, losses,
 * image, sparse, linalg, signal, spectral, string), the optimizers, gradients, tensors and variables.
 * Left out: io/ (model saving, browser storage), platform/browser/worker tests, engine and
 * kernel-registry internals (they register fake backends), none of which exercise a backend's math.
 */
export const SUITE_FILES: RegExp[] = [
  /^ops\//,
  /^optimizers\//,
  /^gradients_test\.js$/,
  /^tensor_test\.js$/,
  /^variable_test\.js$/,
];

/** One skipped group of specs: which backends, which spec names, and why. */
export interface Exclusion {
  /** Backends the rule applies to (`*` = all). */
  backends: string[];
  /** A spec is skipped when its full name contains this text (or matches this pattern). */
  match: string | RegExp;
  reason: string;
}

const W = ["wasm"];
// Every rule below is a gap of the STOCK tfjs wasm backend (4.22): each spec also fails with
// tsfast's kernels switched off. tsfast's own kernels (conv/depthwise gradients, conv2dTranspose,
// unsortedSegmentSum, gather gradients) are never excluded.
export const EXCLUSIONS: Exclusion[] = [
  { backends: W, match: /complex|FFT|stft/i, reason: "wasm has no complex64 dtype (no Complex/Real/Imag/FFT kernels)" },
  {
    backends: W,
    match: /^(add|sub) wasm .*upcasts when dtypes dont match/,
    reason: "the spec upcasts to complex64, which wasm lacks",
  },
  { backends: W, match: /^(einsum|RGBToGrayscale) wasm /, reason: "wasm has no Einsum kernel" },
  { backends: W, match: /^ragged(Gather|Range|TensorToTensor) +wasm /, reason: "wasm has no Ragged* kernels" },
  { backends: W, match: /^staticRegexReplace wasm /, reason: "wasm has no StaticRegexReplace kernel" },
  {
    backends: W,
    match: /^(conv2d|fused conv2d) wasm .*NCHW/,
    reason: "wasm Conv2D/FusedConv2D only support NHWC (channelsLast), tsfast's layout",
  },
  {
    backends: W,
    match: /^fused (conv2d|depthwiseConv2D|matmul) wasm .*(broadcasted bias and relu|2d bias|broadcasted bias different rank|p=0 with bias$)/,
    reason: "wasm fused kernels only take a rank-1 bias",
  },
  {
    backends: W,
    match:
      /^(fused conv2d wasm \{\} (backProp input|gradient) x=\[2,3,3,1\] f=\[2,2,1,1\] s=1 p=0$|fused depthwiseConv2D wasm \{\} gradient x=\[2,3,3,1\] f=\[2,2,1,1\] s=1 p=0$|customGradient wasm .*(second order derivative|gradient of custom op twice)|logSoftmax wasm \{\} 1D gradient$)/,
    reason:
      "the engine's test-mode leak check miscounts wasm data ids inside a custom-gradient forward pass " +
      "(fails with the stock backend alone; the same gradients pass in the other conv/fused specs)",
  },
  {
    backends: W,
    match: /should support string comparison|^(tile|tensor\.toString) wasm .*string tensor|fill string|should work for string|^squeeze wasm \{\} (default|specific dimension|all ones|squeeze only ones)$/,
    reason: "wasm kernels (compare, fill, tile, sparseToDense, toString) do not handle string tensors",
  },
  { backends: W, match: /^clipByValue wasm \{\} (basic vec4|propagates NaNs)$/, reason: "wasm ClipByValue does not propagate NaN" },
  {
    backends: W,
    match: /^(confusionMatrix wasm |matmul wasm \{\} upcasts when dtypes dont match$|dtypes wasm \{\} Should use the input tensor dtype$)/,
    reason: "wasm BatchMatMul supports float32 only",
  },
  { backends: W, match: /^threshold wasm \{\} method otsu/, reason: "wasm kernels mis-broadcast in threshold's otsu method" },
  { backends: W, match: /^logSigmoid wasm \{\} gradient with clones$/, reason: "stock wasm fails this spec (TypeError inside the engine)" },
  { backends: W, match: /^pool wasm .*fractional outputs default rounding$/, reason: "wasm pooling ignores dimRoundingMode" },
  { backends: W, match: /^slice2d wasm \{\} throws when requesting out of bounds slice$/, reason: "wasm Slice does not validate bounds" },
  { backends: W, match: /^tensor wasm \{\} Tensor2D (float32|int32) -> bool$/, reason: "wasm Cast to bool keeps non-0/1 values" },
];

/** The reason a spec is skipped on this backend, or undefined when it runs. */
export function excludedReason(backend: string, specName: string): string | undefined {
  for (const e of EXCLUSIONS) {
    if (!e.backends.includes("*") && !e.backends.includes(backend)) continue;
    const hit = typeof e.match === "string" ? specName.includes(e.match) : e.match.test(specName);
    if (hit) return e.reason;
  }
  return undefined;
}
