/**
 * What follows an image's geometry: a class-index mask and key points go through exactly the
 * crops, resizes, pads and the batch matrix their image went through (`ItemPlan`s, then one 3×3
 * matrix per image), so a mask pixel and a point stay on the image pixel they belong to.
 *
 * Masks are resampled nearest-neighbour (a class index is never blended into a value no mask has).
 * Points are continuous pixel coordinates with pixel centres at integers (x to the right, y down),
 * the convention of the resamplers: a resize from w to W maps x to (x + 0.5)·W/w − 0.5, and the
 * batch stage's [-1, 1] has −1 at the first pixel centre and 1 at the last.
 */
import type { Mat3 } from "./geometry";
import { extendIndex, padIndex } from "./pixels";
import type { ItemPlan, PadMode } from "./transforms";

/** A class-index mask: one byte per pixel, row-major. */
export interface RawMask {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Resize a mask nearest-neighbour: output pixel centre → the source pixel it falls in. */
export function resizeNearest(m: RawMask, width: number, height: number): RawMask {
  if (m.width === width && m.height === height) return m;
  const out = new Uint8Array(width * height);
  const xs = Int32Array.from({ length: width }, (_, x) => Math.min(m.width - 1, Math.floor(((x + 0.5) * m.width) / width)));
  for (let y = 0; y < height; y++) {
    const sy = Math.min(m.height - 1, Math.floor(((y + 0.5) * m.height) / height));
    const row = sy * m.width;
    for (let x = 0; x < width; x++) out[y * width + x] = m.data[row + xs[x]!]!;
  }
  return { data: out, width, height };
}

function extractMask(m: RawMask, r: { left: number; top: number; width: number; height: number }): RawMask {
  const out = new Uint8Array(r.width * r.height);
  for (let y = 0; y < r.height; y++) out.set(m.data.subarray((r.top + y) * m.width + r.left, (r.top + y) * m.width + r.left + r.width), y * r.width);
  return { data: out, width: r.width, height: r.height };
}

/** Pad a mask as the decoder pads its image (`extendIndex`); `zeros` fills with class 0. */
function extendMask(m: RawMask, pad: { top: number; bottom: number; left: number; right: number; mode: PadMode }): RawMask {
  const width = m.width + pad.left + pad.right;
  const height = m.height + pad.top + pad.bottom;
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = extendIndex(y - pad.top, m.height, pad.mode);
    for (let x = 0; x < width; x++) {
      const sx = extendIndex(x - pad.left, m.width, pad.mode);
      if (sx >= 0 && sy >= 0) out[y * width + x] = m.data[sy * m.width + sx]!;
    }
  }
  return { data: out, width, height };
}

/** Run the item plans an image was decoded with on its mask (nearest-neighbour). */
export function maskThroughPlans(m: RawMask, plans: readonly ItemPlan[]): RawMask {
  let cur = m;
  for (const plan of plans) {
    if (plan.extract) cur = extractMask(cur, plan.extract);
    if (plan.resize) cur = resizeNearest(cur, plan.resize.width, plan.resize.height);
    if (plan.extend) cur = extendMask(cur, plan.extend);
    if (plan.crop) cur = extractMask(cur, plan.crop);
  }
  return cur;
}

/** One step of a plan as a map of pixel-centre coordinates: x' = (x + 0.5)·sx − 0.5 + dx (and y). */
interface PointStep {
  sx: number;
  sy: number;
  dx: number;
  dy: number;
}

/** The plans as point steps, in order (sizes tracked from the source's). */
function planSteps(srcWidth: number, srcHeight: number, plans: readonly ItemPlan[]): PointStep[] {
  let w = srcWidth;
  let h = srcHeight;
  const steps: PointStep[] = [];
  const shift = (dx: number, dy: number) => steps.push({ sx: 1, sy: 1, dx, dy });
  for (const plan of plans) {
    if (plan.extract) {
      shift(-plan.extract.left, -plan.extract.top);
      w = plan.extract.width;
      h = plan.extract.height;
    }
    if (plan.resize) {
      steps.push({ sx: plan.resize.width / w, sy: plan.resize.height / h, dx: 0, dy: 0 });
      w = plan.resize.width;
      h = plan.resize.height;
    }
    if (plan.extend) {
      shift(plan.extend.left, plan.extend.top);
      w += plan.extend.left + plan.extend.right;
      h += plan.extend.top + plan.extend.bottom;
    }
    if (plan.crop) {
      shift(-plan.crop.left, -plan.crop.top);
      w = plan.crop.width;
      h = plan.crop.height;
    }
  }
  return steps;
}

/** Map points (x, y pairs, pixel-centre coordinates of the source) through the item plans, in place. */
export function pointsThroughPlans(pts: Float32Array, srcWidth: number, srcHeight: number, plans: readonly ItemPlan[]): Float32Array {
  for (const st of planSteps(srcWidth, srcHeight, plans)) {
    for (let k = 0; k < pts.length; k += 2) {
      pts[k] = (pts[k]! + 0.5) * st.sx - 0.5 + st.dx;
      pts[k + 1] = (pts[k + 1]! + 0.5) * st.sy - 0.5 + st.dy;
    }
  }
  return pts;
}

/** The inverse of `pointsThroughPlans`: points of the planned image back to the source's pixels, in place. */
export function pointsBackThroughPlans(pts: Float32Array, srcWidth: number, srcHeight: number, plans: readonly ItemPlan[]): Float32Array {
  for (const st of planSteps(srcWidth, srcHeight, plans).reverse()) {
    for (let k = 0; k < pts.length; k += 2) {
      pts[k] = (pts[k]! - st.dx + 0.5) / st.sx - 0.5;
      pts[k + 1] = (pts[k + 1]! - st.dy + 0.5) / st.sy - 0.5;
    }
  }
  return pts;
}

/** Pixel coordinates of a `width`×`height` image → [-1, 1] (in place). */
export function pixelsToUnit(pts: Float32Array, width: number, height: number): Float32Array {
  for (let k = 0; k < pts.length; k += 2) {
    pts[k] = width > 1 ? (2 * pts[k]!) / (width - 1) - 1 : 0;
    pts[k + 1] = height > 1 ? (2 * pts[k + 1]!) / (height - 1) - 1 : 0;
  }
  return pts;
}

/** [-1, 1] → pixel coordinates of a `width`×`height` image (in place). */
export function unitToPixels(pts: Float32Array, width: number, height: number): Float32Array {
  for (let k = 0; k < pts.length; k += 2) {
    pts[k] = ((pts[k]! + 1) * (width - 1)) / 2;
    pts[k + 1] = ((pts[k + 1]! + 1) * (height - 1)) / 2;
  }
  return pts;
}

/** The inverse of a 3×3 matrix (row-major); throws when it is singular. */
export function invert3(m: ArrayLike<number>): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = Array.from(m) as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!(Math.abs(det) > 1e-12)) throw new Error("internal: a batch transform's matrix is singular");
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, B / det, (a * i - c * g) / det, -(a * f - c * d) / det, C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}

/**
 * Points in [-1, 1] of the source → [-1, 1] of the output, for the matrix `m` (which maps output
 * to source): through its inverse, with the projective divide.
 */
export function pointsThroughMatrix(pts: Float32Array, m: ArrayLike<number>): Float32Array {
  return applyMatrix(pts, invert3(m));
}

/** Points through the matrix `m` itself (for a batch matrix: output [-1, 1] → source [-1, 1]), with the projective divide, in place. */
export function applyMatrix(pts: Float32Array, m: ArrayLike<number>): Float32Array {
  for (let k = 0; k < pts.length; k += 2) {
    const x = pts[k]!;
    const y = pts[k + 1]!;
    const z = m[6]! * x + m[7]! * y + m[8]!;
    pts[k] = (m[0]! * x + m[1]! * y + m[2]!) / z;
    pts[k + 1] = (m[3]! * x + m[4]! * y + m[5]!) / z;
  }
  return pts;
}

/**
 * Resample a mask through the matrix `m` (output [-1, 1] → source [-1, 1]) into `oh`×`ow`,
 * nearest-neighbour, padding as the image was padded (`zeros` gives class 0). Writes int32 indices
 * into `out` at `offset`.
 */
export function maskThroughMatrix(src: RawMask, m: ArrayLike<number>, oh: number, ow: number, padMode: PadMode, out: Int32Array, offset: number): void {
  const { data, width: W, height: H } = src;
  const kx = (W - 1) / 2;
  const ky = (H - 1) / 2;
  let o = offset;
  for (let i = 0; i < oh; i++) {
    const y = oh > 1 ? -1 + (2 * i) / (oh - 1) : 0;
    for (let j = 0; j < ow; j++, o++) {
      const x = ow > 1 ? -1 + (2 * j) / (ow - 1) : 0;
      let sx = m[0]! * x + m[1]! * y + m[2]!;
      let sy = m[3]! * x + m[4]! * y + m[5]!;
      const sz = m[6]! * x + m[7]! * y + m[8]!;
      if (sz !== 1) {
        sx /= sz;
        sy /= sz;
      }
      // Nearest source pixel; outside the image, the pad mode decides (as the image's resampler).
      let px = Math.round((sx + 1) * kx);
      let py = Math.round((sy + 1) * ky);
      px = padIndex(px, W, padMode);
      py = padIndex(py, H, padMode);
      out[o] = px < 0 || py < 0 ? 0 : data[py * W + px]!;
    }
  }
}
