/**
 * Transform blocks (fastai's `TransformBlock`): each side of a sample — an image, a category, a
 * mask, points, numbers — is a block that says
 *   1. what it learns from the training labels (`setup`: a vocabulary, a count of values);
 *   2. how one item's raw value (from `getX` / `getY`) becomes a value (`load`);
 *   3. how values collate into a batch tensor (`collate`, batch transforms included);
 *   4. how a row of that tensor is shown (`show`) and described (`describe`).
 * The loader knows nothing else about them: a new kind of data is a new block, not a new case.
 *
 * Geometry is shared through the contexts: an image block records the item plans it decoded with
 * (`ItemContext.geometry`) and the batch matrix of each image (`BatchContext.affine`); a mask or
 * point block after it follows both, so image, mask and points move together.
 */
import * as fs from "node:fs";
import * as tf from "../engine/tf";
import type { BatchTfm } from "./augment";
import type { ImageMode } from "./decode";
import type { InferenceTarget } from "./inference";
import { maskThroughMatrix, maskThroughPlans, pixelsToUnit, pointsThroughMatrix, pointsThroughPlans, unitToPixels, type RawMask } from "./follow";
import { decodeMask, MaskDecodeError } from "./mask";
import type { RawImage } from "./pixels";
import type { Rng } from "./random";
import { runBatchTfms } from "./workers";
import type { ItemPlan, PadMode } from "./transforms";

/** The geometry of one item's image: its source size, the item plans it went through, its size after them. */
export interface ItemGeometry {
  srcWidth: number;
  srcHeight: number;
  plans: ItemPlan[];
  width: number;
  height: number;
}

/** What a block's `load` gets besides the raw value. */
export interface ItemContext {
  /** The item's index in its split's source. */
  readonly index: number;
  /** Whether random (training) transforms apply. */
  readonly train: boolean;
  /** This item's random stream (the image's item transforms draw from it). */
  readonly rng: Rng;
  /** A name for the item in messages (its file, or `item #i`). */
  readonly name: string;
  /**
   * Decode an image with the loader's item transforms, limits and cache; `null` when it cannot be
   * read (the loader skips the item and reports it). Sets `geometry`.
   */
  decodeImage(input: string | Buffer, mode: ImageMode): Promise<RawImage | null>;
  /** The geometry of this item's image, once an image block has loaded it. */
  geometry?: ItemGeometry;
}

/** What a block's `collate` gets besides the values. */
export interface BatchContext {
  readonly train: boolean;
  /** The batch transforms (augmentation, normalisation). */
  readonly batchTfms: readonly BatchTfm[];
  /** Seed of this batch's random draws. */
  readonly seed: number;
  /** Each item's image geometry (from its `ItemContext`). */
  readonly geometry: readonly (ItemGeometry | undefined)[];
  /** Set by an image block's collate: each image's batch matrix (9 floats from 9n), the output size, the padding. */
  affine?: { mats: Float64Array; height: number; width: number; padMode: PadMode };
}

/** A batch tensor's values on the host: the loader makes the tensor when the batch is consumed (prefetched batches hold no tensors). */
export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: "float32" | "int32";
}

/** One cell of `showBatch` / `showResults`: an HWC float RGB picture in [0, 1] and title lines. */
export interface ShowCell {
  image?: { data: Float32Array; height: number; width: number };
  titles: string[];
  /** Colours drawn on the picture and what they mean (a mask's classes), for the grid's legend. */
  legend?: { label: string; colour: [number, number, number] }[];
}

/** A transform block (fastai's `TransformBlock`). `V` is the value of one item after `load`. */
export interface TransformBlock<V = unknown> {
  /** What the block holds: "image", "category", "multicategory", "regression", "points", "mask", ... */
  readonly kind: string;
  /** Classes (category blocks) or codes (masks), once known. */
  readonly vocab?: string[];
  /** Model outputs this block asks for as a target: classes, codes, or values. */
  readonly c?: number;
  /** True when the block follows an image's geometry (it must come after an `ImageBlock`). */
  readonly followsImage?: boolean;
  /** True when the raw value is an image file to check when the loaders are built. */
  readonly isImage?: boolean;
  /** An image block's colour mode ("L": decoded grey, one channel), which inference repeats. */
  readonly imageMode?: ImageMode;
  /** A mask block's code that metrics should ignore (its index), e.g. `foregroundAcc({ bkgIdx: dls.voidIndex })`. */
  readonly voidIndex?: number;
  /**
   * Learn from the raw values (`train`: the training split's indices) and return the configured
   * block, or throw naming the item (`name(i)`) and what to fix; `valid` (the validation indices)
   * are checked too, so a bad label fails when the loaders are built, not mid-training.
   */
  setup?(raws: readonly unknown[], train: readonly number[], name: (i: number) => string, valid: readonly number[]): TransformBlock<V> | Promise<TransformBlock<V>>;
  /** One item's value; `null` when its file is unreadable (the item is skipped). */
  load(raw: unknown, ctx: ItemContext): Promise<V | null> | V;
  /** The batch of `values`, as host data the loader turns into a tensor. */
  collate(values: V[], ctx: BatchContext): Promise<HostTensor> | HostTensor;
  /** Draw row `r` of `data` (a collated tensor's values, of `shape`) onto a cell. */
  show(cell: ShowCell, data: ArrayLike<number>, shape: readonly number[], r: number): void;
  /** The raw value as label text (for `DataLoader.labels`). */
  label?(raw: unknown): string | string[];
  /**
   * A target block's reading of the model's activations (the loss's activation already applied) in
   * the form `collate` gives targets (`targetShape`): class indices, multi-hot rows at `thresh`,
   * points [bs, n, 2], mask indices [bs, h, w]. Default: the activations reshaped.
   */
  decodeOutput?(act: tf.Tensor, targetShape: readonly number[], thresh?: number): tf.Tensor;
  /**
   * What an exported model's output is, for `predict` after `loadLearner`: `null` for classes (the
   * vocab says it all), a target description otherwise. A target block without it cannot be exported.
   */
  exportTarget?(): InferenceTarget | null;
}

/** What every block has: its kind. (A bare `{ kind }`, with no `load` and `collate`, is refused by `DataBlock` with a message.) */
export interface Block {
  readonly kind: string;
}

/** A block, or a block factory called with no options (`CategoryBlock` as well as `CategoryBlock({ vocab })`). */
export type BlockArg = TransformBlock | Block | (() => TransformBlock);

/** Sorted like fastai's `CategoryMap`: numbers numerically, otherwise by string. */
export function sortVocab(labels: Iterable<string>): string[] {
  const xs = [...new Set(labels)];
  const allNum = xs.every((s) => s.trim() !== "" && Number.isFinite(Number(s)));
  return allNum ? xs.sort((a, b) => Number(a) - Number(b)) : xs.sort();
}

function rowSize(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// Images

/** Options of `ImageBlock`. */
export interface ImageBlockOptions {
  /** `"RGB"` (3 channels) or `"grey"` (fastai's `PILImageBW`: decoded grey, one channel). Default `"RGB"`. */
  cls?: "RGB" | "grey";
}

/** An image input (fastai's `ImageBlock`): batches are float32 NHWC, augmented and normalised by the batch transforms. */
export function ImageBlock(opts: ImageBlockOptions = {}): TransformBlock<RawImage> {
  const cls = opts.cls ?? "RGB";
  if (cls !== "RGB" && cls !== "grey") throw new Error(`ImageBlock: cls must be "RGB" or "grey", got ${JSON.stringify(cls)}`);
  const grey = cls === "grey";
  return {
    kind: grey ? "image-grey" : "image",
    isImage: true,
    imageMode: grey ? "L" : "RGB",
    load(raw, ctx) {
      if (typeof raw !== "string" && !Buffer.isBuffer(raw)) {
        throw new Error(`ImageBlock: the input of ${ctx.name} is ${typeof raw}; getX must give a file path or the file's bytes`);
      }
      return ctx.decodeImage(raw, grey ? "L" : "RGB");
    },
    async collate(values, ctx) {
      const res = await runBatchTfms(values, ctx.batchTfms, ctx.train, ctx.seed);
      const affine = ctx.batchTfms.find((t) => t.type === "AffineAug");
      ctx.affine = { mats: res.mats, height: res.shape[1], width: res.shape[2], padMode: affine?.type === "AffineAug" ? affine.padMode : "reflection" };
      if (!grey) return { data: res.data, shape: res.shape, dtype: "float32" };
      // Grey decodes into three equal channels (so the batch transforms run unchanged): keep one.
      const one = new Float32Array(res.data.length / 3);
      for (let p = 0; p < one.length; p++) one[p] = res.data[3 * p]!;
      return { data: one, shape: [res.shape[0], res.shape[1], res.shape[2], 1], dtype: "float32" };
    },
    show(cell, data, shape, r) {
      const [, h, w, ch] = shape as [number, number, number, number];
      const out = new Float32Array(h * w * 3);
      const base = r * h * w * ch;
      for (let p = 0; p < h * w; p++) for (let k = 0; k < 3; k++) out[p * 3 + k] = data[base + p * ch + (ch === 1 ? 0 : k)]!;
      cell.image = { data: out, height: h, width: w };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Categories

function categoryIndex(vocab: string[]): Map<string, number> {
  return new Map(vocab.map((v, k) => [v, k]));
}

function notInVocab(label: string, vocab: string[], name: string): Error {
  return new Error(`label "${label}" of ${name} is not in the vocab [${vocab.join(", ")}]`);
}

/** A single-label category target (fastai's `CategoryBlock`); `vocab` fixes the classes and their order. */
export function CategoryBlock(opts: { vocab?: string[] } = {}): TransformBlock<number> {
  const vocab = opts.vocab?.slice();
  const index = vocab && categoryIndex(vocab);
  return {
    kind: "category",
    ...(vocab ? { vocab, c: vocab.length } : {}),
    label: (raw) => String(raw),
    setup(raws, train, name, valid) {
      const labels = raws.map((y) => {
        if (Array.isArray(y)) throw new Error(`DataBlock: getY gave several labels ${JSON.stringify(y)} for a CategoryBlock; use MultiCategoryBlock`);
        return String(y);
      });
      // An empty label would become a class named "".
      const blank = labels.flatMap((l, i) => (l === "" ? [i] : []));
      if (blank.length) {
        const shown = blank.slice(0, 5).map(name).join(", ");
        throw new Error(`DataBlock: getY gave an empty label for ${blank.length} item${blank.length === 1 ? "" : "s"} (${shown}${blank.length > 5 ? ", ..." : ""}); label or remove them`);
      }
      const v = vocab ?? sortVocab(train.map((i) => labels[i]!));
      if (!vocab && v.length < 2) throw new Error(`DataBlock: only one class (${JSON.stringify(v[0])}) in the training set; a classifier needs at least 2`);
      const known = new Set(v);
      for (const i of [...train, ...valid]) if (!known.has(labels[i]!)) throw notInVocab(labels[i]!, v, name(i));
      return vocab ? this : CategoryBlock({ vocab: v });
    },
    load(raw, ctx) {
      if (!index) throw new Error("CategoryBlock: no vocab (DataBlock sets it up from the training labels)");
      const k = index.get(String(raw));
      if (k === undefined) throw notInVocab(String(raw), vocab!, ctx.name);
      return k;
    },
    collate: (values) => ({ data: Int32Array.from(values), shape: [values.length], dtype: "int32" }),
    decodeOutput: (act) => tf.tidy(() => tf.argMax(act, -1)),
    exportTarget: () => null,
    show(cell, data, _shape, r) {
      const k = data[r]!;
      cell.titles.push(vocab?.[k] ?? String(k));
    },
  };
}

/** A multi-label target: a set of categories per item (fastai's `MultiCategoryBlock`); batches are multi-hot float32 [bs, c]. */
export function MultiCategoryBlock(opts: { vocab?: string[] } = {}): TransformBlock<number[]> {
  const vocab = opts.vocab?.slice();
  const index = vocab && categoryIndex(vocab);
  const asList = (y: unknown): string[] => (Array.isArray(y) ? y.map(String) : [String(y)]);
  return {
    kind: "multicategory",
    ...(vocab ? { vocab, c: vocab.length } : {}),
    label: asList,
    setup(raws, train, name, valid) {
      const v = vocab ?? sortVocab(train.flatMap((i) => asList(raws[i])));
      const known = new Set(v);
      for (const i of [...train, ...valid]) for (const l of asList(raws[i])) if (!known.has(l)) throw notInVocab(l, v, name(i));
      return vocab ? this : MultiCategoryBlock({ vocab: v });
    },
    load(raw, ctx) {
      if (!index) throw new Error("MultiCategoryBlock: no vocab (DataBlock sets it up from the training labels)");
      return asList(raw).map((l) => {
        const k = index.get(l);
        if (k === undefined) throw notInVocab(l, vocab!, ctx.name);
        return k;
      });
    },
    collate(values) {
      const c = vocab!.length;
      const hot = new Float32Array(values.length * c);
      values.forEach((ks, r) => ks.forEach((k) => (hot[r * c + k] = 1)));
      return { data: hot, shape: [values.length, c], dtype: "float32" };
    },
    decodeOutput: (act, _shape, thresh = 0.5) => tf.tidy(() => tf.cast(tf.greater(act, thresh), "float32")),
    exportTarget: () => null,
    show(cell, data, shape, r) {
      const c = shape[1]!;
      const on = vocab!.filter((_, k) => data[r * c + k]! > 0.5);
      cell.titles.push(on.join(";"));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Numbers

function numbersOf(raw: unknown, what: string, name: string): number[] {
  const xs = typeof raw === "number" ? [raw] : Array.isArray(raw) ? (raw.flat(2) as unknown[]) : ArrayBuffer.isView(raw) ? Array.from(raw as Float32Array) : undefined;
  if (!xs || xs.length === 0 || !xs.every((v) => typeof v === "number" && Number.isFinite(v))) {
    throw new Error(`${what}: the target of ${name} must be finite numbers, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  }
  return xs as number[];
}

/** Float targets, any count per item (fastai's `RegressionBlock`); batches are float32 [bs, n]. */
export function RegressionBlock(opts: { nOut?: number } = {}): TransformBlock<number[]> {
  const nOut = opts.nOut;
  return {
    kind: "regression",
    ...(nOut === undefined ? {} : { c: nOut }),
    label: (raw) => String(raw),
    setup(raws, _train, name) {
      const n = nOut ?? numbersOf(raws[0], "RegressionBlock", name(0)).length;
      const want = nOut === undefined ? `${name(0)} has ${n}` : `nOut is ${n}`;
      raws.forEach((y, i) => {
        const m = numbersOf(y, "RegressionBlock", name(i)).length;
        if (m !== n) throw new Error(`RegressionBlock: ${name(i)} has ${m} values, ${want}; every item needs the same count`);
      });
      return nOut === undefined ? RegressionBlock({ nOut: n }) : this;
    },
    load: (raw, ctx) => numbersOf(raw, "RegressionBlock", ctx.name),
    exportTarget() {
      if (nOut === undefined) throw new Error("RegressionBlock: not set up (DataBlock counts the values)");
      return { kind: "regression", n: nOut };
    },
    collate(values) {
      const n = values[0]!.length;
      return { data: Float32Array.from(values.flat()), shape: [values.length, n], dtype: "float32" };
    },
    show(cell, data, shape, r) {
      const n = rowSize(shape);
      cell.titles.push(Array.from({ length: n }, (_, k) => Number(data[r * n + k]!.toPrecision(4))).join(", "));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Points

/**
 * Key points (fastai's `PointBlock`): `getY` gives [x, y] pairs (or a flat x0, y0, x1, y1, ...
 * list) in pixels of the original image, x to the right and y down, (0, 0) its top-left corner and
 * (width, height) its bottom-right one (so pixel i spans [i, i + 1) and its centre is i + 0.5), as
 * fastai and most annotation tools count. Batches are float32 [bs, n, 2] in [-1, 1] (−1 the centre
 * of the first pixel, 1 of the last, the resampler's grid), moved by exactly the crops, resizes,
 * flips, rotations, zooms and warps of their image.
 */
export function PointBlock(opts: { n?: number } = {}): TransformBlock<Float32Array> {
  const n = opts.n;
  return {
    kind: "points",
    followsImage: true,
    ...(n === undefined ? {} : { c: n * 2 }),
    label: (raw) => JSON.stringify(raw),
    setup(raws, _train, name) {
      const count = (i: number) => {
        const xs = numbersOf(raws[i], "PointBlock", name(i));
        if (xs.length % 2) throw new Error(`PointBlock: ${name(i)} has ${xs.length} coordinates; give x, y pairs`);
        return xs.length / 2;
      };
      const k = n ?? count(0);
      const want = n === undefined ? `${name(0)} has ${k}` : `n is ${k}`;
      raws.forEach((_, i) => {
        if (count(i) !== k) throw new Error(`PointBlock: ${name(i)} has ${count(i)} points, ${want}; every item needs the same number`);
      });
      return n === undefined ? PointBlock({ n: k }) : this;
    },
    load(raw, ctx) {
      const g = ctx.geometry;
      if (!g) throw new Error("PointBlock: no image to follow; put an ImageBlock before it in blocks");
      // corner-based coordinates → the resamplers' pixel-centre ones
      const pts = Float32Array.from(numbersOf(raw, "PointBlock", ctx.name), (v) => v - 0.5);
      return pointsThroughPlans(pts, g.srcWidth, g.srcHeight, g.plans);
    },
    collate(values, ctx) {
      const a = ctx.affine;
      const k = values[0]!.length / 2;
      const out = new Float32Array(values.length * k * 2);
      values.forEach((pts, r) => {
        const g = ctx.geometry[r]!;
        const unit = pixelsToUnit(pts.slice(), g.width, g.height);
        out.set(a ? pointsThroughMatrix(unit, a.mats.subarray(9 * r, 9 * r + 9)) : unit, r * k * 2);
      });
      return { data: out, shape: [values.length, k, 2], dtype: "float32" };
    },
    exportTarget() {
      if (n === undefined) throw new Error("PointBlock: not set up (DataBlock counts the points)");
      return { kind: "points", n };
    },
    show(cell, data, shape, r) {
      const img = cell.image;
      const k = shape[1]!;
      const pts = Float32Array.from({ length: 2 * k }, (_, j) => data[r * 2 * k + j]!);
      if (!img) {
        cell.titles.push(Array.from(pts, (v) => v.toFixed(2)).join(", "));
        return;
      }
      unitToPixels(pts, img.width, img.height);
      for (let j = 0; j < k; j++) drawMarker(img, pts[2 * j]!, pts[2 * j + 1]!);
    },
  };
}

/** A red cross with a white outline, 2 px from its centre, at pixel (x, y). */
function drawMarker(img: { data: Float32Array; height: number; width: number }, x: number, y: number): void {
  const cx = Math.round(x);
  const cy = Math.round(y);
  const put = (px: number, py: number, rgb: [number, number, number]) => {
    if (px < 0 || py < 0 || px >= img.width || py >= img.height) return;
    img.data.set(rgb, (py * img.width + px) * 3);
  };
  for (let d = -3; d <= 3; d++) {
    put(cx + d, cy - 1, [1, 1, 1]);
    put(cx + d, cy + 1, [1, 1, 1]);
    put(cx - 1, cy + d, [1, 1, 1]);
    put(cx + 1, cy + d, [1, 1, 1]);
  }
  for (let d = -3; d <= 3; d++) {
    put(cx + d, cy, [1, 0, 0]);
    put(cx, cy + d, [1, 0, 0]);
  }
}

// ---------------------------------------------------------------------------------------------
// Masks

/** Options of `MaskBlock`. */
export interface MaskBlockOptions {
  /** The class of each index (index 0 first); a mask value at or past `codes.length` is an error. */
  codes: string[];
  /** The code metrics ignore (e.g. "Void"), if any. */
  voidCode?: string;
}

/** Colours of mask classes in `show` (class 0, the background, is left clear). */
const MASK_COLOURS: [number, number, number][] = [
  [0, 0, 0], [0.9, 0.1, 0.1], [0.1, 0.6, 0.9], [0.1, 0.8, 0.2], [0.95, 0.75, 0.1], [0.7, 0.2, 0.9], [0.1, 0.9, 0.9], [0.95, 0.5, 0.1],
  [0.6, 0.4, 0.2], [0.9, 0.4, 0.7], [0.5, 0.5, 0.5], [0.5, 0.8, 0.1],
];

/** The colour `show` gives mask class `k`. */
export function maskColour(k: number): [number, number, number] {
  return MASK_COLOURS[k % MASK_COLOURS.length]!;
}

/**
 * A segmentation target (fastai's `MaskBlock`): `getY` gives a PNG of class indices (grey, or a
 * palette whose index is the class). Resampled nearest-neighbour with its image's geometry (never a
 * class the mask lacks), untouched by lighting and normalisation; batches are int32 [bs, h, w].
 */
export function MaskBlock(opts: MaskBlockOptions): TransformBlock<RawMask> {
  if (!opts || !Array.isArray(opts.codes) || opts.codes.length < 2) {
    throw new Error("MaskBlock: codes must list the class of each mask value (at least 2, background first), e.g. MaskBlock({ codes: [\"background\", \"cat\"] })");
  }
  if (opts.codes.length > 256) throw new Error(`MaskBlock: at most 256 codes (masks are 8-bit), got ${opts.codes.length}`);
  if (opts.voidCode !== undefined && !opts.codes.includes(opts.voidCode)) {
    throw new Error(`MaskBlock: voidCode "${opts.voidCode}" is not one of the codes [${opts.codes.join(", ")}]`);
  }
  const codes = opts.codes.slice();
  return {
    kind: "mask",
    vocab: codes,
    c: codes.length,
    followsImage: true,
    ...(opts.voidCode === undefined ? {} : { voidIndex: codes.indexOf(opts.voidCode) }),
    async setup(raws, train, name, valid) {
      // Every mask file of both splits exists and is an image, now rather than mid-training
      // (its size and values are checked against its image as it loads).
      const missing: string[] = [];
      await Promise.all([...train, ...valid].map(async (i) => {
        const m = raws[i];
        if (typeof m !== "string") return;
        try {
          await fs.promises.access(m, fs.constants.R_OK);
        } catch {
          missing.push(`${JSON.stringify(m)} (the mask of ${name(i)})`);
        }
      }));
      if (missing.length) {
        throw new Error(`MaskBlock: ${missing.length} mask file${missing.length === 1 ? " is" : "s are"} missing or unreadable: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}; check getY (or labelFunc)`);
      }
      return this;
    },
    label: (raw) => (typeof raw === "string" ? raw : "<mask>"),
    async load(raw, ctx) {
      const g = ctx.geometry;
      if (!g) throw new Error("MaskBlock: no image to follow; put an ImageBlock before it in blocks");
      if (typeof raw !== "string" && !Buffer.isBuffer(raw)) {
        throw new Error(`MaskBlock: the target of ${ctx.name} is ${typeof raw}; getY must give the mask file's path or bytes`);
      }
      let m: RawMask;
      try {
        m = await decodeMask(raw);
      } catch (e) {
        if (e instanceof MaskDecodeError) throw new Error(`MaskBlock: ${e.message} (the mask of ${ctx.name})`);
        throw e;
      }
      if (m.width !== g.srcWidth || m.height !== g.srcHeight) {
        throw new Error(`MaskBlock: the mask of ${ctx.name} is ${m.width}×${m.height} but its image is ${g.srcWidth}×${g.srcHeight}; they must match`);
      }
      let top = 0;
      for (const v of m.data) if (v > top) top = v;
      if (top >= codes.length) {
        throw new Error(`MaskBlock: the mask of ${ctx.name} has value ${top}, but there are only ${codes.length} codes [${codes.join(", ")}]; add the missing codes`);
      }
      return maskThroughPlans(m, g.plans);
    },
    collate(values, ctx) {
      const a = ctx.affine;
      const [oh, ow] = a ? [a.height, a.width] : [values[0]!.height, values[0]!.width];
      const out = new Int32Array(values.length * oh * ow);
      const identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
      values.forEach((m, r) => {
        if (!a && (m.width !== ow || m.height !== oh)) {
          throw new Error(`masks in a batch differ in size (${ow}×${oh} and ${m.width}×${m.height}): add an item transform such as itemTfms: [Resize(128)]`);
        }
        maskThroughMatrix(m, a ? a.mats.subarray(9 * r, 9 * r + 9) : identity, oh, ow, a?.padMode ?? "zeros", out, r * oh * ow);
      });
      return { data: out, shape: [values.length, oh, ow], dtype: "int32" };
    },
    decodeOutput: (act) => tf.tidy(() => tf.argMax(act, -1)),
    exportTarget: () => ({ kind: "mask", codes: codes.slice() }),
    show(cell, data, shape, r) {
      const [, h, w] = shape as [number, number, number];
      const base = r * h * w;
      const img = cell.image ?? { data: new Float32Array(h * w * 3), height: h, width: w };
      if (img.height !== h || img.width !== w) return;
      const seen = new Set<number>();
      for (let p = 0; p < h * w; p++) {
        const k = data[base + p]!;
        if (k === 0) continue;
        seen.add(k);
        const c = maskColour(k);
        for (let j = 0; j < 3; j++) img.data[p * 3 + j] = 0.5 * img.data[p * 3 + j]! + 0.5 * c[j]!;
      }
      cell.image = img;
      cell.legend = [...(cell.legend ?? []), ...[...seen].sort((a, b) => a - b).map((k) => ({ label: codes[k] ?? String(k), colour: maskColour(k) }))];
    },
  };
}
