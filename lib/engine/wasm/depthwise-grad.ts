/**
 * Gradients of a depthwise 2-D convolution for the wasm backend.
 *
 * Forward (NHWC, filter [kh, kw, c, m], channel multiplier m, stride s, dilation d, padding p):
 *   y[n, oh, ow, c·M + m] = Σ_{i, j} x[n, oh·s + i·d − p, ow·s + j·d − p, c] · w[i, j, c, m]
 * Depthwise work is ~C times smaller than a full convolution of the same shape and is bound by
 * memory traffic, so both gradients are one direct pass over the wasm heap, channel-innermost.
 */
import * as tf from "../tf";
import { asWasm, f32, KernelArgs } from "./backend";
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

/** dL/dw[i, j, c, m] = Σ_{n, oh, ow} x[n, oh·s + i·d − p, ow·s + j·d − p, c] · dy[n, oh, ow, c·M + m]. */
export function depthwiseConv2dNativeBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const b = asWasm(args.backend);
  const x = args.inputs["x"]!;
  const dy = args.inputs["dy"]!;
  const attrs = args.attrs as unknown as DepthwiseGradAttrs & { filterShape: [number, number, number, number] };
  const g = geometry(x.shape, attrs.filterShape, attrs);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow, mult } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, pt, pl } = g;
  const oc = c * mult;
  const acc = new Float64Array(kh * kw * oc);
  const out = b.makeOutput([kh, kw, c, mult], "float32");
  const xs = f32(b, x);
  const ys = f32(b, dy);
  // Index dy by its own shape: a larger dy (allowed by tfjs's reference kernels) is read in its top-left.
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
