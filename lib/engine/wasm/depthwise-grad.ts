/**
 * Gradients of a depthwise 2-D convolution for the wasm backend.
 *
 * Forward (NHWC, filter [kh, kw, c, m], channel multiplier m, stride s, dilation d, padding p):
 *   y[n, oh, ow, c·M + m] = Σ_{i, j} x[n, oh·s + i·d − p, ow·s + j·d − p, c] · w[i, j, c, m]
 * Depthwise work is ~C times smaller than a full convolution of the same shape and is bound by
 * memory traffic: the filter gradient is one pass over the wasm heap with SIMD loops, the input
 * gradient runs on XNNPACK (multiplier 1) or as one direct pass.
 */
import * as tf from "../tf";
import { asWasm, f32, free, KernelArgs, WasmBackend } from "./backend";
import { simdKernels } from "./simd";
import { transposedConv } from "./conv2d-grad";

interface DepthwiseGradAttrs {
  strides: [number, number] | number;
  dilations?: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function geometry(xShape: number[], filterShape: number[], a: DepthwiseGradAttrs) {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  return { ...info, mult: filterShape[3]!, pt: info.padInfo.top, pl: info.padInfo.left };
}

/**
 * dL/dw[i, j, c, m] = Σ_{n, oh, ow} x[n, oh·s + i·d − p, ow·s + j·d − p, c] · dy[n, oh, ow, c·M + m].
 *
 * XNNPACK has no fast path for this (as a depthwise convolution whose filter is dy it falls back
 * to a grouped GEMM with one output column, no faster than the JavaScript loop), so the inner
 * loop runs in tsfast's own SIMD module (lib/engine/wasm/simd.ts) on the backend's heap:
 * for each image n, output row oh and filter tap (i, j), the positions ow whose input column is
 * inside x form one contiguous range [q0, q1], and
 *   acc[i, j, ·] += Σ_{ow = q0..q1} x[n, xr, ow·s + j·d − p, ·] · dy[n, oh, ow, ·]
 * is one call, 16 channels at a time (float32 within the row, float64 across rows).
 * A multiplier M > 1 first repeats each input channel M times (x'[…, c·M + m] = x[…, c]), which
 * turns the sum into the multiplier-1 case with c·M channels.
 */
export function depthwiseConv2dNativeBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const b = asWasm(args.backend);
  const x = args.inputs["x"]!;
  const dy = args.inputs["dy"]!;
  const attrs = args.attrs as unknown as DepthwiseGradAttrs & { filterShape: [number, number, number, number] };
  const g = geometry(x.shape, attrs.filterShape, attrs);
  // Index dy by its own shape: a larger dy (allowed by tfjs's reference kernels) is read in its top-left; a smaller one is an error.
  const [, dyH, dyW] = dy.shape as [number, number, number, number];
  if (dyH < g.outHeight || dyW < g.outWidth) {
    throw new Error(`DepthwiseConv2dNativeBackpropFilter: dy is ${dyH}×${dyW} but the convolution produces ${g.outHeight}×${g.outWidth}`);
  }
  const simd = simdKernels(b.wasm.asm?.memory);
  if (!simd) return filterGradJs(b, x, dy, g);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow, mult } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, pt, pl } = g;
  const C = c * mult; // channels of dy, and of x once repeated
  const xm = mult === 1 ? x : repeatChannels(b, x, mult);
  // float64 accumulators [kh, kw, C] (+1 so that the view can start on an 8-byte boundary)
  const accT = b.makeOutput([2 * (kh * kw * C + 1)], "float32");
  const out = b.makeOutput([kh, kw, c, mult], "float32");
  try {
    const xs = f32(b, xm);
    const ys = f32(b, dy);
    const accF = f32(b, accT);
    const accAt = accF.byteOffset + (accF.byteOffset & 4);
    const acc = new Float64Array(accF.buffer, accAt, kh * kw * C);
    acc.fill(0);
    // For tap column j, the output columns whose input column q·s + j·d − p lies in [0, w).
    const q0 = new Int32Array(kw);
    const q1 = new Int32Array(kw);
    for (let j = 0; j < kw; j++) {
      q0[j] = Math.max(0, Math.ceil((pl - j * dw) / sw));
      q1[j] = Math.min(ow - 1, Math.floor((w - 1 + pl - j * dw) / sw));
    }
    const nb4 = Math.floor(C / 16); // blocks of 16 channels (dot4)
    const nb1 = Math.floor((C - 16 * nb4) / 4); // then blocks of 4 (dot1)
    const kRest = 16 * nb4 + 4 * nb1; // the last C mod 4 channels: a scalar loop
    const sx = sw * C * 4; // bytes from one output column's input to the next
    const sdy = C * 4;
    for (let bi = 0; bi < n; bi++) {
      for (let r = 0; r < oh; r++) {
        const yRow = (bi * dyH + r) * dyW * C;
        for (let i = 0; i < kh; i++) {
          const xr = r * sh + i * dh - pt;
          if (xr < 0 || xr >= h) continue;
          const xRow = (bi * h + xr) * w * C;
          for (let j = 0; j < kw; j++) {
            const qa = q0[j]!;
            const count = q1[j]! - qa + 1;
            if (count <= 0) continue;
            const xo = xRow + (qa * sw + j * dw - pl) * C; // float offsets of the first position
            const yo = yRow + qa * C;
            const ao = (i * kw + j) * C;
            const px = xs.byteOffset + 4 * xo;
            const pdy = ys.byteOffset + 4 * yo;
            const pacc = accAt + 8 * ao;
            if (nb4 > 0) simd.dot4(px, pdy, pacc, count, nb4, sx, sdy);
            if (nb1 > 0) simd.dot1(px + 64 * nb4, pdy + 64 * nb4, pacc + 128 * nb4, count, nb1, sx, sdy);
            for (let k = kRest; k < C; k++) {
              let s = 0;
              for (let q = 0; q < count; q++) s += xs[xo + q * sw * C + k]! * ys[yo + q * C + k]!;
              acc[ao + k]! += s;
            }
          }
        }
      }
    }
    f32(b, out).set(acc);
  } catch (e) {
    free(b, out);
    throw e;
  } finally {
    // the scratch arrays go on every path, the output only when the kernel failed
    free(b, accT);
    if (xm !== x) free(b, xm);
  }
  return out;
}

/** x'[n, h, w, c·M + m] = x[n, h, w, c]: each channel repeated M times, on the heap. */
function repeatChannels(b: WasmBackend, x: tf.TensorInfo, mult: number): tf.TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = b.makeOutput([n, h, w, c * mult], "float32");
  const src = f32(b, x);
  const dst = f32(b, out);
  for (let p = 0, o = 0; p < n * h * w * c; p++) {
    const v = src[p]!;
    for (let m = 0; m < mult; m++) dst[o++] = v;
  }
  return out;
}

/** The same sum as one JavaScript pass (float64 accumulators), where WebAssembly SIMD is missing. */
function filterGradJs(b: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, g: ReturnType<typeof geometry>): tf.TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow, mult } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, pt, pl } = g;
  const oc = c * mult;
  const acc = new Float64Array(kh * kw * oc);
  const out = b.makeOutput([kh, kw, c, mult], "float32");
  const xs = f32(b, x);
  const ys = f32(b, dy);
  const [, dyH, dyW] = dy.shape as [number, number, number, number];
  for (let bi = 0; bi < n; bi++) {
    for (let r = 0; r < oh; r++) {
      for (let i = 0; i < kh; i++) {
        const xr = r * sh + i * dh - pt;
        if (xr < 0 || xr >= h) continue;
        for (let q = 0; q < ow; q++) {
          const yo = ((bi * dyH + r) * dyW + q) * oc;
          for (let j = 0; j < kw; j++) {
            const xc = q * sw + j * dw - pl;
            if (xc < 0 || xc >= w) continue;
            const xo = ((bi * h + xr) * w + xc) * c;
            const ao = (i * kw + j) * oc;
            if (mult === 1) {
              for (let k = 0; k < c; k++) acc[ao + k]! += xs[xo + k]! * ys[yo + k]!;
            } else {
              for (let k = 0; k < c; k++) {
                const xv = xs[xo + k]!;
                for (let m = 0; m < mult; m++) acc[ao + k * mult + m]! += xv * ys[yo + k * mult + m]!;
              }
            }
          }
        }
      }
    }
  }
  f32(b, out).set(acc);
  return out;
}

/**
 * dL/dx[n, h, w, c] = Σ over the (oh, ow, i, j) that read x[n, h, w, c] of dy[n, oh, ow, c·M + m] · w[i, j, c, m].
 * With multiplier 1 this is a transposed depthwise convolution run on XNNPACK (`transposedConv`);
 * otherwise (or with dilation) one direct pass.
 */
export function depthwiseConv2dNativeBackpropInput(args: KernelArgs): tf.TensorInfo {
  const b = asWasm(args.backend);
  const dy = args.inputs["dy"]!;
  const filter = args.inputs["filter"]!;
  const attrs = args.attrs as unknown as DepthwiseGradAttrs & { inputShape: [number, number, number, number] };
  const g = geometry(attrs.inputShape, filter.shape, attrs);
  const [, dyH0, dyW0] = dy.shape as [number, number, number, number];
  if (g.mult === 1 && g.dilationHeight === 1 && g.dilationWidth === 1 && dyH0 === g.outHeight && dyW0 === g.outWidth) {
    // Multiplier 1: XNNPACK depthwise convolutions of dy with the rotated (phase) filters.
    return transposedConv(args.backend, dy, filter, attrs.inputShape, g, true);
  }
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow, mult } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, pt, pl } = g;
  const oc = c * mult;
  const out = b.makeOutput([n, h, w, c], "float32");
  const dx = f32(b, out);
  const ys = f32(b, dy);
  const ws = f32(b, filter);
  const [, dyH, dyW] = dy.shape as [number, number, number, number];
  dx.fill(0);
  for (let bi = 0; bi < n; bi++) {
    for (let r = 0; r < oh; r++) {
      for (let i = 0; i < kh; i++) {
        const xr = r * sh + i * dh - pt;
        if (xr < 0 || xr >= h) continue;
        for (let q = 0; q < ow; q++) {
          const yo = ((bi * dyH + r) * dyW + q) * oc;
          for (let j = 0; j < kw; j++) {
            const xc = q * sw + j * dw - pl;
            if (xc < 0 || xc >= w) continue;
            const xo = ((bi * h + xr) * w + xc) * c;
            const wo = (i * kw + j) * oc;
            if (mult === 1) {
              for (let k = 0; k < c; k++) dx[xo + k]! += ys[yo + k]! * ws[wo + k]!;
            } else {
              for (let k = 0; k < c; k++) {
                let s = 0;
                for (let m = 0; m < mult; m++) s += ys[yo + k * mult + m]! * ws[wo + k * mult + m]!;
                dx[xo + k]! += s;
              }
            }
          }
        }
      }
    }
  }
  return out;
}
