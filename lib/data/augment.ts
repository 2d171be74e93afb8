/**
 * Batch transforms: data augmentation on whole batches (fastai's `aug_transforms`) and
 * normalisation, computed in JavaScript on the decoded pixels before the batch tensor is made.
 *
 * Flip, rotate, zoom, perspective warp and the `minScale` random crop are composed into ONE 3×3
 * projective matrix per image and applied in a single bilinear resampling (reflection padding),
 * so each image is resampled once. Why JavaScript and not `tf.image.transform`: it must run the
 * same (and deterministically) on every backend — cpu, wasm and the native engine — and it fuses
 * with lighting and normalisation into one pass that writes the batch's Float32Array.
 *
 * Coordinates follow fastai / PyTorch `affine_grid(align_corners=True)`: x and y run over [-1, 1],
 * -1 the centre of the first pixel and 1 the centre of the last; a matrix maps an OUTPUT position
 * to the SOURCE position it samples.
 */
import { dihedralMat, IDENTITY, matMul3, rotateMat, warpMat, zoomMat, type Mat3 } from "./geometry";
import { imageAddon, type ImageAddon } from "./native-image";
import type { RawImage } from "./pixels";
import type { Rng } from "./random";
import { toSize, type PadMode, type SizeArg } from "./transforms";

/** The geometric part of `augTransforms`, as data. */
export interface AffineAugTfm {
  type: "AffineAug";
  doFlip: boolean;
  flipVert: boolean;
  maxRotate: number;
  minZoom: number;
  maxZoom: number;
  maxWarp: number;
  pAffine: number;
  /** Output [height, width]; absent keeps the item size. */
  size?: [number, number];
  minScale: number;
  padMode: PadMode;
}

/** Brightness and contrast changes in logit space (fastai's `Brightness` + `Contrast`), as data. */
export interface LightingAugTfm {
  type: "Lighting";
  maxLighting: number;
  pLighting: number;
}

/** Per-channel normalisation `(x - mean) / std`, as data. */
export interface NormalizeTfm {
  type: "Normalize";
  mean: number[];
  std: number[];
}

/** Any batch transform. */
export type BatchTfm = AffineAugTfm | LightingAugTfm | NormalizeTfm;

/** Options of `augTransforms` (fastai's `aug_transforms`). */
export interface AugTransformsOptions {
  /** Multiplies `maxRotate`, `maxLighting` and `maxWarp`. Default 1. */
  mult?: number;
  /** Random horizontal flip (p = 0.5). Default true. */
  doFlip?: boolean;
  /** Also flip vertically / rotate by multiples of 90° (a random dihedral transform). Default false. */
  flipVert?: boolean;
  /** Largest rotation in degrees. Default 10. */
  maxRotate?: number;
  /** Smallest zoom factor. Default 1. */
  minZoom?: number;
  /** Largest zoom factor. Default 1.1. */
  maxZoom?: number;
  /** Largest brightness/contrast change. Default 0.2. */
  maxLighting?: number;
  /** Largest perspective warp magnitude. Default 0.2. */
  maxWarp?: number;
  /** Probability of each of rotate, zoom and warp. Default 0.75. */
  pAffine?: number;
  /** Probability of each of brightness and contrast. Default 0.75. */
  pLighting?: number;
  /** Output size (number or [height, width]); absent keeps the item size. Default none. */
  size?: SizeArg;
  /** Below 1: also crop a random square area of this fraction or more (then resize to `size`). Default 1. */
  minScale?: number;
  /** Fill outside the image: `zeros`, `border` or `reflection`. Default `reflection`. */
  padMode?: PadMode;
}

/** fastai's `aug_transforms`: random flip, rotate, zoom, warp and lighting, applied per batch on train only. */
export function augTransforms(opts: AugTransformsOptions = {}): BatchTfm[] {
  const mult = opts.mult ?? 1;
  const minScale = opts.minScale ?? 1;
  if (!(minScale > 0 && minScale <= 1)) throw new Error(`augTransforms: minScale must be in (0, 1], got ${minScale}`);
  if (minScale < 1 && opts.size === undefined) throw new Error("augTransforms: minScale < 1 needs a size");
  const minZoom = opts.minZoom ?? 1;
  const maxZoom = opts.maxZoom ?? 1.1;
  if (!(minZoom > 0 && minZoom <= maxZoom)) {
    throw new Error(`augTransforms: need 0 < minZoom <= maxZoom, got minZoom=${minZoom}, maxZoom=${maxZoom}`);
  }
  const affine: AffineAugTfm = {
    type: "AffineAug",
    doFlip: opts.doFlip ?? true,
    flipVert: opts.flipVert ?? false,
    maxRotate: (opts.maxRotate ?? 10) * mult,
    minZoom,
    maxZoom,
    maxWarp: (opts.maxWarp ?? 0.2) * mult,
    pAffine: opts.pAffine ?? 0.75,
    minScale,
    padMode: opts.padMode ?? "reflection",
  };
  if (opts.size !== undefined) affine.size = toSize(opts.size, "augTransforms");
  const out: BatchTfm[] = [affine];
  const maxLighting = (opts.maxLighting ?? 0.2) * mult;
  if (maxLighting > 0) out.push({ type: "Lighting", maxLighting, pLighting: opts.pLighting ?? 0.75 });
  return out;
}

/** ImageNet channel statistics, `[mean, std]`, for `Normalize.fromStats(...imagenetStats)`. */
export const imagenetStats: [number[], number[]] = [
  [0.485, 0.456, 0.406],
  [0.229, 0.224, 0.225],
];

/** Per-channel normalisation (fastai's `Normalize`). */
export const Normalize = {
  /** `(x - mean) / std` per channel, e.g. `Normalize.fromStats(...imagenetStats)`. */
  fromStats(mean: number[], std: number[]): NormalizeTfm {
    if (mean.length !== 3 || std.length !== 3) {
      throw new Error(`Normalize.fromStats: need 3 means and 3 stds, got ${mean.length} and ${std.length}`);
    }
    if (std.some((s) => !(s > 0))) throw new Error(`Normalize.fromStats: std must be positive, got ${JSON.stringify(std)}`);
    return { type: "Normalize", mean: mean.slice(), std: std.slice() };
  },
};

/** The random per-image matrix of `tfm` for a `w`×`h` source on train (identity-crop on valid). */
export function drawAffine(tfm: AffineAugTfm, w: number, h: number, train: boolean, rng: Rng): Mat3 {
  // 1. the square crop (minScale) or, on valid, the centred largest square when minScale < 1.
  let crop = IDENTITY;
  if (tfm.minScale < 1) crop = cropMat(tfm.minScale, w, h, train, rng);
  if (!train) return crop;
  // 2. flip / dihedral, rotate, zoom: composed left to right as fastai multiplies them.
  let m = IDENTITY;
  if (tfm.doFlip || tfm.flipVert) {
    const apply = rng.bernoulli(0.5);
    const k = tfm.flipVert ? rng.int(8) : 1;
    if (apply) m = matMul3(m, dihedralMat(k));
  }
  if (tfm.maxRotate > 0) {
    const deg = rng.uniform(-tfm.maxRotate, tfm.maxRotate);
    if (rng.bernoulli(tfm.pAffine)) m = matMul3(m, rotateMat(deg));
  }
  if (tfm.minZoom < 1 || tfm.maxZoom > 1) {
    const z = rng.uniform(tfm.minZoom, tfm.maxZoom);
    const apply = rng.bernoulli(tfm.pAffine);
    const colPct = rng.next();
    const rowPct = rng.next();
    if (apply) m = matMul3(m, zoomMat(z, colPct, rowPct));
  }
  // 3. the warp acts on the affine's output coordinates: source = W · A · C · p.
  if (tfm.maxWarp > 0) {
    const xMag = rng.uniform(-tfm.maxWarp, tfm.maxWarp);
    const yMag = rng.uniform(-tfm.maxWarp, tfm.maxWarp);
    if (rng.bernoulli(tfm.pAffine)) m = matMul3(warpMat(xMag, yMag), m);
  }
  return matMul3(m, crop);
}

function cropMat(minScale: number, w: number, h: number, train: boolean, rng: Rng): Mat3 {
  // A square crop (in pixels) of area fraction in [minScale, 1], as fastai's RandomResizedCropGPU
  // with ratio (1, 1); on valid (or when no draw fits) the centred largest square.
  let nw = Math.min(w, h);
  let nh = nw;
  let left = (w - nw) / 2;
  let top = (h - nh) / 2;
  if (train) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const side = Math.round(Math.sqrt(rng.uniform(minScale, 1) * w * h));
      if (side <= w && side <= h) {
        nw = nh = side;
        left = rng.int(w - side + 1);
        top = rng.int(h - side + 1);
        break;
      }
    }
  }
  // Map output [-1, 1] onto the crop's pixel-centre span [left, left + nw - 1] in source [-1, 1].
  const sx = w > 1 ? (nw - 1) / (w - 1) : 1;
  const sy = h > 1 ? (nh - 1) / (h - 1) : 1;
  const cx = w > 1 ? -1 + (2 * (left + (nw - 1) / 2)) / (w - 1) : 0;
  const cy = h > 1 ? -1 + (2 * (top + (nh - 1) / 2)) / (h - 1) : 0;
  return [sx, 0, cx, 0, sy, cy, 0, 0, 1];
}

// ---------------------------------------------------------------------------------------------
// Resampling

/** Reflect a continuous pixel coordinate into [0, n - 1] (PyTorch `reflection`, align_corners=True). */
function reflectCoord(x: number, n: number): number {
  if (n === 1) return 0;
  const span = n - 1;
  if (x >= 0 && x <= span) return x;
  const period = 2 * span;
  let r = x % period;
  if (r < 0) r += period;
  return r > span ? period - r : r;
}

/** `PadMode` as the image addon's `warp` numbers it. */
const PAD_CODE: Record<PadMode, number> = { zeros: 0, border: 1, reflection: 2 };

/**
 * Sample `src` through the projective matrix `m` into `out` (float, [0, 1] scaled by /255) of size
 * `oh`×`ow`, at float offset `offset`; bilinear, the given padding, optional per-pixel `lut` lighting.
 */
export function projectiveResample(
  src: RawImage,
  m: Mat3,
  oh: number,
  ow: number,
  padMode: PadMode,
  out: Float32Array,
  offset: number,
  post?: PixelPost,
): void {
  const { data, width: W, height: H } = src;
  const addon = imageAddon();
  if (addon) {
    warpNative(addon, src, m, oh, ow, padMode, out, offset, post);
    return;
  }
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8] = m as [number, number, number, number, number, number, number, number, number];
  const projective = m6 !== 0 || m7 !== 0 || m8 !== 1;
  const zeros = padMode === "zeros";
  const reflect = padMode === "reflection";
  const kx = (W - 1) / 2;
  const ky = (H - 1) / 2;
  const inv255 = 1 / 255;
  let o = offset;
  const x0n = ow > 1 ? -1 : 0;
  const stepX = ow > 1 ? 2 / (ow - 1) : 0;
  for (let i = 0; i < oh; i++) {
    const y = oh > 1 ? -1 + (2 * i) / (oh - 1) : 0;
    // 1. output position → source position in [-1, 1], stepped along the row (homogeneous
    //    divide when projective).
    let ax = m0 * x0n + m1 * y + m2;
    let ay = m3 * x0n + m4 * y + m5;
    let az = m6 * x0n + m7 * y + m8;
    const dax = m0 * stepX;
    const day = m3 * stepX;
    const daz = m6 * stepX;
    for (let j = 0; j < ow; j++, o += 3, ax += dax, ay += day, az += daz) {
      let sx = ax;
      let sy = ay;
      if (projective) {
        sx /= az;
        sy /= az;
      }
      // 2. → pixel coordinates, padded by the mode.
      let px = (sx + 1) * kx;
      let py = (sy + 1) * ky;
      if (zeros) {
        sampleZeros(data, W, H, px, py, out, o);
        continue;
      }
      if (reflect) {
        if (px < 0 || px > W - 1) px = reflectCoord(px, W);
        if (py < 0 || py > H - 1) py = reflectCoord(py, H);
      } else {
        px = px < 0 ? 0 : px > W - 1 ? W - 1 : px;
        py = py < 0 ? 0 : py > H - 1 ? H - 1 : py;
      }
      // 3. bilinear over the 4 neighbours (all inside after padding; the last row/column repeats).
      const x0 = px | 0;
      const y0 = py | 0;
      const fx = px - x0;
      const fy = py - y0;
      const dx = x0 < W - 1 ? 3 : 0;
      const dy = y0 < H - 1 ? W * 3 : 0;
      const p = (y0 * W + x0) * 3;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const r = data[p]! * w00 + data[p + dx]! * w01 + data[p + dy]! * w10 + data[p + dy + dx]! * w11;
      const g = data[p + 1]! * w00 + data[p + dx + 1]! * w01 + data[p + dy + 1]! * w10 + data[p + dy + dx + 1]! * w11;
      const b = data[p + 2]! * w00 + data[p + dx + 2]! * w01 + data[p + dy + 2]! * w10 + data[p + dy + dx + 2]! * w11;
      out[o] = r * inv255;
      out[o + 1] = g * inv255;
      out[o + 2] = b * inv255;
    }
  }
  if (post) applyPost(post, out, offset, oh * ow * 3);
}

let edgeScratch = new Int32Array(0);

/**
 * `projectiveResample` by the image addon (native/image/warp.cc): the same double-precision steps
 * in the same order, so the same float32 values, with `post` applied a row at a time. The addon
 * leaves the lighting's edge cells (next to 0 and 1, computed exactly here) to `lookup`.
 */
function warpNative(addon: ImageAddon, src: RawImage, m: Mat3, oh: number, ow: number, padMode: PadMode, out: Float32Array, offset: number, post?: PixelPost): void {
  const n = oh * ow * 3;
  const lut = post?.lut;
  const mean = post?.mean;
  const inv = post?.invStd;
  // normalizeInPlace's scale is 1 / std with std = 1 / invStd: the same division here.
  const norm = mean && inv ? new Float64Array([...mean, ...inv.map((v) => 1 / (1 / v))]) : null;
  if (lut && edgeScratch.length < n) edgeScratch = new Int32Array(n);
  const nEdges = addon.warp(src.data, src.width, src.height, Float64Array.from(m), oh, ow, PAD_CODE[padMode], out, offset, lut?.table ?? null, norm, lut ? edgeScratch : null);
  for (let e = 0; e < nEdges; e++) {
    const k = offset + edgeScratch[e]!;
    const c = edgeScratch[e]! % 3;
    const v = Math.fround(lookup(lut!, out[k]!));
    out[k] = norm ? (v - norm[c]!) * norm[3 + c]! : v;
  }
}

/** Per-pixel work fused into the resampling pass: lighting table, then normalisation. */
export interface PixelPost {
  /** Lighting table (`makeLightingLut`), or undefined for none. */
  lut?: LightingLut;
  /** Per-channel mean and 1/std, or undefined for none. */
  mean?: [number, number, number];
  invStd?: [number, number, number];
}

/** Lighting then normalisation over `n` floats at `offset`, in place (locals hoisted for speed). */
function applyPost(post: PixelPost, out: Float32Array, offset: number, n: number): void {
  const lut = post.lut;
  if (lut) {
    const table = lut.table;
    for (let k = offset; k < offset + n; k++) {
      const v = out[k]!;
      const i = (v * LUT_N + 0.5) | 0;
      out[k] = i < 8 || i > LUT_N - 8 ? lookup(lut, v) : table[i]!;
    }
  }
  const mean = post.mean;
  const inv = post.invStd;
  if (mean && inv) normalizeInPlace(out.subarray(offset, offset + n), mean, inv.map((v) => 1 / v));
}

// Bilinear sample at pixel position (px, py) where taps outside the image count as 0.
function sampleZeros(data: Uint8Array, W: number, H: number, px: number, py: number, out: Float32Array, o: number): void {
  const x0 = Math.floor(px);
  const y0 = Math.floor(py);
  const fx = px - x0;
  const fy = py - y0;
  let r = 0;
  let g = 0;
  let b = 0;
  for (let t = 0; t < 4; t++) {
    const xi = x0 + (t & 1);
    const yi = y0 + (t >> 1);
    const wgt = (t & 1 ? fx : 1 - fx) * (t >> 1 ? fy : 1 - fy);
    if (wgt === 0 || xi < 0 || yi < 0 || xi >= W || yi >= H) continue;
    const p = (yi * W + xi) * 3;
    r += data[p]! * wgt;
    g += data[p + 1]! * wgt;
    b += data[p + 2]! * wgt;
  }
  out[o] = r / 255;
  out[o + 1] = g / 255;
  out[o + 2] = b / 255;
}

/** fastai's `logit` with its clamp: log(x / (1 - x)) for x in [1e-7, 1 - 1e-7]. */
export function logit(x: number): number {
  const c = Math.min(Math.max(x, 1e-7), 1 - 1e-7);
  return Math.log(c / (1 - c));
}

/** The lighting function of fastai: sigmoid((logit(x) + logit(brightness)) · contrast). */
export function lightingFn(x: number, brightness: number, contrast: number): number {
  return 1 / (1 + Math.exp(-(logit(x) + logit(brightness)) * contrast));
}

const LUT_N = 4096;

/**
 * A lighting function tabulated at 4,097 points of [0, 1], read at the nearest point: within
 * 1e-3 of the exact value (a quarter of a grey level; cells next to 0 and 1, where logit is
 * steep, are computed exactly) and much cheaper than a log and an exp per value.
 */
export interface LightingLut {
  table: Float32Array;
  brightness: number;
  contrast: number;
}

/** Tabulate `lightingFn(·, brightness, contrast)`. */
export function makeLightingLut(brightness: number, contrast: number): LightingLut {
  const table = new Float32Array(LUT_N + 1);
  for (let i = 0; i <= LUT_N; i++) table[i] = lightingFn(i / LUT_N, brightness, contrast);
  return { table, brightness, contrast };
}

function lookup(lut: LightingLut, v: number): number {
  const i = (v * LUT_N + 0.5) | 0;
  // logit is steep next to 0 and 1: the first and last few cells are computed exactly.
  if (i < 8 || i > LUT_N - 8) return v <= 0 || v >= 1 ? lut.table[v <= 0 ? 0 : LUT_N]! : lightingFn(v, lut.brightness, lut.contrast);
  return lut.table[i]!;
}

/** What `applyBatchTfms` made: the NHWC batch, and each image's matrix so masks and points can follow it. */
export interface BatchResult {
  data: Float32Array;
  shape: [number, number, number, number];
  /**
   * Image n's matrix at [9n, 9n + 9) (row-major; maps an output position in [-1, 1] to the source
   * position it sampled), identity where nothing moved.
   */
  mats: Float64Array;
}

/**
 * Run `tfms` over decoded `images` (train: random, else deterministic) and return the NHWC float
 * batch; images may differ in size only when an `AffineAug` with a `size` resamples them.
 */
export function applyBatchTfms(images: RawImage[], tfms: readonly BatchTfm[], train: boolean, rng: Rng): BatchResult {
  const affine = tfms.find((t): t is AffineAugTfm => t.type === "AffineAug");
  const first = images[0];
  if (!first) throw new Error("applyBatchTfms: empty batch");
  const [oh, ow] = affine?.size ?? [first.height, first.width];
  if (!affine || !affine.size) {
    const bad = images.find((im) => im.width !== ow || im.height !== oh);
    if (bad) {
      throw new Error(
        `images in a batch differ in size (${first.width}×${first.height} and ${bad.width}×${bad.height}): ` +
          `add an item transform such as itemTfms: [Resize(224)], or give augTransforms a size`,
      );
    }
  }
  const per = oh * ow * 3;
  const norm = tfms.filter((t): t is NormalizeTfm => t.type === "Normalize");
  const data = new Float32Array(images.length * per);
  const lighting = tfms.filter((t): t is LightingAugTfm => t.type === "Lighting");
  const mats = new Float64Array(images.length * 9);
  for (let n = 0; n < images.length; n++) {
    const img = images[n]!;
    const offset = n * per;
    // 1. draw this image's matrix and lighting (the draws happen whether or not they apply, so a
    //    seed gives the same stream whatever the probabilities).
    const m = affine ? drawAffine(affine, img.width, img.height, train, rng) : IDENTITY;
    mats.set(m, n * 9);
    const post: PixelPost = {};
    if (train) {
      for (const t of lighting) {
        const bDraw = rng.uniform(0.5 * (1 - t.maxLighting), 0.5 * (1 + t.maxLighting));
        const b = rng.bernoulli(t.pLighting) ? bDraw : 0.5;
        const cDraw = Math.exp(rng.uniform(Math.log(1 - t.maxLighting), -Math.log(1 - t.maxLighting)));
        const c = rng.bernoulli(t.pLighting) ? cDraw : 1;
        if (b !== 0.5 || c !== 1) post.lut = makeLightingLut(b, c);
      }
    }
    // Several Normalize transforms compose into one affine per channel.
    if (norm.length) {
      let mean: [number, number, number] = [0, 0, 0];
      let inv: [number, number, number] = [1, 1, 1];
      for (const t of norm) {
        mean = [0, 1, 2].map((k) => mean[k]! + t.mean[k]! / inv[k]!) as [number, number, number];
        inv = [0, 1, 2].map((k) => inv[k]! / t.std[k]!) as [number, number, number];
      }
      post.mean = mean;
      post.invStd = inv;
    }
    const hasPost = post.lut !== undefined || post.mean !== undefined;
    // 2. one pass: resample (or copy) with lighting and normalisation fused.
    const same = img.width === ow && img.height === oh;
    if (same && m.every((v, i) => v === IDENTITY[i])) copyScaled(img, data, offset, hasPost ? post : undefined);
    else projectiveResample(img, m, oh, ow, affine?.padMode ?? "reflection", data, offset, hasPost ? post : undefined);
  }
  return { data, shape: [images.length, oh, ow, 3], mats };
}

function copyScaled(img: RawImage, out: Float32Array, offset: number, post?: PixelPost): void {
  const inv = 1 / 255;
  const d = img.data;
  for (let i = 0; i < d.length; i++) out[offset + i] = d[i]! * inv;
  if (post) applyPost(post, out, offset, d.length);
}

/** `(x - mean[c]) / std[c]` over an interleaved RGB float buffer. */
export function normalizeInPlace(data: Float32Array, mean: number[], std: number[]): void {
  const m0 = mean[0]!;
  const m1 = mean[1]!;
  const m2 = mean[2]!;
  const s0 = 1 / std[0]!;
  const s1 = 1 / std[1]!;
  const s2 = 1 / std[2]!;
  for (let i = 0; i < data.length; i += 3) {
    data[i] = (data[i]! - m0) * s0;
    data[i + 1] = (data[i + 1]! - m1) * s1;
    data[i + 2] = (data[i + 2]! - m2) * s2;
  }
}
