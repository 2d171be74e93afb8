/**
 * The native backend's kernels: every cpu kernel re-registered for "native", then the hot ones
 * replaced by oneDNN / OpenMP code that reads and writes the cpu backend's TypedArrays in place.
 *
 * Each native kernel handles the float32 NHWC cases it was written for and hands anything else
 * (other dtypes, NCHW, unusual broadcasts) to the cpu kernel it replaces, so the op surface is
 * exactly the cpu backend's.
 */
import * as tf from "../tf";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { weightToken, type NativeAddon } from "./addon";
import type { NativeBackend } from "./pool";
import { embeddingKernels } from "./embedding";

type TI = tf.TensorInfo;
type Backend = MathBackendCPU;
type Attrs = Record<string, unknown>;
type KernelArgs = { inputs: Record<string, TI | undefined>; backend: Backend; attrs?: Attrs };
/** A kernel function as the native table holds it. */
export type Kernel = (args: KernelArgs) => TI | TI[];

export const BACKEND = "native";
/** A kernel only the native backend has: dx = x > 0 ? dy : 0. */
export const RELU_GRAD = "TsfastReluGrad";
/** A float32 mask, 1 where a == b (broadcast) and 0 elsewhere: tfjs's `cast(equal(a, b), "float32")` in one native pass. */
export const EQUAL_MASK = "TsfastEqualMask";

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function f32(b: Backend, t: TI): Float32Array {
  return b.data.get(t.dataId).values as Float32Array;
}

function isF32(b: Backend, ...ts: (TI | undefined)[]): boolean {
  for (const t of ts) {
    if (!t || t.dtype !== "float32") return false;
    const v = b.data.get(t.dataId).values;
    if (!(v instanceof Float32Array)) return false; // complex tensors keep their parts elsewhere
  }
  return true;
}

/** An output array from the backend's recycling pool: contents are garbage until written. */
function alloc(b: Backend, n: number): Float32Array {
  const nb = b as Partial<NativeBackend>;
  return nb.alloc ? nb.alloc(n) : new Float32Array(n);
}

function output(b: Backend, shape: number[], values: Float32Array): TI {
  return b.makeTensorInfo(shape, "float32", values);
}

/** The parameter block shared with native/src/conv.cc (struct ConvP), or undefined where oneDNN cannot take the padding. */
export function convParams(ci: tf.backend_util.Conv2DInfo, groups: number): Int32Array | undefined {
  const keffH = (ci.filterHeight - 1) * ci.dilationHeight + 1;
  const keffW = (ci.filterWidth - 1) * ci.dilationWidth + 1;
  const pt = ci.padInfo.top, pl = ci.padInfo.left;
  const pb = Math.max(0, (ci.outHeight - 1) * ci.strideHeight + keffH - ci.inHeight - pt);
  const pr = Math.max(0, (ci.outWidth - 1) * ci.strideWidth + keffW - ci.inWidth - pl);
  // oneDNN requires out == floor((in + pads - keff) / stride) + 1.
  const okH = Math.floor((ci.inHeight + pt + pb - keffH) / ci.strideHeight) + 1 === ci.outHeight;
  const okW = Math.floor((ci.inWidth + pl + pr - keffW) / ci.strideWidth) + 1 === ci.outWidth;
  if (!okH || !okW || pt < 0 || pl < 0 || ci.outHeight <= 0 || ci.outWidth <= 0 || ci.batchSize === 0) return undefined;
  return Int32Array.from([
    ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.filterHeight, ci.filterWidth, ci.outChannels,
    ci.outHeight, ci.outWidth, ci.strideHeight, ci.strideWidth, ci.dilationHeight, ci.dilationWidth,
    pt, pl, pb, pr, groups,
  ]);
}
const nhwc = (attrs: Attrs | undefined) => attrs?.["dataFormat"] === undefined || attrs["dataFormat"] === "NHWC";
type Pad = "same" | "valid" | number | tf.backend_util.ExplicitPadding;
/** tfjs's Conv2DInfo of a convolution kernel's inputs and attributes (strides, pad, dilations...). */
export const convInfo = (xShape: number[], fShape: number[], a: Attrs, depthwise: boolean) =>
  tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], fShape as [number, number, number, number],
    a["strides"] as [number, number], (a["dilations"] ?? 1) as [number, number], a["pad"] as Pad,
    a["dimRoundingMode"] as "floor" | "round" | "ceil" | undefined, depthwise,
  );

/** Build the kernel table; `cpu(name)` is the cpu backend's kernel of that name (the fallback). */
export function nativeKernels(addon: NativeAddon, cpu: (name: string) => Kernel): Record<string, Kernel> {
  const k: Record<string, Kernel> = {};

  // ---- convolutions ---------------------------------------------------------------------------
  const ACT: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, elu: 4 };

  function conv(name: string, depthwise: boolean): Kernel {
    return (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs;
      const a = args.attrs ?? {};
      const b = args.backend;
      const act = ACT[(a["activation"] as string | undefined) ?? "linear"];
      if (!x || !filter || x.shape.length !== 4 || !nhwc(a) || !isF32(b, x, filter) || act === undefined ||
          preluActivationWeights || (bias && !isF32(b, bias))) {
        return cpu(name)(args);
      }
      const ci = convInfo(x.shape, filter.shape, a, depthwise);
      const p = convParams(ci, depthwise ? ci.inChannels : 1);
      if (!p || (bias && sizeOf(bias.shape) !== ci.outChannels)) return cpu(name)(args);
      const y = alloc(b, sizeOf(ci.outShape));
      const w = f32(b, filter);
      addon.conv2d(f32(b, x), w, bias ? f32(b, bias) : null, y, p, act, weightToken(w));
      return output(b, ci.outShape, y);
    };
  }
  k["Conv2D"] = conv("Conv2D", false);
  k["FusedConv2D"] = conv("FusedConv2D", false);
  k["DepthwiseConv2dNative"] = conv("DepthwiseConv2dNative", true);
  k["FusedDepthwiseConv2D"] = conv("FusedDepthwiseConv2D", true);

  function convBackpropInput(name: string, depthwise: boolean): Kernel {
    return (args) => {
      const { dy, filter } = args.inputs;
      const a = args.attrs ?? {};
      const b = args.backend;
      const inShape = a["inputShape"] as number[];
      if (!dy || !filter || !nhwc(a) || !isF32(b, dy, filter)) return cpu(name)(args);
      const ci = convInfo(inShape, filter.shape, a, depthwise);
      const p = convParams(ci, depthwise ? ci.inChannels : 1);
      // dy must have the forward output's shape (conv2dTranspose can be asked otherwise).
      if (!p || !sameShape(dy.shape, ci.outShape)) return cpu(name)(args);
      const dx = alloc(b, sizeOf(inShape));
      const w = f32(b, filter);
      addon.conv2dBackpropInput(f32(b, dy), w, dx, p, weightToken(w));
      return output(b, inShape, dx);
    };
  }
  k["Conv2DBackpropInput"] = convBackpropInput("Conv2DBackpropInput", false);
  k["DepthwiseConv2dNativeBackpropInput"] = convBackpropInput("DepthwiseConv2dNativeBackpropInput", true);

  function convBackpropFilter(name: string, depthwise: boolean): Kernel {
    return (args) => {
      const { x, dy } = args.inputs;
      const a = args.attrs ?? {};
      const b = args.backend;
      const fShape = a["filterShape"] as number[];
      if (!x || !dy || !nhwc(a) || !isF32(b, x, dy)) return cpu(name)(args);
      const ci = convInfo(x.shape, fShape, a, depthwise);
      const p = convParams(ci, depthwise ? ci.inChannels : 1);
      if (!p || !sameShape(dy.shape, ci.outShape)) return cpu(name)(args);
      const dw = alloc(b, sizeOf(fShape));
      addon.conv2dBackpropFilter(f32(b, x), f32(b, dy), dw, p);
      return output(b, fShape, dw);
    };
  }
  k["Conv2DBackpropFilter"] = convBackpropFilter("Conv2DBackpropFilter", false);
  k["DepthwiseConv2dNativeBackpropFilter"] = convBackpropFilter("DepthwiseConv2dNativeBackpropFilter", true);

  // ---- pooling ---------------------------------------------------------------------------------
  function poolParams(xShape: number[], a: Attrs, mode: 0 | 1 | 2) {
    const pi = tf.backend_util.computePool2DInfo(
      xShape as [number, number, number, number], a["filterSize"] as [number, number],
      a["strides"] as [number, number], 1, a["pad"] as Pad, a["dimRoundingMode"] as "floor" | "round" | "ceil" | undefined,
    );
    const p = convParams(pi, 1);
    if (!p) return undefined;
    // [N,H,W,C, KH,KW, OH,OW, sh,sw, pt,pl,pb,pr, isMax] as in struct PoolP.
    const params = Int32Array.from([
      pi.batchSize, pi.inHeight, pi.inWidth, pi.inChannels, pi.filterHeight, pi.filterWidth, pi.outHeight,
      pi.outWidth, pi.strideHeight, pi.strideWidth, p[13]!, p[14]!, p[15]!, p[16]!, mode,
    ]);
    // A window lying wholly in padding has no defined value in oneDNN: let the cpu kernel decide.
    if (p[15]! >= pi.filterHeight || p[16]! >= pi.filterWidth || p[13]! >= pi.filterHeight || p[14]! >= pi.filterWidth) return undefined;
    return { pi, params };
  }
  function pool(name: string, isMax: boolean): Kernel {
    return (args) => {
      const { x } = args.inputs;
      const b = args.backend;
      if (!x || x.shape.length !== 4 || !isF32(b, x)) return cpu(name)(args);
      const pp = poolParams(x.shape, args.attrs ?? {}, isMax ? 1 : 0);
      if (!pp) return cpu(name)(args);
      const y = alloc(b, sizeOf(pp.pi.outShape));
      addon.pool(f32(b, x), y, pp.params);
      return output(b, pp.pi.outShape, y);
    };
  }
  k["MaxPool"] = pool("MaxPool", true);
  k["AvgPool"] = pool("AvgPool", false);
  function poolGrad(name: string, isMax: boolean): Kernel {
    return (args) => {
      const { dy, input } = args.inputs;
      const b = args.backend;
      if (!dy || !input || input.shape.length !== 4 || !isF32(b, dy, input)) return cpu(name)(args);
      // tfjs's AvgPoolGrad spreads each gradient over the full window, padding included.
      const pp = poolParams(input.shape, args.attrs ?? {}, isMax ? 1 : 2);
      if (!pp) return cpu(name)(args);
      const dx = alloc(b, sizeOf(input.shape));
      addon.poolGrad(f32(b, dy), f32(b, input), dx, pp.params);
      return output(b, input.shape, dx);
    };
  }
  k["MaxPoolGrad"] = poolGrad("MaxPoolGrad", true);
  k["AvgPoolGrad"] = poolGrad("AvgPoolGrad", false);

  // ---- matmul ----------------------------------------------------------------------------------
  function matmulCore(b: Backend, A: TI, B: TI, tA: boolean, tB: boolean): TI | undefined {
    const ra = A.shape.length, rb = B.shape.length;
    if (ra < 2 || rb < 2) return undefined;
    const M = tA ? A.shape[ra - 1]! : A.shape[ra - 2]!;
    const K = tA ? A.shape[ra - 2]! : A.shape[ra - 1]!;
    const K2 = tB ? B.shape[rb - 1]! : B.shape[rb - 2]!;
    const N = tB ? B.shape[rb - 2]! : B.shape[rb - 1]!;
    if (K !== K2) return undefined;
    const batchA = A.shape.slice(0, -2), batchB = B.shape.slice(0, -2);
    const bA = sizeOf(batchA), bB = sizeOf(batchB);
    let outBatch: number[];
    if (bA === bB && batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i])) outBatch = batchA;
    else if (bA === 1 && batchA.length <= batchB.length) outBatch = batchB;
    else if (bB === 1 && batchB.length <= batchA.length) outBatch = batchA;
    else return undefined;
    const shape = [...outBatch, M, N];
    const c = alloc(b, sizeOf(shape));
    if (K === 0) c.fill(0);
    if (c.length > 0 && K > 0) addon.matmul(f32(b, A), f32(b, B), c, Int32Array.from([bA, bB, M, N, K, tA ? 1 : 0, tB ? 1 : 0]));
    return output(b, shape, c);
  }
  k["BatchMatMul"] = (args) => {
    const { a, b: bt } = args.inputs;
    const b = args.backend;
    if (!a || !bt || !isF32(b, a, bt)) return cpu("BatchMatMul")(args);
    const at = args.attrs ?? {};
    return matmulCore(b, a, bt, !!at["transposeA"], !!at["transposeB"]) ?? cpu("BatchMatMul")(args);
  };
  k["_FusedMatMul"] = (args) => {
    const { a, b: bt, bias, preluActivationWeights } = args.inputs;
    const b = args.backend;
    const at = args.attrs ?? {};
    const actName = (at["activation"] as string | undefined) ?? "linear";
    const act = UNARY_OF_ACT[actName];
    if (!a || !bt || !isF32(b, a, bt) || preluActivationWeights || act === undefined || (bias && !isF32(b, bias))) {
      return cpu("_FusedMatMul")(args);
    }
    const mm = matmulCore(b, a, bt, !!at["transposeA"], !!at["transposeB"]);
    if (!mm) return cpu("_FusedMatMul")(args);
    let out = mm;
    if (bias) {
      const withBias = binary(b, BIN.Add, out, bias);
      if (!withBias) {
        b.disposeIntermediateTensorInfo(out);
        return cpu("_FusedMatMul")(args);
      }
      b.disposeIntermediateTensorInfo(out);
      out = withBias;
    }
    if (act >= 0) {
      const v = f32(b, out);
      addon.unary(act, v, v, (at["leakyreluAlpha"] as number | undefined) ?? 0.2);
    }
    return out;
  };

  // ---- elementwise -----------------------------------------------------------------------------
  function binary(b: Backend, op: number, A: TI, B: TI): TI | undefined {
    const shape = tf.backend_util.assertAndGetBroadcastShape(A.shape, B.shape);
    const r = shape.length;
    const pad = (s: number[]) => Int32Array.from([...new Array<number>(r - s.length).fill(1), ...s]);
    const out = alloc(b, sizeOf(shape));
    if (out.length > 0) addon.binary(op, f32(b, A), f32(b, B), out, Int32Array.from(shape.length ? shape : [1]), r ? pad(A.shape) : Int32Array.from([1]), r ? pad(B.shape) : Int32Array.from([1]));
    return output(b, shape, out);
  }
  for (const [name, op] of Object.entries(BIN)) {
    k[name] = (args) => {
      const { a, b: bt } = args.inputs;
      const b = args.backend;
      if (!a || !bt || !isF32(b, a, bt)) return cpu(name)(args);
      return binary(b, op, a, bt) ?? cpu(name)(args);
    };
  }
  k["AddN"] = (args) => {
    const b = args.backend;
    const ts = Object.values(args.inputs) as TI[];
    const first = ts[0];
    if (!first || !isF32(b, ...ts) || ts.some((t) => t.shape.length !== first.shape.length || t.shape.some((d, i) => d !== first.shape[i]))) {
      return cpu("AddN")(args);
    }
    const out = alloc(b, sizeOf(first.shape));
    out.set(f32(b, first));
    const s = Int32Array.from(first.shape.length ? first.shape : [1]);
    for (const t of ts.slice(1)) addon.binary(BIN.Add, out, f32(b, t), out, s, s, s);
    return output(b, first.shape, out);
  };
  for (const [name, op] of Object.entries(UNARY)) {
    k[name] = (args) => {
      const { x } = args.inputs;
      const b = args.backend;
      if (!x || !isF32(b, x)) return cpu(name)(args);
      const out = alloc(b, sizeOf(x.shape));
      addon.unary(op, f32(b, x), out, (args.attrs?.["alpha"] as number | undefined) ?? 0);
      return output(b, x.shape, out);
    };
  }

  // Relu's gradient in one pass; reached through the gradient registered in native.ts.
  k[RELU_GRAD] = (args) => {
    const { dy, x } = args.inputs;
    const b = args.backend;
    if (!dy || !x || !isF32(b, dy, x) || dy.shape.join() !== x.shape.join()) {
      throw new Error(`${RELU_GRAD} needs two float32 tensors of one shape`);
    }
    const dx = alloc(b, sizeOf(x.shape));
    addon.reluGrad(f32(b, dy), f32(b, x), dx);
    return output(b, x.shape, dx);
  };

  k[EQUAL_MASK] = (args) => {
    const { a, b: bt } = args.inputs;
    const b = args.backend;
    if (!a || !bt || !isF32(b, a, bt)) throw new Error(`${EQUAL_MASK} needs two float32 tensors`);
    return binary(b, EQMASK, a, bt)!;
  };

  // ---- reductions ------------------------------------------------------------------------------
  function reduction(name: string, op: number, axisAttr: string): Kernel {
    return (args) => {
      const { x } = args.inputs;
      const b = args.backend;
      const at = args.attrs ?? {};
      if (!x || !isF32(b, x) || sizeOf(x.shape) === 0) return cpu(name)(args);
      const axes = tf.util.parseAxisParam(at[axisAttr] as number | number[], x.shape).sort((p, q) => p - q);
      const unique = axes.filter((v, i) => i === 0 || v !== axes[i - 1]);
      const lo = unique[0], hi = unique[unique.length - 1];
      if (lo === undefined || hi === undefined || hi - lo + 1 !== unique.length) return cpu(name)(args);
      const outer = sizeOf(x.shape.slice(0, lo)), red = sizeOf(x.shape.slice(lo, hi + 1)), inner = sizeOf(x.shape.slice(hi + 1));
      const shape = at["keepDims"]
        ? x.shape.map((d, i) => (i >= lo && i <= hi ? 1 : d))
        : x.shape.filter((_, i) => i < lo || i > hi);
      const out = alloc(b, outer * inner);
      addon.reduce(op, f32(b, x), out, outer, red, inner);
      return output(b, shape, out);
    };
  }
  k["Sum"] = reduction("Sum", 0, "axis");
  k["Mean"] = reduction("Mean", 1, "axis");
  k["Max"] = reduction("Max", 2, "reductionIndices");
  k["Min"] = reduction("Min", 3, "axis");
  k["Prod"] = reduction("Prod", 4, "axis");

  k["Softmax"] = (args) => {
    const { logits } = args.inputs;
    const b = args.backend;
    const dim = args.attrs?.["dim"] as number;
    if (!logits || !isF32(b, logits) || logits.shape.length === 0 || (dim !== -1 && dim !== logits.shape.length - 1)) {
      return cpu("Softmax")(args);
    }
    const cols = logits.shape[logits.shape.length - 1]!;
    const out = alloc(b, sizeOf(logits.shape));
    if (out.length) addon.softmax(f32(b, logits), out, out.length / cols, cols);
    return output(b, logits.shape, out);
  };

  // ---- layout ----------------------------------------------------------------------------------
  k["Transpose"] = (args) => {
    const { x } = args.inputs;
    const b = args.backend;
    const perm = args.attrs?.["perm"] as number[];
    // the identity (gather's gradient transposes a whole embedding table by it): share the storage, as Reshape does
    if (x && perm.every((p, i) => p === i)) {
      b.incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }
    if (!x || !isF32(b, x) || x.shape.length === 0 || sizeOf(x.shape) === 0) return cpu("Transpose")(args);
    const shape = perm.map((p) => x.shape[p]!);
    const out = alloc(b, sizeOf(shape));
    addon.transpose(f32(b, x), out, Int32Array.from(x.shape), Int32Array.from(perm));
    return output(b, shape, out);
  };
  k["Slice"] = (args) => {
    const { x } = args.inputs;
    const b = args.backend;
    if (!x || !isF32(b, x) || x.shape.length === 0) return cpu("Slice")(args);
    const [begin, size] = tf.slice_util.parseSliceParams(x, args.attrs?.["begin"] as number[], args.attrs?.["size"] as number[]);
    if (!begin || !size) return cpu("Slice")(args);
    tf.slice_util.assertParamsValid(x, begin, size);
    if (sizeOf(size) === 0 || isContiguousSlice(x.shape, begin, size)) return cpu("Slice")(args);
    const out = alloc(b, sizeOf(size));
    addon.slicePad(f32(b, x), out, Int32Array.from(x.shape), Int32Array.from(size), Int32Array.from(begin), 0);
    return output(b, size, out);
  };
  // The gradient of a channel concat (U-Net skips): one native slice per part; tfjs's JS SplitV
  // walks element by element (2.6 s of a 5.4 s U-Net step at 64 px before this).
  k["SplitV"] = (args) => {
    const { x } = args.inputs;
    const b = args.backend;
    if (!x || !isF32(b, x) || x.shape.length === 0) return cpu("SplitV")(args);
    const axis = tf.util.parseAxisParam(args.attrs?.["axis"] as number, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x, args.attrs?.["numOrSizeSplits"] as number[] | number, axis);
    const begin = x.shape.map(() => 0);
    return sizes.map((n) => {
      const size = x.shape.slice();
      size[axis] = n;
      const part = k["Slice"]!({ inputs: { x }, backend: b, attrs: { begin: begin.slice(), size } }) as TI;
      begin[axis]! += n;
      return part;
    });
  };
  k["Tile"] = (args) => {
    const { x } = args.inputs;
    const b = args.backend;
    const reps = args.attrs?.["reps"] as number[];
    if (!x || !isF32(b, x) || x.shape.length === 0 || sizeOf(x.shape) === 0) return cpu("Tile")(args);
    const shape = x.shape.map((d, i) => d * reps[i]!);
    const out = alloc(b, sizeOf(shape));
    if (out.length) addon.tile(f32(b, x), out, Int32Array.from(x.shape), Int32Array.from(shape));
    return output(b, shape, out);
  };
  k["PadV2"] = (args) => {
    const { x } = args.inputs;
    const b = args.backend;
    const paddings = args.attrs?.["paddings"] as [number, number][];
    if (!x || !isF32(b, x) || x.shape.length === 0 || sizeOf(x.shape) === 0) return cpu("PadV2")(args);
    const shape = x.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
    const out = alloc(b, sizeOf(shape));
    addon.slicePad(f32(b, x), out, Int32Array.from(x.shape), Int32Array.from(shape), Int32Array.from(paddings.map((p) => -p[0])),
      (args.attrs?.["constantValue"] as number | undefined) ?? 0);
    return output(b, shape, out);
  };

  // ---- batch norm (inference form; training builds it from moments + this) ---------------------
  k["FusedBatchNorm"] = (args) => {
    const { x, mean, variance, offset, scale } = args.inputs;
    const b = args.backend;
    if (!x || !mean || !variance || !isF32(b, x, mean, variance) || (offset && !isF32(b, offset)) || (scale && !isF32(b, scale)) || x.shape.length === 0) {
      return cpu("FusedBatchNorm")(args);
    }
    const C = x.shape[x.shape.length - 1]!;
    const perC = (t: TI | undefined, dflt: number): Float32Array | undefined => {
      if (!t) return new Float32Array(C).fill(dflt);
      const v = f32(b, t);
      if (v.length === C) return v;
      if (v.length === 1) return new Float32Array(C).fill(v[0]!);
      return undefined;
    };
    const m = perC(mean, 0), vr = perC(variance, 1), o = perC(offset, 0), s = perC(scale, 1);
    if (!m || !vr || !o || !s || C === 0) return cpu("FusedBatchNorm")(args);
    const eps = (args.attrs?.["varianceEpsilon"] as number | undefined) ?? 0.001;
    // 1. a = scale / sqrt(var + eps)   2. c = offset - mean * a   3. y = x * a + c
    const a = new Float32Array(C), c = new Float32Array(C);
    for (let i = 0; i < C; i++) {
      a[i] = s[i]! / Math.sqrt(vr[i]! + eps);
      c[i] = o[i]! - m[i]! * a[i]!;
    }
    const out = alloc(b, sizeOf(x.shape));
    addon.scaleShift(f32(b, x), out, a, c, C);
    return output(b, x.shape, out);
  };

  // ---- embeddings (gather and its gradient): plain loops, see embedding.ts ---------------------
  Object.assign(k, embeddingKernels(cpu));

  // ---- unstack (tf.unstack, and tf.stack's gradient) -------------------------------------------
  // The cpu kernel slices and reshapes once per output through the generic element-by-element slice
  // (200 ms for [64, 16, 256] along axis 1); here one strided copy per output:
  //   out_i[o, j] = x[o, i, j]   with o over the axes before `axis`, j over those after.
  k["Unpack"] = (args) => {
    const { value } = args.inputs;
    const b = args.backend;
    if (!value || !isF32(b, value) || value.shape.length === 0) return cpu("Unpack")(args);
    const rank = value.shape.length;
    let axis = (args.attrs?.["axis"] as number | undefined) ?? 0;
    if (axis < 0) axis += rank;
    const n = value.shape[axis]!;
    const outer = sizeOf(value.shape.slice(0, axis));
    const inner = sizeOf(value.shape.slice(axis + 1));
    const outShape = value.shape.filter((_, d) => d !== axis);
    const xs = f32(b, value);
    const res: TI[] = [];
    for (let i = 0; i < n; i++) {
      const out = alloc(b, outer * inner);
      for (let o = 0; o < outer; o++) out.set(xs.subarray((o * n + i) * inner, (o * n + i + 1) * inner), o * inner);
      res.push(output(b, outShape, out));
    }
    return res;
  };

  return k;
}

/** A slice that is one contiguous run of memory (the cpu kernel shares it without a copy). */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function isContiguousSlice(shape: number[], begin: number[], size: number[]): boolean {
  // Past the first axis whose size is not 1, every later axis must be taken whole.
  let i = 0;
  while (i < shape.length && size[i] === 1) i++;
  for (let j = i + 1; j < shape.length; j++) if (begin[j] !== 0 || size[j] !== shape[j]) return false;
  return true;
}

/** Binary kernels and their op codes in native/src/elementwise.cc (enum BinOp). */
const BIN = {
  Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6, Pow: 7, Mod: 9,
} as const satisfies Record<string, number>;
/** enum BinOp's EQMASK: 1 where a == b, else 0 (no tfjs kernel of its own: see EQUAL_MASK). */
const EQMASK = 10;

/** Unary kernels and their op codes (enum UnOp); `alpha` comes from the kernel's attrs. */
const UNARY = {
  Relu: 0, Relu6: 1, Neg: 2, Exp: 3, Log: 4, Sqrt: 5, Rsqrt: 6, Square: 7, Abs: 8, Sigmoid: 9, Tanh: 10, Step: 11,
  Reciprocal: 12, Elu: 14, Softplus: 15, LeakyRelu: 16, Log1p: 17, Expm1: 18, Sin: 19, Cos: 20, Floor: 21, Ceil: 22,
  Sign: 24,
} as const satisfies Record<string, number>;

/** Fused-matmul activations as unary op codes (-1 = none). */
const UNARY_OF_ACT: Record<string, number> = { linear: -1, relu: 0, relu6: 1, sigmoid: 9, elu: 14, leakyrelu: 16 };
