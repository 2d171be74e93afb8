/**
 * `DataLoader` and `DataLoaders`: items → decoded (concurrently, ahead of the training step) →
 * augmented batches `{ xb, yb }` as tensors. `dls.inferenceSpec()` describes the validation
 * pipeline for `inference.ts`, which runs it on new inputs.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { showImageGrid, type GridOptions } from "../display/image";
import type { BatchResult, BatchTfm, NormalizeTfm } from "./augment";
import { ImageCache, type CacheKind } from "./cache";
import { decodeImage, ImageDecodeError, withoutUpscale, type DecodeOptions } from "./decode";
import { applyPlanJs, type RawImage } from "./pixels";
import { Rng } from "./random";
import { runBatchTfms } from "./workers";
import { upscaleIsRedundant, type InferenceSpec } from "./inference";
import { planItemTfm, splitForCache, type ItemTfm } from "./transforms";

/** A batch: `xb` float32 NHWC, `yb` int32 [bs] class indices or float32 [bs, c] multi-hot. The consumer disposes both. */
export interface Batch {
  xb: tf.Tensor4D;
  yb: tf.Tensor;
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

/** What a `DataLoader` is built from. */
export interface LoaderSource {
  /** Decoder inputs: file paths or bytes. */
  inputs: (string | Buffer)[];
  /** Target per item: class index (single-label) or indices (multi-label). */
  targets: (number | number[])[];
  /** Label per item as given (string or strings). */
  labels: (string | string[])[];
  itemTfms: ItemTfm[];
  batchTfms: BatchTfm[];
  /** Number of classes (for multi-hot targets). */
  c: number;
  isMultiLabel: boolean;
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
  private epoch = 0;

  constructor(
    readonly source: LoaderSource,
    private readonly opts: DataLoaderInit,
    sharedCache?: ImageCache,
  ) {
    if (!(Number.isInteger(opts.bs) && opts.bs > 0)) throw new Error(`bs must be a positive integer, got ${opts.bs}`);
    this.items = source.inputs.map((x, i) => (typeof x === "string" ? x : `<buffer #${i}>`));
    this.labels = source.labels;
    this.n = source.inputs.length;
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

  /** Item `i` after the validation item transforms, float [0, 1], un-normalised (caller disposes). */
  async loadImage(i: number): Promise<tf.Tensor3D> {
    await ready();
    const input = this.source.inputs[i];
    if (input === undefined) throw new Error(`loadImage: index ${i} out of range (0..${this.n - 1})`);
    const img = await decodeImage(input, this.source.itemTfms, false, new Rng(0), this.decodeOpts);
    return rawToTensor(img);
  }

  private async decodeItem(i: number, rng: Rng): Promise<RawImage | null> {
    const input = this.source.inputs[i]!;
    const tfms = this.source.itemTfms;
    const noUpscale = upscaleIsRedundant(tfms, this.source.batchTfms);
    const opts = { ...this.decodeOpts, noUpscale };
    try {
      const split = this.cache ? splitForCache(tfms, this.train) : undefined;
      if (!this.cache || !split) return await this.limiter.run(() => decodeImage(input, tfms, this.train, rng, opts));
      // The cached (deterministic) part, then the random rest in JavaScript.
      const recipe = JSON.stringify({ tfms: split.cached, noUpscale, maxPixels: this.decodeOpts.maxPixels ?? null });
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
    type Ready = { good: number[]; res: BatchResult | undefined };
    const started: Promise<Ready>[] = [];
    // Batch k: decode its images (bounded concurrency), set aside unreadable ones, then run the
    // batch transforms (in the data worker), all ahead of the consumer.
    const start = (k: number): void => {
      const idx = batches[k]!;
      const p = Promise.all(idx.map((i, j) => this.decodeItem(i, new Rng(subSeed(this.seed, epoch, 2, k, j))))).then(async (imgs) => {
        const good: number[] = [];
        const goodImgs: RawImage[] = [];
        imgs.forEach((im, j) => {
          const i = idx[j]!;
          if (im) {
            good.push(i);
            goodImgs.push(im);
          } else if (!this.bad.has(i)) {
            this.bad.add(i);
            newlyBad.push(i);
          }
        });
        if (good.length === 0) return { good, res: undefined };
        const res = await runBatchTfms(goodImgs, this.source.batchTfms, this.train, subSeed(this.seed, epoch, 3, k));
        return { good, res };
      });
      p.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection if iteration stops early
      started[k] = p;
    };
    let yielded = 0;
    try {
      for (let k = 0; k < batches.length; k++) {
        for (let a = k; a <= Math.min(batches.length - 1, k + this.prefetch); a++) if (!started[a]) start(a);
        const { good, res } = await started[k]!;
        if (!res) continue;
        const xb = tf.tensor4d(res.data, res.shape, "float32");
        const yb = targetsTensor(good.map((i) => this.source.targets[i]!), this.source.c, this.source.isMultiLabel);
        yielded++;
        yield { xb, yb };
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
      this.unreadable.report(
        newlyBad.map((i) => this.source.inputs[i]!),
        newlyBad.map((i) => this.items[i]!),
      );
    }
  }
}

/** Make the `yb` tensor: int32 [n] indices, or float32 [n, c] multi-hot. */
export function targetsTensor(targets: (number | number[])[], c: number, multi: boolean): tf.Tensor {
  if (!multi) return tf.tensor1d(Int32Array.from(targets as number[]), "int32");
  const hot = new Float32Array(targets.length * c);
  targets.forEach((t, r) => {
    for (const k of t as number[]) hot[r * c + k] = 1;
  });
  return tf.tensor2d(hot, [targets.length, c], "float32");
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

  /** Number of classes. */
  get c(): number {
    return this.vocab.length;
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
    const spec: InferenceSpec = {
      version: 1,
      itemTfms: JSON.parse(JSON.stringify(this.valid.itemTfms)) as ItemTfm[],
      batchTfms: JSON.parse(JSON.stringify(this.valid.batchTfms)) as BatchTfm[],
      vocab: this.vocab.slice(),
      isMultiLabel: this.isMultiLabel,
    };
    const norm = this.normalize;
    if (norm) spec.normalize = norm;
    return spec;
  }

  /** Decode one batch and show up to `maxN` images with their labels in a grid (via the display layer). */
  async showBatch(opts: ShowBatchOptions = {}): Promise<void> {
    const maxN = opts.maxN ?? 9;
    const b = await this.oneBatch({ valid: opts.valid ?? false });
    const n = Math.min(maxN, b.xb.shape[0]);
    const norm = this.normalize;
    const images = tf.tidy(() => {
      let x: tf.Tensor4D = tf.slice(b.xb, [0, 0, 0, 0], [n, -1, -1, -1]);
      if (norm) x = tf.add(tf.mul(x, tf.tensor1d(norm.std)), tf.tensor1d(norm.mean));
      return tf.unstack(tf.clipByValue(x, 0, 1)) as tf.Tensor3D[];
    });
    const yb = (await b.yb.array()) as number[] | number[][];
    b.xb.dispose();
    b.yb.dispose();
    const items = images.map((image, i) => ({ image, title: this.labelOf(yb[i]!) }));
    const nrows = opts.nrows ?? Math.ceil(Math.sqrt(n));
    const ncols = opts.ncols ?? Math.ceil(n / nrows);
    try {
      const gridOpts: GridOptions = { ncols };
      if (opts.size !== undefined) gridOpts.size = opts.size;
      await showImageGrid(items, gridOpts);
    } finally {
      images.forEach((t) => t.dispose());
    }
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
