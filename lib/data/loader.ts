/**
 * `DataLoader` and `DataLoaders`: items → decoded (concurrently, ahead of the training step) →
 * augmented batches `{ xb, yb }` as tensors. `dls.inferenceSpec()` describes the validation
 * pipeline for `inference.ts`, which runs it on new inputs.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { showImageGrid, type GridOptions } from "../display/image";
import { escapeHtml, showBundle } from "../display/display";
import type { BatchTfm, NormalizeTfm } from "./augment";
import type { BatchContext, HostTensor, ItemContext, ItemGeometry, ShowCell, TransformBlock } from "./blocks";
import { ImageCache, type CacheKind } from "./cache";
import { decodeImage, ImageDecodeError, withoutUpscale, type DecodeOptions, type DecodeRecord, type ImageMode } from "./decode";
import { applyPlanJs, type RawImage } from "./pixels";
import { Rng } from "./random";
import { upscaleIsRedundant, type InferenceSpec } from "./inference";
import { markOwned } from "./workers";
import { planItemTfm, splitForCache, type ItemTfm } from "./transforms";

/**
 * A batch: one tensor per block, collated by the block (images float32 NHWC; categories int32
 * [bs]; multi-hot float32 [bs, c]; points float32 [bs, n, 2]; masks int32 [bs, h, w]; ...).
 * `xb` is the first input and `yb` the first target; `xs` and `ys` hold every input and target
 * (the same tensor objects), for data with several (`nInp`). The consumer disposes them all.
 */
export interface Batch {
  xb: tf.Tensor4D;
  yb: tf.Tensor;
  xs: tf.Tensor[];
  ys: tf.Tensor[];
}

/** The loaders' defaults (fastai's, where fastai has one); `LoaderOptions` documents each field. */
export const loaderDefaults = {
  bs: 64,
  shuffle: true,
  dropLast: true,
  seed: 42,
  numWorkers: 8,
  prefetch: 2,
  cache: false,
  checkFiles: true,
} as const;

/** Options shared by the loaders (every field optional; defaults in `loaderDefaults`). */
export interface LoaderOptions {
  /** Batch size. Default 64 (`loaderDefaults.bs`). */
  bs?: number;
  /** Validation batch size. Default `bs`. */
  valBs?: number;
  /** Shuffle the training set each epoch. Default true, `loaderDefaults.shuffle` (the validation set is never shuffled). */
  shuffle?: boolean;
  /** Drop the last incomplete training batch (kept when it would leave no batch at all). Default true (`loaderDefaults.dropLast`). */
  dropLast?: boolean;
  /** Seed for shuffling and augmentation. Default 42 (`loaderDefaults.seed`). */
  seed?: number;
  /** Images decoded at once. Default 8 (`loaderDefaults.numWorkers`). */
  numWorkers?: number;
  /** Batches decoded ahead of the one being consumed. Default 2 (`loaderDefaults.prefetch`). */
  prefetch?: number;
  /**
   * Keep presized images (`memory`, or `disk` under `cacheDir`; `true` means memory) so later
   * epochs skip decoding: all of valid, and on train the image resized to cover a cropping
   * `Resize` (the random crop is cut from it each epoch). Default false (`loaderDefaults.cache`).
   */
  cache?: CacheKind | boolean;
  /** Folder of the disk cache. Default `$TMPDIR/tsfast-cache`. */
  cacheDir?: string;
  /** Refuse images with more pixels than this. Default 178,956,970. */
  maxPixels?: number;
  /**
   * Check every file when the loaders are built (`probeImage`: header read, 0.4-0.7 ms a file here, once per process for an unchanged file)
   * and leave the unreadable ones out, with one warning. Default true (`loaderDefaults.checkFiles`).
   */
  checkFiles?: boolean;
}

/** What a `DataLoader` is built from: the blocks (set up), and each block's raw value per item. */
export interface LoaderSource {
  /** `raws[b][i]`: what block `b`'s getter gave for item `i`. */
  raws: unknown[][];
  /** The blocks, inputs first (set up by `DataBlock`). */
  blocks: TransformBlock[];
  /** How many blocks are inputs. */
  nInp: number;
  itemTfms: ItemTfm[];
  batchTfms: BatchTfm[];
}

/** Derive a 32-bit seed from a base seed and integers (for per-epoch, per-item streams). */
function subSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p | 0), 0x01000193);
    h = Math.imul(h ^ Math.floor(p / 4294967296), 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** Run async tasks with at most `n` in flight. */
class Limiter {
  private active = 0;
  private queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((res) => this.queue.push(res));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** How a `DataLoader` is made (the factories fill it from `LoaderOptions`). */
export interface DataLoaderInit {
  bs: number;
  shuffle: boolean;
  train: boolean;
  dropLast: boolean;
  seed: number;
  numWorkers: number;
  prefetch: number;
  cache: CacheKind | boolean;
  cacheDir?: string;
  maxPixels?: number;
  /** The dataset's record of unreadable images, shared by its loaders. Default: one of its own. */
  unreadable?: UnreadableImages;
}

/**
 * The unreadable images of one dataset, shared by its train and valid loaders and their `new()`
 * copies, so each image is reported once per dataset, not again by every loader that meets it.
 */
export class UnreadableImages {
  private readonly reported = new Set<string | Buffer>();

  /** Warn once, in one line, about the `inputs` (named `names`) not reported before. */
  report(inputs: readonly (string | Buffer)[], names: readonly string[]): void {
    const fresh = names.filter((_, k) => !this.reported.has(inputs[k]!));
    inputs.forEach((x) => this.reported.add(x));
    if (fresh.length === 0) return;
    console.warn(
      `tsfast: skipped ${fresh.length} unreadable image${fresh.length === 1 ? "" : "s"} ` + `(left out from now on): ${fresh.join(", ")}`,
    );
  }
}

let cacheNoticeShown = false;

/** Batches of one split: an `AsyncIterable<Batch>` that decodes ahead and skips unreadable images. */
export class DataLoader implements AsyncIterable<Batch> {
  /** The item of each row as a string (file path, or `<buffer #i>`). */
  readonly items: string[];
  /** Label of each item (string, or strings when multi-label). */
  readonly labels: (string | string[])[];
  /** Number of items. */
  readonly n: number;
  /** Batch size. */
  readonly bs: number;
  /** Whether batches are shuffled (train only). */
  readonly shuffle: boolean;
  /** Whether this loader applies random (training) transforms. */
  readonly train: boolean;
  /** Files found unreadable so far (skipped from then on). */
  readonly bad = new Set<number>();
  private readonly dropLast: boolean;
  private readonly seed: number;
  private readonly limiter: Limiter;
  private readonly prefetch: number;
  private readonly cache: ImageCache | undefined;
  private readonly decodeOpts: DecodeOptions;
  private readonly unreadable: UnreadableImages;
  /** Whether a block follows an image's geometry (then decodes record their plans and skip the cache). */
  private readonly follows: boolean;
  private epoch = 0;

  constructor(
    readonly source: LoaderSource,
    private readonly opts: DataLoaderInit,
    sharedCache?: ImageCache,
  ) {
    if (!(Number.isInteger(opts.bs) && opts.bs > 0)) throw new Error(`bs must be a positive integer, got ${opts.bs}`);
    const first = source.raws[0] ?? [];
    this.items = first.map((x, i) => (typeof x === "string" ? x : Buffer.isBuffer(x) ? `<buffer #${i}>` : `item #${i}`));
    const target = source.blocks[source.nInp];
    const targetRaws = source.raws[source.nInp] ?? [];
    this.labels = targetRaws.map((y) => (target?.label ? target.label(y) : String(y)));
    this.n = first.length;
    this.follows = source.blocks.some((b) => b.followsImage);
    if (this.follows && opts.cache && opts.train && !cacheNoticeShown) {
      cacheNoticeShown = true;
      console.warn("tsfast: cache is off for data with points or masks (a cached image does not keep the crops its points and masks must follow)");
    }
    this.bs = opts.bs;
    this.shuffle = opts.shuffle;
    this.train = opts.train;
    this.dropLast = opts.dropLast;
    this.seed = opts.seed;
    this.limiter = new Limiter(Math.max(1, opts.numWorkers));
    this.prefetch = Math.max(0, opts.prefetch);
    const kind = opts.cache === true ? "memory" : opts.cache;
    this.cache = sharedCache ?? (kind ? new ImageCache(kind, opts.cacheDir) : undefined);
    this.decodeOpts = opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels };
    this.unreadable = opts.unreadable ?? new UnreadableImages();
  }

  /**
   * A copy with other options (fastai's `dl.new`), sharing items, transforms, cache and the set
   * of unreadable images found so far; e.g. `dls.train.new({ shuffle: false, train: false })`
   * gives the training items in order with validation transforms.
   */
  new(opts: { shuffle?: boolean; dropLast?: boolean; train?: boolean; bs?: number } = {}): DataLoader {
    const dl = new DataLoader(
      this.source,
      {
        ...this.opts,
        bs: opts.bs ?? this.bs,
        shuffle: opts.shuffle ?? this.shuffle,
        dropLast: opts.dropLast ?? this.dropLast,
        train: opts.train ?? this.train,
        unreadable: this.unreadable,
      },
      this.cache,
    );
    for (const i of this.bad) dl.bad.add(i);
    return dl;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.n - this.bad.size;
    if (this.dropLast && n >= this.bs) return Math.floor(n / this.bs);
    return Math.ceil(n / this.bs);
  }

  /** Item transforms of this loader. */
  get itemTfms(): ItemTfm[] {
    return this.source.itemTfms;
  }

  /** Batch transforms of this loader. */
  get batchTfms(): BatchTfm[] {
    return this.source.batchTfms;
  }

  /** Item `i`'s (first) image after the validation item transforms, float [0, 1], un-normalised (caller disposes). */
  async loadImage(i: number): Promise<tf.Tensor3D> {
    await ready();
    const k = this.source.blocks.findIndex((b) => b.isImage);
    const input = k < 0 ? undefined : this.source.raws[k]![i];
    if (k < 0) throw new Error("loadImage: this loader has no image block");
    if (input === undefined) throw new Error(`loadImage: index ${i} out of range (0..${this.n - 1})`);
    const mode = this.source.blocks[k]!.imageMode ?? "RGB";
    const img = await decodeImage(input as string | Buffer, this.source.itemTfms, false, new Rng(0), { ...this.decodeOpts, mode });
    return rawToTensor(img);
  }

  /** Decode image `input` of item `i` (cache, limits, item transforms); records its geometry in `ctx` when blocks follow it. */
  private async decodeItem(i: number, input: string | Buffer, mode: ImageMode, rng: Rng, ctx: { geometry?: ItemGeometry }): Promise<RawImage | null> {
    const tfms = this.source.itemTfms;
    const noUpscale = upscaleIsRedundant(tfms, this.source.batchTfms);
    const record: DecodeRecord | undefined = this.follows ? { srcWidth: 0, srcHeight: 0, plans: [] } : undefined;
    const opts: DecodeOptions = { ...this.decodeOpts, noUpscale, mode, ...(record ? { record } : {}) };
    try {
      // A cached image does not carry its plans: with followers (masks, points), decode every time.
      const split = this.cache && !record ? splitForCache(tfms, this.train) : undefined;
      if (!this.cache || !split) {
        const img = await this.limiter.run(() => decodeImage(input, tfms, this.train, rng, opts));
        if (record) ctx.geometry = { ...record, width: img.width, height: img.height };
        return markOwned(img);
      }
      // The cached (deterministic) part, then the random rest in JavaScript.
      const recipe = JSON.stringify({ tfms: split.cached, noUpscale, maxPixels: this.decodeOpts.maxPixels ?? null, ...(mode === "RGB" ? {} : { mode }) });
      let img = this.cache.get(i, input, recipe);
      if (!img) {
        const base = await this.limiter.run(() => decodeImage(input, split.cached, this.train, rng, opts));
        this.cache.set(i, input, recipe, base);
        img = base;
      }
      for (const [k, t] of split.rest.entries()) {
        let plan = planItemTfm(t, img.width, img.height, this.train, rng);
        if (noUpscale && k === split.rest.length - 1) plan = withoutUpscale(plan, img.width, img.height);
        img = applyPlanJs(img, plan);
      }
      return img;
    } catch (e) {
      if (e instanceof ImageDecodeError) return null;
      throw e;
    }
  }

  /** Item `i`'s value for every block, in block order; `null` when its image is unreadable. */
  private async loadItem(i: number, rng: Rng): Promise<{ values: unknown[]; geometry?: ItemGeometry } | null> {
    const name = this.items[i]!;
    const ctx: ItemContext = {
      index: i,
      train: this.train,
      rng,
      name: name.startsWith("<") || name.startsWith("item #") ? name : `"${name}"`,
      decodeImage: (input, mode) => this.decodeItem(i, input, mode, rng, ctx),
    };
    const values: unknown[] = [];
    for (const [b, block] of this.source.blocks.entries()) {
      const v = await block.load(this.source.raws[b]![i], ctx);
      if (v === null) return null;
      values.push(v);
    }
    return ctx.geometry ? { values, geometry: ctx.geometry } : { values };
  }

  /** The order of one epoch, as batches of item indices. */
  private epochBatches(epoch: number): number[][] {
    let order = Array.from({ length: this.n }, (_, i) => i).filter((i) => !this.bad.has(i));
    if (this.shuffle) order = new Rng(subSeed(this.seed, epoch, 1)).shuffle(order);
    const out: number[][] = [];
    for (let s = 0; s < order.length; s += this.bs) out.push(order.slice(s, s + this.bs));
    const last = out[out.length - 1];
    if (this.dropLast && out.length > 1 && last && last.length < this.bs) out.pop();
    return out;
  }

  /** Iterate one epoch; each call to the iterator starts the next epoch (new shuffle and augmentation). */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    await ready();
    const epoch = this.epoch++;
    const batches = this.epochBatches(epoch);
    const newlyBad: number[] = [];
    type Ready = { good: number[]; tensors: HostTensor[] | undefined };
    const started: Promise<Ready>[] = [];
    // Batch k: load its items (bounded concurrency for decoding), set aside unreadable ones, then
    // collate each block (an image block runs the batch transforms in the data worker), all ahead
    // of the consumer.
    const start = (k: number): void => {
      const idx = batches[k]!;
      const p = Promise.all(idx.map((i, j) => this.loadItem(i, new Rng(subSeed(this.seed, epoch, 2, k, j))))).then(async (loaded) => {
        const good: number[] = [];
        const kept: { values: unknown[]; geometry?: ItemGeometry }[] = [];
        loaded.forEach((it, j) => {
          const i = idx[j]!;
          if (it) {
            good.push(i);
            kept.push(it);
          } else if (!this.bad.has(i)) {
            this.bad.add(i);
            newlyBad.push(i);
          }
        });
        if (good.length === 0) return { good, tensors: undefined };
        const ctx: BatchContext = {
          train: this.train,
          batchTfms: this.source.batchTfms,
          seed: subSeed(this.seed, epoch, 3, k),
          geometry: kept.map((it) => it.geometry),
        };
        const tensors: HostTensor[] = [];
        for (const [b, block] of this.source.blocks.entries()) tensors.push(await block.collate(kept.map((it) => it.values[b]), ctx));
        return { good, tensors };
      });
      p.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection if iteration stops early
      started[k] = p;
    };
    let yielded = 0;
    try {
      for (let k = 0; k < batches.length; k++) {
        for (let a = k; a <= Math.min(batches.length - 1, k + this.prefetch); a++) if (!started[a]) start(a);
        const { tensors: host } = await started[k]!;
        if (!host) continue;
        yielded++;
        const tensors = host.map((h) => tf.tensor(h.data, h.shape, h.dtype));
        const xs = tensors.slice(0, this.source.nInp);
        const ys = tensors.slice(this.source.nInp);
        yield { xb: xs[0] as tf.Tensor4D, yb: ys[0]!, xs, ys };
      }
      // A split with no readable image would train on nothing (a NaN loss): refuse it.
      if (yielded === 0 && this.n > 0 && this.bad.size >= this.n) {
        const shown = this.items.slice(0, 3).join(", ");
        throw new Error(
          `no readable image in this ${this.train ? "training" : "validation"} set: all ${this.n} images failed to decode ` +
            `(${shown}${this.n > 3 ? ", ..." : ""}); check the files (verifyImages lists them) or the folder you passed`,
        );
      }
    } finally {
      const k = Math.max(0, this.source.blocks.findIndex((b) => b.isImage));
      this.unreadable.report(
        newlyBad.map((i) => this.source.raws[k]![i] as string | Buffer),
        newlyBad.map((i) => this.items[i]!),
      );
    }
  }
}

function rawToTensor(img: RawImage): tf.Tensor3D {
  const f = new Float32Array(img.data.length);
  for (let i = 0; i < f.length; i++) f[i] = img.data[i]! / 255;
  return tf.tensor3d(f, [img.height, img.width, 3], "float32");
}

/** Options of `showBatch`. */
export interface ShowBatchOptions {
  /** Most images shown. Default 9. */
  maxN?: number;
  /** Rows of the grid (columns follow). Default ceil(sqrt(maxN)). */
  nrows?: number;
  /** Columns of the grid. Default ceil(n / nrows). */
  ncols?: number;
  /** Pixel size of each cell. Default the display layer's. */
  size?: number;
  /** Show the validation set instead of the training set. Default false. */
  valid?: boolean;
}

/** A training and a validation `DataLoader` with their vocabulary (fastai's `DataLoaders`). */
export class DataLoaders {
  constructor(
    readonly train: DataLoader,
    readonly valid: DataLoader,
    readonly vocab: string[],
    readonly isMultiLabel: boolean,
  ) {}

  /** The target block (the first block after the inputs). */
  get targetBlock(): TransformBlock | undefined {
    return this.train.source.blocks[this.train.source.nInp];
  }

  /** What the target is: "category", "multicategory", "regression", "points", "mask", ... */
  get targetKind(): string {
    return this.targetBlock?.kind ?? "category";
  }

  /** The mask code metrics should ignore, as an index (`MaskBlock({ voidCode })`), for `foregroundAcc({ bkgIdx })`. */
  get voidIndex(): number | undefined {
    return this.targetBlock?.voidIndex;
  }

  /** How many blocks are inputs (fastai's `n_inp`). */
  get nInp(): number {
    return this.train.source.nInp;
  }

  /** How many blocks are targets. */
  get nTargets(): number {
    return this.train.source.blocks.length - this.train.source.nInp;
  }

  /** Model outputs per item the target asks for: classes, mask codes, or values (2 per point). */
  get c(): number {
    return this.targetBlock?.c ?? this.vocab.length;
  }

  /** The loaders, train first (fastai's `dls[0]`, `dls[1]`). */
  get loaders(): [DataLoader, DataLoader] {
    return [this.train, this.valid];
  }

  /** Normalisation statistics of the batch transforms, when a `Normalize` is present. */
  get normalize(): { mean: number[]; std: number[] } | undefined {
    const t = this.valid.batchTfms.find((b): b is NormalizeTfm => b.type === "Normalize");
    return t ? { mean: t.mean.slice(), std: t.std.slice() } : undefined;
  }

  /** Add a batch transform to both loaders (a `Normalize` replaces any present one). */
  addBatchTfm(t: BatchTfm): void {
    for (const tfms of new Set([this.train.source.batchTfms, this.valid.source.batchTfms])) {
      if (t.type === "Normalize") {
        const at = tfms.findIndex((b) => b.type === "Normalize");
        if (at >= 0) tfms.splice(at, 1);
      }
      tfms.push(t);
    }
  }

  /** The first batch of the training set (or `valid`), as fastai's `one_batch` (caller disposes). */
  async oneBatch(opts: { valid?: boolean } = {}): Promise<Batch> {
    const dl = opts.valid ? this.valid : this.train;
    for await (const b of dl) return b;
    throw new Error(`oneBatch: the ${opts.valid ? "validation" : "training"} set has no readable images`);
  }

  /** A JSON-serialisable description of the validation pipeline, vocab and label kind (travels with the model). */
  inferenceSpec(): InferenceSpec {
    const input = this.train.source.blocks[0];
    const target = this.targetBlock;
    if (this.nInp !== 1 || !input?.isImage) throw new Error("export and predict take one image input; these DataLoaders have other inputs");
    if (!target?.exportTarget) throw new Error(`export and predict cannot decode a "${this.targetKind}" target (its block has no exportTarget)`);
    const kind = target.exportTarget();
    const spec: InferenceSpec = {
      version: 1,
      itemTfms: JSON.parse(JSON.stringify(this.valid.itemTfms)) as ItemTfm[],
      batchTfms: JSON.parse(JSON.stringify(this.valid.batchTfms)) as BatchTfm[],
      vocab: this.vocab.slice(),
      isMultiLabel: this.isMultiLabel,
    };
    const norm = this.normalize;
    if (norm) spec.normalize = norm;
    if (kind) spec.target = kind;
    if (input.imageMode === "L") spec.mode = "L";
    return spec;
  }

  /**
   * Decode one batch and show up to `maxN` items in a grid (via the display layer): each block
   * draws its part — the image, then labels as titles (multi-labels joined with ";"), points as
   * markers, masks overlaid in colour.
   */
  async showBatch(opts: ShowBatchOptions = {}): Promise<void> {
    const maxN = opts.maxN ?? 9;
    const b = await this.oneBatch({ valid: opts.valid ?? false });
    const tensors = [...b.xs, ...b.ys];
    let cells: ShowCell[];
    try {
      const n = Math.min(maxN, b.xb.shape[0] ?? 0);
      cells = await this.showCells(tensors, n);
    } finally {
      tf.dispose(tensors);
    }
    const nrows = opts.nrows ?? Math.ceil(Math.sqrt(cells.length));
    const ncols = opts.ncols ?? Math.ceil(cells.length / nrows);
    const gridOpts: GridOptions = { ncols };
    if (opts.size !== undefined) gridOpts.size = opts.size;
    await showCellGrid(cells, gridOpts);
  }

  /**
   * The first `n` rows of a batch's tensors (one per block, in block order) drawn as cells; image
   * blocks' rows are un-normalised first. `blocks` default to the training loader's.
   */
  async showCells(tensors: readonly tf.Tensor[], n: number, blocks: readonly TransformBlock[] = this.train.source.blocks): Promise<ShowCell[]> {
    const norm = this.normalize;
    const cells: ShowCell[] = Array.from({ length: n }, () => ({ titles: [] }));
    for (const [k, block] of blocks.entries()) {
      const t = tensors[k];
      if (!t) continue;
      let data: ArrayLike<number>;
      if (block.isImage && norm) {
        const ch = t.shape[3] ?? 3;
        const x = tf.tidy(() => tf.clipByValue(tf.add(tf.mul(t, tf.tensor1d(norm.std.slice(0, ch))), tf.tensor1d(norm.mean.slice(0, ch))), 0, 1));
        data = await x.data();
        x.dispose();
      } else data = await t.data();
      for (let r = 0; r < n; r++) block.show(cells[r]!, data, t.shape, r);
    }
    return cells;
  }

  /** The label text of one target (index, or multi-hot row). */
  labelOf(y: number | number[]): string {
    if (typeof y === "number") return this.vocab[y] ?? String(y);
    return y
      .map((v, k) => (v > 0.5 ? this.vocab[k] : undefined))
      .filter((s): s is string => s !== undefined)
      .join(";");
  }
}

/** Show cells (from blocks' `show`) as a captioned image grid. */
export async function showCellGrid(cells: readonly ShowCell[], opts: GridOptions = {}): Promise<void> {
  const items = cells.map((c) => ({
    image: c.image ? tf.tensor3d(c.image.data, [c.image.height, c.image.width, 3], "float32") : tf.zeros([8, 8, 3]) as tf.Tensor3D,
    title: c.titles.join(" / "),
  }));
  try {
    await showImageGrid(items, opts);
  } finally {
    items.forEach((it) => it.image.dispose());
  }
  const legend = cellLegend(cells);
  if (legend.length) {
    const swatch = (c: [number, number, number]) => `rgb(${c.map((v) => Math.round(v * 255)).join(",")})`;
    showBundle({
      "text/html": `<div>${legend.map((e) => `<span style="margin-right:1em"><span style="display:inline-block;width:0.9em;height:0.9em;background:${swatch(e.colour)};vertical-align:middle"></span> ${escapeHtml(e.label)}</span>`).join("")}</div>`,
      "text/plain": `legend: ${legend.map((e) => `${e.label} = rgb(${e.colour.map((v) => Math.round(v * 255)).join(", ")})`).join("; ")}`,
    });
  }
}

/** Every legend entry of the cells, once each, in order of first appearance. */
export function cellLegend(cells: readonly ShowCell[]): { label: string; colour: [number, number, number] }[] {
  const out = new Map<string, [number, number, number]>();
  for (const c of cells) for (const e of c.legend ?? []) if (!out.has(e.label)) out.set(e.label, e.colour);
  return [...out].map(([label, colour]) => ({ label, colour }));
}
