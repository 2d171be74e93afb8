/**
 * Plain-JavaScript pixel operations on 8-bit RGB images (`RawImage`): what the jimp fallback
 * decoder uses to execute item plans, and what the cache uses to crop presized images.
 */
import type { ItemPlan, PadMode, Rect } from "./transforms";

/** An 8-bit RGB image, row-major, 3 channels interleaved (HWC). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Copy the rectangle `r` out of `img`. */
export function extractRect(img: RawImage, r: Rect): RawImage {
  const out = new Uint8Array(r.width * r.height * 3);
  for (let y = 0; y < r.height; y++) {
    const src = ((r.top + y) * img.width + r.left) * 3;
    out.set(img.data.subarray(src, src + r.width * 3), y * r.width * 3);
  }
  return { data: out, width: r.width, height: r.height };
}

/**
 * Resize with a triangle (bilinear) filter widened by the shrink factor, so downscaling averages
 * every source pixel (antialiased, like PIL's BILINEAR) instead of skipping some. Separable: rows
 * then columns.
 */
export function resizeBilinear(img: RawImage, width: number, height: number): RawImage {
  if (img.width === width && img.height === height) return img;
  const tmp = resampleAxis(img.data, img.width, img.height, width, true);
  const out = resampleAxis(tmp, width, img.height, height, false);
  const data = new Uint8Array(out.length);
  for (let i = 0; i < out.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(out[i]!)));
  return { data, width, height };
}

// Resample along x (`horizontal`) or y from `n` to `m` samples; returns float values, HWC layout.
function resampleAxis(src: ArrayLike<number>, w: number, h: number, m: number, horizontal: boolean): Float32Array {
  const n = horizontal ? w : h;
  const scale = m / n;
  const support = scale < 1 ? 1 / scale : 1;
  const outW = horizontal ? m : w;
  const outH = horizontal ? h : m;
  const out = new Float32Array(outW * outH * 3);
  for (let o = 0; o < m; o++) {
    // 1. centre of output sample o in source coordinates (pixel centres at i + 0.5).
    const centre = (o + 0.5) / scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(n - 1, Math.ceil(centre + support));
    // 2. triangle weights over [centre - support, centre + support], normalised to sum 1.
    const idx: number[] = [];
    const wts: number[] = [];
    let total = 0;
    for (let i = lo; i <= hi; i++) {
      const wgt = Math.max(0, 1 - Math.abs(i + 0.5 - centre) / support);
      if (wgt > 0) {
        idx.push(i);
        wts.push(wgt);
        total += wgt;
      }
    }
    if (total === 0) {
      idx.push(Math.min(n - 1, Math.max(0, Math.floor(centre))));
      wts.push(1);
      total = 1;
    }
    // 3. weighted sum along the axis for every line across it.
    const lines = horizontal ? h : w;
    for (let l = 0; l < lines; l++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k]!;
        const p = (horizontal ? l * w + i : i * w + l) * 3;
        const wk = wts[k]!;
        r += src[p]! * wk;
        g += src[p + 1]! * wk;
        b += src[p + 2]! * wk;
      }
      const q = (horizontal ? l * outW + o : o * outW + l) * 3;
      out[q] = r / total;
      out[q + 1] = g / total;
      out[q + 2] = b / total;
    }
  }
  return out;
}

/** Map an out-of-range index into [0, n) by the pad mode (`zeros` gives -1). */
export function padIndex(i: number, n: number, mode: PadMode): number {
  if (i >= 0 && i < n) return i;
  if (mode === "zeros") return -1;
  if (mode === "border") return i < 0 ? 0 : n - 1;
  // reflection without repeating the edge pixel: -1 -> 1, n -> n - 2 (period 2n - 2).
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * `padIndex` for padding a whole image (an item transform's `extend`): `reflection` mirrors
 * including the edge pixel (-1 -> 0, n -> n - 1, period 2n), as sharp's `extendWith: "mirror"`
 * does, so the JavaScript path and masks match what sharp gives the picture.
 */
export function extendIndex(i: number, n: number, mode: PadMode): number {
  if (mode !== "reflection" || (i >= 0 && i < n)) return padIndex(i, n, mode);
  const period = 2 * n;
  const j = ((i % period) + period) % period;
  return j >= n ? period - 1 - j : j;
}

/** Pad `img` by the given margins, filling by `mode`. */
export function extendImage(
  img: RawImage,
  pad: { top: number; bottom: number; left: number; right: number; mode: PadMode },
): RawImage {
  const width = img.width + pad.left + pad.right;
  const height = img.height + pad.top + pad.bottom;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = extendIndex(y - pad.top, img.height, pad.mode);
    for (let x = 0; x < width; x++) {
      const sx = extendIndex(x - pad.left, img.width, pad.mode);
      if (sx < 0 || sy < 0) continue;
      const s = (sy * img.width + sx) * 3;
      const d = (y * width + x) * 3;
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  }
  return { data: out, width, height };
}

/** Execute an item plan in JavaScript. */
export function applyPlanJs(img: RawImage, plan: ItemPlan): RawImage {
  let cur = img;
  if (plan.extract) cur = extractRect(cur, plan.extract);
  if (plan.resize) cur = resizeBilinear(cur, plan.resize.width, plan.resize.height);
  if (plan.extend) cur = extendImage(cur, plan.extend);
  if (plan.crop) cur = extractRect(cur, plan.crop);
  return cur;
}
