/**
 * Gradients of a 2-D convolution for the wasm backend, both written as ONE forward XNNPACK
 * convolution (the fast path of the backend, ~20 GFLOP/s on one thread) plus cheap re-layouts.
 *
 * Forward (NHWC, filter HWIO, stride s, padding top/left p):
 *   y[n, oh, ow, co] = Σ_{i, j, ci} x[n, oh·s + i − p, ow·s + j − p, ci] · w[i, j, ci, co]
 */
import * as tf from "../tf";
import { asWasm, callKernel, f32, free, KernelArgs, transpose, xnnConv2d } from "./backend";

interface ConvGradAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/**
 * dL/dw as a convolution where the batch plays the role of the channels:
 *   1. x' = x transposed to [ci, h, w, n]        (ci becomes the "batch", n the "channels")
 *   2. f' = dy transposed to [oh, ow, n, co]      (the output gradient becomes the "filter")
 *   3. g  = conv(x', f', stride 1, dilation s)    → [ci, kh, kw, co]
 *      because g[ci, i, j, co] = Σ_{oh, ow, n} x'[ci, i + oh·s − p, j + ow·s − p, n] · f'[oh, ow, n, co]
 *   4. dw = g transposed to [kh, kw, ci, co]
 * Rows of x the forward pass never read (stride leftovers) are cropped so that g is exactly kh × kw.
 */
export function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const { backend } = args;
  const b = asWasm(backend);
  const attrs = args.attrs as unknown as ConvGradAttrs & { filterShape: [number, number, number, number] };
  let x = args.inputs["x"]!;
  let dy = args.inputs["dy"]!;
  const owned: tf.TensorInfo[] = [];
  if (attrs.dataFormat === "NCHW") {
    x = transpose(backend, x, [0, 2, 3, 1]);
    dy = transpose(backend, dy, [0, 2, 3, 1]);
    owned.push(x, dy);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Rows/cols of x that the forward pass touched: [0, needH) — crop the rest, pad the shortfall.
  const needH = (oh - 1) * sh + kh - pt;
  const needW = (ow - 1) * sw + kw - pl;
  const hc = Math.min(h, needH);
  const wc = Math.min(w, needW);
  let xs = x;
  if (hc < h || wc < w) {
    xs = callKernel(backend, "Slice", { x }, { begin: [0, 0, 0, 0], size: [n, hc, wc, ci] });
    owned.push(xs);
  }
  const xt = transpose(backend, xs, [3, 1, 2, 0]);
  const ft = transpose(backend, dy, [1, 2, 0, 3]);
  const g = xnnConv2d(backend, {
    x: xt,
    filter: ft,
    pad: { top: pt, left: pl, bottom: needH - hc, right: needW - wc },
    stride: [1, 1],
    dilation: [sh, sw],
  });
  free(b, xt, ft, ...owned);
  const dw = transpose(backend, g, [1, 2, 0, 3]);
  free(b, g);
  return dw;
}

/** Insert s−1 zero rows/cols between the rows/cols of dy, keeping only the first `hz` × `wz`. */
function spreadOut(backend: unknown, dy: tf.TensorInfo, sh: number, sw: number, hz: number, wz: number): tf.TensorInfo {
  const b = asWasm(backend);
  const [n, oh, ow, c] = dy.shape as [number, number, number, number];
  const out = b.makeOutput([n, hz, wz, c], "float32");
  const src = f32(b, dy);
  const dst = f32(b, out);
  dst.fill(0);
  for (let bi = 0; bi < n; bi++) {
    for (let r = 0; r < oh && r * sh < hz; r++) {
      for (let q = 0; q < ow && q * sw < wz; q++) {
        const from = ((bi * oh + r) * ow + q) * c;
        dst.set(src.subarray(from, from + c), ((bi * hz + r * sh) * wz + q * sw) * c);
      }
    }
  }
  return out;
}

let stockBackpropInput: tf.KernelConfig | undefined;
const stockSetUp = new WeakSet<object>();

/** Keep the backend's own (naive loop) kernel for the odd padding cases the fast path does not cover. */
export function rememberStockBackpropInput(): void {
  if (stockBackpropInput) return;
  const k = tf.getKernel("Conv2DBackpropInput", "wasm");
  if (k && k.kernelFunc !== conv2DBackpropInput) stockBackpropInput = k;
}

function stock(args: KernelArgs): tf.TensorInfo {
  const k = stockBackpropInput;
  if (!k) throw new Error("Conv2DBackpropInput: this padding needs the stock wasm kernel, which is not available");
  if (k.setupFunc && !stockSetUp.has(args.backend as object)) {
    k.setupFunc(args.backend as tf.KernelBackend);
    stockSetUp.add(args.backend as object);
  }
  return k.kernelFunc(args as never) as tf.TensorInfo;
}

/**
 * dL/dx as a stride-1 convolution of the (zero-spread) output gradient with the filter rotated by
 * 180° and its in/out channels swapped:
 *   1. dy' = dy with s−1 zeros between rows/cols (skipped when s = 1)
 *   2. w'[i, j, co, ci] = w[kh−1−i, kw−1−j, ci, co]
 *   3. dx = conv(dy', w', stride 1, padding top kh−1−p, bottom chosen so the output is h × w)
 */
export function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  const { backend } = args;
  const b = asWasm(backend);
  const attrs = args.attrs as unknown as ConvGradAttrs & { inputShape: [number, number, number, number] };
  const dy = args.inputs["dy"]!;
  const filter = args.inputs["filter"]!;
  if (attrs.dataFormat === "NCHW") return stock(args);
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { inHeight: h, inWidth: w, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { outHeight: oh, outWidth: ow } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  if (pt > kh - 1 || pl > kw - 1) return stock(args);
  // dy' only needs the rows that land on x: padded row index < h + pt.
  const hz = Math.min((oh - 1) * sh + 1, h + pt);
  const wz = Math.min((ow - 1) * sw + 1, w + pl);
  const spread = sh > 1 || sw > 1 || hz < oh || wz < ow;
  const dyz = spread ? spreadOut(backend, dy, sh, sw, hz, wz) : dy;
  const swapped = transpose(backend, filter, [0, 1, 3, 2]);
  const rotated = callKernel(backend, "Reverse", { x: swapped }, { dims: [0, 1] });
  free(b, swapped);
  const dx = xnnConv2d(backend, {
    x: dyz,
    filter: rotated,
    pad: { top: kh - 1 - pt, left: kw - 1 - pl, bottom: h + pt - hz, right: w + pl - wz },
    stride: [1, 1],
    dilation: [1, 1],
  });
  free(b, rotated);
  if (spread) free(b, dyz);
  return dx;
}
