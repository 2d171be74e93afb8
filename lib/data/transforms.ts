/**
 * Item transforms: what happens to each image, one at a time, as it is decoded (before batching).
 *
 * Transforms are plain JSON data (`{ type: "Resize", ... }`) so that an exported model can carry
 * them; `planItemTfm` turns one into a concrete geometric plan for an image of a given size
 * (drawing any randomness from a seeded `Rng`), and the decoder executes the plan (with sharp,
 * or in JavaScript when only jimp is available).
 */
import type { Rng } from "./random";

/**
 * How `Resize` fits an image into the target size (fastai's `ResizeMethod`); `cover` (internal,
 * for the cache) scales keeping the aspect ratio until the image covers the target, without cropping.
 */
export type ResizeMethod = "crop" | "squish" | "pad" | "cover";
/** How missing pixels are filled (fastai's `PadMode`). */
export type PadMode = "zeros" | "border" | "reflection";

/** `Resize` as data. */
export interface ResizeTfm {
  type: "Resize";
  /** Target [height, width]. */
  size: [number, number];
  method: ResizeMethod;
  padMode: PadMode;
}

/** `RandomResizedCrop` as data. */
export interface RandomResizedCropTfm {
  type: "RandomResizedCrop";
  /** Target [height, width]. */
  size: [number, number];
  minScale: number;
  maxScale: number;
  /** Range of crop aspect ratios (width / height). */
  ratio: [number, number];
  /** Extra fraction of `size` the validation image is squished to before its centre crop. */
  valXtra: number;
}

/** Any item transform. */
export type ItemTfm = ResizeTfm | RandomResizedCropTfm;

/** A size given as one number (square) or as [height, width]. */
export type SizeArg = number | [number, number];

/** Normalise a `SizeArg` to [height, width], naming `what` in the error. */
export function toSize(size: SizeArg, what: string): [number, number] {
  const hw: [number, number] = typeof size === "number" ? [size, size] : [size[0], size[1]];
  if (!hw.every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`${what}: size must be a positive integer or [height, width] of them, got ${JSON.stringify(size)}`);
  }
  return hw;
}

/** Options of `Resize`. */
export interface ResizeOptions {
  /** `crop` (random crop on train, centre on valid), `squish` (ignore aspect), `pad` (fit inside, pad). Default `crop`. */
  method?: ResizeMethod;
  /** Fill for `pad`: `zeros`, `border` or `reflection`. Default `reflection`. */
  padMode?: PadMode;
}

/** Resize each item to `size` (fastai's `Resize`): crop random on train and centred on valid, squish, or pad. */
export function Resize(size: SizeArg, opts: ResizeOptions = {}): ResizeTfm {
  const method = opts.method ?? "crop";
  const padMode = opts.padMode ?? "reflection";
  if (!["crop", "squish", "pad"].includes(method)) {
    throw new Error(`Resize: method must be "crop", "squish" or "pad", got "${method}"`);
  }
  if (!["zeros", "border", "reflection"].includes(padMode)) {
    throw new Error(`Resize: padMode must be "zeros", "border" or "reflection", got "${padMode}"`);
  }
  return { type: "Resize", size: toSize(size, "Resize"), method, padMode };
}

/** Options of `RandomResizedCrop`. */
export interface RandomResizedCropOptions {
  /** Smallest fraction of the image area kept. Default 0.08. */
  minScale?: number;
  /** Largest fraction of the image area kept. Default 1. */
  maxScale?: number;
  /** Range of crop aspect ratios (width / height). Default [3/4, 4/3]. */
  ratio?: [number, number];
  /** Validation: squish to `size` plus this fraction (rounded up to a multiple of 8), then centre crop. Default 0.14. */
  valXtra?: number;
}

/** Crop a random area and aspect ratio on train, then resize to `size` (fastai's `RandomResizedCrop`). */
export function RandomResizedCrop(size: SizeArg, opts: RandomResizedCropOptions = {}): RandomResizedCropTfm {
  const minScale = opts.minScale ?? 0.08;
  const maxScale = opts.maxScale ?? 1;
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  if (!(minScale > 0 && minScale <= maxScale && maxScale <= 1)) {
    throw new Error(`RandomResizedCrop: need 0 < minScale <= maxScale <= 1, got minScale=${minScale}, maxScale=${maxScale}`);
  }
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1])) {
    throw new Error(`RandomResizedCrop: ratio must be [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(ratio)}`);
  }
  return {
    type: "RandomResizedCrop",
    size: toSize(size, "RandomResizedCrop"),
    minScale,
    maxScale,
    ratio: [ratio[0], ratio[1]],
    valXtra: opts.valXtra ?? 0.14,
  };
}

/** A rectangle in pixels. */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * A concrete geometric plan, executed in this order: `extract` (from the source), `resize` (to
 * [width, height], ignoring aspect), `extend` (pad), `crop` (from the resized image).
 */
export interface ItemPlan {
  extract?: Rect;
  resize?: { width: number; height: number };
  extend?: { top: number; bottom: number; left: number; right: number; mode: PadMode };
  crop?: Rect;
  /** The size after the plan. */
  out: { width: number; height: number };
}

/** Plan `tfm` for a `width`×`height` image; `train` picks random placement from `rng`, else the centred one. */
export function planItemTfm(tfm: ItemTfm, width: number, height: number, train: boolean, rng: Rng): ItemPlan {
  const [th, tw] = tfm.size;
  const out = { width: tw, height: th };
  if (tfm.type === "Resize") {
    if (tfm.method === "squish") return { resize: { width: tw, height: th }, out };
    if (tfm.method === "cover") {
      const s = Math.max(tw / width, th / height);
      const size = { width: Math.max(tw, Math.round(width * s)), height: Math.max(th, Math.round(height * s)) };
      return { resize: size, out: size };
    }
    const pctX = train ? rng.next() : 0.5;
    const pctY = train ? rng.next() : 0.5;
    if (tfm.method === "crop") {
      // The largest region of the target aspect ratio that fits, placed at (pctX, pctY) of the slack.
      const m = Math.min(width / tw, height / th);
      const cw = Math.min(width, Math.max(1, Math.round(m * tw)));
      const ch = Math.min(height, Math.max(1, Math.round(m * th)));
      const left = Math.floor(pctX * (width - cw));
      const top = Math.floor(pctY * (height - ch));
      return { extract: { left, top, width: cw, height: ch }, resize: { width: tw, height: th }, out };
    }
    // pad: fit inside the target, then pad the slack (placed at (pctX, pctY)).
    const s = Math.min(tw / width, th / height);
    const nw = Math.min(tw, Math.max(1, Math.round(width * s)));
    const nh = Math.min(th, Math.max(1, Math.round(height * s)));
    const left = Math.floor(pctX * (tw - nw));
    const top = Math.floor(pctY * (th - nh));
    return {
      resize: { width: nw, height: nh },
      extend: { left, top, right: tw - nw - left, bottom: th - nh - top, mode: tfm.padMode },
      out,
    };
  }
  // RandomResizedCrop
  if (!train) {
    const xtra = Math.ceil((Math.max(th, tw) * tfm.valXtra) / 8) * 8;
    const fw = tw + xtra;
    const fh = th + xtra;
    return {
      resize: { width: fw, height: fh },
      crop: { left: Math.floor((fw - tw) / 2), top: Math.floor((fh - th) / 2), width: tw, height: th },
      out,
    };
  }
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = rng.uniform(tfm.minScale, tfm.maxScale) * width * height;
    const ratio = Math.exp(rng.uniform(Math.log(tfm.ratio[0]), Math.log(tfm.ratio[1])));
    const nw = Math.round(Math.sqrt(area * ratio));
    const nh = Math.round(Math.sqrt(area / ratio));
    if (nw >= 1 && nh >= 1 && nw <= width && nh <= height) {
      const left = rng.int(width - nw + 1);
      const top = rng.int(height - nh + 1);
      return { extract: { left, top, width: nw, height: nh }, resize: { width: tw, height: th }, out };
    }
  }
  // Fallback as fastai: the whole image, clipped to the allowed ratio range, centred.
  let cw = width;
  let ch = height;
  if (width / height < tfm.ratio[0]) ch = Math.max(1, Math.floor(width / tfm.ratio[0]));
  else if (width / height > tfm.ratio[1]) cw = Math.max(1, Math.floor(height * tfm.ratio[1]));
  const extract = { left: Math.floor((width - cw) / 2), top: Math.floor((height - ch) / 2), width: cw, height: ch };
  return { extract, resize: { width: tw, height: th }, out };
}

/**
 * Split `tfms` into a deterministic prefix that can be cached and a random rest run on the cached
 * image each time. On valid everything is deterministic. On train a final cropping `Resize` is
 * split into "resize to cover the target" (cached) and "crop at random" (not cached).
 */
export function splitForCache(tfms: readonly ItemTfm[], train: boolean): { cached: ItemTfm[]; rest: ItemTfm[] } | undefined {
  if (!train) return { cached: tfms.slice(), rest: [] };
  if (tfms.every((t) => isDeterministic(t, true))) return { cached: tfms.slice(), rest: [] };
  const last = tfms[tfms.length - 1];
  const head = tfms.slice(0, -1);
  if (last && last.type === "Resize" && last.method === "crop" && head.every((t) => isDeterministic(t, true))) {
    return { cached: [...head, { ...last, method: "cover" as ResizeMethod }], rest: [last] };
  }
  return undefined;
}

/** True when `tfm` gives the same output whatever the random state (so its output may be cached). */
export function isDeterministic(tfm: ItemTfm, train: boolean): boolean {
  if (!train) return true;
  if (tfm.type === "Resize") return tfm.method === "squish" || tfm.method === "cover";
  return false;
}
