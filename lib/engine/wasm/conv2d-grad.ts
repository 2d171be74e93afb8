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
 * dy as the convolution geometry expects it: tfjs's reference kernels read only the first
 * outHeight × outWidth positions of a larger dy (conv2dTranspose allows it), so crop to match.
 */
function fitDy(backend: unknown, dy: tf.TensorInfo, oh: number, ow: number, kernel: string): tf.TensorInfo | undefined {
  const [n, h, w, c] = dy.shape as [number, number, number, number];
  if (h === oh && w === ow) return undefined;
  if (h < oh || w < ow) {
    throw new Error(`${kernel}: dy is ${h}×${w} but the convolution produces ${oh}×${ow}; check the strides and padding`);
  }
  return callKernel(backend, "Slice", { x: dy }, { begin: [0, 0, 0, 0], size: [n, oh, ow, c] });
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
  const fitted = fitDy(backend, dy, oh, ow, "Conv2DBackpropFilter");
  if (fitted) {
    dy = fitted;
    owned.push(fitted);
  }
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

/**
 * The sub-filter of phase (rh, rw) for a stride-s transposed convolution, flipped for correlation:
 *   f[a, b, co, ci] = wt[rh + s·(th−1−a), rw + s·(tw−1−b), co, ci]   with wt = w as [kh, kw, co, ci]
 * Built with block copies of co·ci floats (tfjs-wasm's `Reverse` kernel is ~50x slower than this).
 */
function phaseFilter(
  backend: unknown,
  wt: tf.TensorInfo,
  rh: number,
  rw: number,
  sh: number,
  sw: number,
  th: number,
  tw: number,
): tf.TensorInfo {
  const b = asWasm(backend);
  const [, kw, co, ci] = wt.shape as [number, number, number, number];
  const block = co * ci;
  const out = b.makeOutput([th, tw, co, ci], "float32");
  const src = f32(b, wt);
  const dst = f32(b, out);
  for (let a = 0; a < th; a++) {
    for (let c = 0; c < tw; c++) {
      const from = ((rh + sh * (th - 1 - a)) * kw + (rw + sw * (tw - 1 - c))) * block;
      dst.set(src.subarray(from, from + block), (a * tw + c) * block);
    }
  }
  return out;
}

/** Insert s−1 zeros between the rows/cols of dy, keeping the first `hz` × `wz` positions. */
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

/** Copy the phase result p[n, qh, qw, c] to dx[n, qh·sh + oh0, qw·sw + ow0, c] where it lands inside dx. */
function scatterPhase(backend: unknown, p: tf.TensorInfo, dx: tf.TensorInfo, sh: number, sw: number, oh0: number, ow0: number): void {
  const b = asWasm(backend);
  const [n, qh, qw, c] = p.shape as [number, number, number, number];
  const [, h, w] = dx.shape as [number, number, number, number];
  const src = f32(b, p);
  const dst = f32(b, dx);
  for (let bi = 0; bi < n; bi++) {
    for (let i = 0; i < qh; i++) {
      const r = i * sh + oh0;
      if (r < 0 || r >= h) continue;
      for (let j = 0; j < qw; j++) {
        const q = j * sw + ow0;
        if (q < 0 || q >= w) continue;
        const from = ((bi * qh + i) * qw + j) * c;
        dst.set(src.subarray(from, from + c), ((bi * h + r) * w + q) * c);
      }
    }
  }
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
 * dL/dx as stride-1 XNNPACK convolutions of dy, one per output phase (polyphase transposed
 * convolution: no multiplications by inserted zeros).
 *   dx[n, h, w, ci] = Σ_{oh·s + i − p = h} dy[n, oh, ow, co] · w[i, j, ci, co]
 * For the rows h with (h + p) mod s = r, only taps i = r + s·t contribute, from oh = (h + p − i)/s:
 *   1. wt = w transposed to [kh, kw, co, ci]
 *   2. for each phase (rh, rw): f = taps rh + s·t (flipped, `phaseFilter`), th = ⌈(kh − rh)/s⌉ taps
 *   3. out = conv(dy, f, stride 1, padding th−1 on both sides); out[q] is dx at h = q·s + rh − p
 *   4. scatter out into dx (rows outside [0, h) are dropped); phases with no taps stay zero
 */
export function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  const { backend } = args;
  const b = asWasm(backend);
  const attrs = args.attrs as unknown as ConvGradAttrs & { inputShape: [number, number, number, number] };
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
  const fitted = fitDy(backend, args.inputs["dy"]!, info.outHeight, info.outWidth, "Conv2DBackpropInput");
  const dy = fitted ?? args.inputs["dy"]!;
  const dx = backpropInputNHWC(backend, dy, filter, attrs.inputShape, info);
  if (fitted) free(b, fitted);
  return dx;
}

function backpropInputNHWC(
  backend: unknown,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  inputShape: [number, number, number, number],
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const wt = transpose(backend, filter, [0, 1, 3, 2]);
  const dx = transposedConv(backend, dy, wt, inputShape, info, false);
  free(asWasm(backend), wt);
  return dx;
}

/**
 * The input gradient of a (depthwise) convolution from `wt`, the filter laid out `[kh, kw, a, b]`
 * so that a phase filter `[th, tw, a, b]` convolves dy (a = dy's channels for a full convolution,
 * a = channels and b = 1 for a depthwise one with multiplier 1).
 */
export function transposedConv(
  backend: unknown,
  dy: tf.TensorInfo,
  wt: tf.TensorInfo,
  inputShape: [number, number, number, number],
  info: tf.backend_util.Conv2DInfo,
  depthwise: boolean,
): tf.TensorInfo {
  const b = asWasm(backend);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const [, h, w] = inputShape;
  const bottom = h + pt - info.outHeight;
  const right = w + pl - info.outWidth;
  if (sh === 1 && sw === 1 && pt <= kh - 1 && pl <= kw - 1 && bottom >= 0 && right >= 0) {
    // Stride 1: one convolution whose padding makes the output exactly h × w (no scatter).
    const f = phaseFilter(backend, wt, 0, 0, 1, 1, kh, kw);
    const direct = xnnConv2d(backend, {
      x: dy,
      filter: f,
      pad: { top: kh - 1 - pt, left: kw - 1 - pl, bottom, right },
      stride: [1, 1],
      dilation: [1, 1],
      depthwise,
    });
    free(b, f);
    return direct;
  }
  if (depthwise && pt <= kh - 1 && pl <= kw - 1) {
    // Depthwise phase filters (2×2, 2×1, 1×1 taps for a 3×3 stride-2 filter) miss XNNPACK's
    // depthwise micro-kernels and fall back to a slow grouped GEMM; spreading dy with zeros and
    // running ONE full-size depthwise convolution is several times faster despite the zeros.
    const hz = Math.min((info.outHeight - 1) * sh + 1, h + pt);
    const wz = Math.min((info.outWidth - 1) * sw + 1, w + pl);
    const dyz = spreadOut(backend, dy, sh, sw, hz, wz);
    const f = phaseFilter(backend, wt, 0, 0, 1, 1, kh, kw);
    const out = xnnConv2d(backend, {
      x: dyz,
      filter: f,
      pad: { top: kh - 1 - pt, left: kw - 1 - pl, bottom: h + pt - hz, right: w + pl - wz },
      stride: [1, 1],
      dilation: [1, 1],
      depthwise,
    });
    free(b, f, dyz);
    return out;
  }
  const dx = b.makeOutput(inputShape, "float32");
  f32(b, dx).fill(0);
  for (let rh = 0; rh < Math.min(sh, kh); rh++) {
    for (let rw = 0; rw < Math.min(sw, kw); rw++) {
      const th = Math.ceil((kh - rh) / sh);
      const tw = Math.ceil((kw - rw) / sw);
      const f = phaseFilter(backend, wt, rh, rw, sh, sw, th, tw);
      const p = xnnConv2d(backend, {
        x: dy,
        filter: f,
        pad: { top: th - 1, bottom: th - 1, left: tw - 1, right: tw - 1 },
        stride: [1, 1],
        dilation: [1, 1],
        depthwise,
      });
      free(b, f);
      scatterPhase(backend, p, dx, sh, sw, rh - pt, rw - pl);
      free(b, p);
    }
  }
  return dx;
}
