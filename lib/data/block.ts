/**
 * `DataBlock`: the generic recipe (fastai's data block API) — what the inputs and targets are
 * (`blocks`, see blocks.ts), how to get items, labels and the split — turned into `DataLoaders`
 * by `dataloaders`. Nothing here knows a kind of block: each one sets itself up from the labels.
 */
import type { BatchTfm } from "./augment";
import { DataLoader, DataLoaders, loaderDefaults, UnreadableImages, type LoaderOptions, type LoaderSource } from "./loader";
import { findUnreadable, unreadableWarning } from "./check";
import { RandomSplitter, type Splitter } from "./items";
import type { ItemTfm } from "./transforms";
import type { BlockArg, TransformBlock } from "./blocks";
export {
  ImageBlock, CategoryBlock, MultiCategoryBlock, RegressionBlock, PointBlock, MaskBlock,
  type Block, type BlockArg, type TransformBlock, type ImageBlockOptions, type MaskBlockOptions,
} from "./blocks";

/** Options of `DataBlock`. */
export interface DataBlockOptions<S, T> {
  /**
   * The blocks of a sample, inputs first: `[ImageBlock, CategoryBlock]`, `[ImageBlock, PointBlock]`,
   * `[ImageBlock, MaskBlock({ codes })]`; more than two with `nInp`.
   */
  blocks: BlockArg[];
  /** How many of `blocks` are inputs (fastai's `n_inp`). Default 1. */
  nInp?: number;
  /** The items from the source (e.g. `getImageFiles`). Default: the source itself when it is an array. */
  getItems?: (source: S) => T[] | Promise<T[]>;
  /** The raw input of an item (for an image: a file path or bytes); one function per input when `nInp` > 1. Default the item itself. */
  getX?: ((item: T) => unknown) | ((item: T) => unknown)[];
  /**
   * The raw target of an item: a label (CategoryBlock), labels (MultiCategoryBlock), numbers
   * (RegressionBlock), [x, y] pairs (PointBlock), a mask file (MaskBlock); one function per target
   * when there are several.
   */
  getY: ((item: T) => unknown) | ((item: T) => unknown)[];
  /** Which items are for validation. Default `RandomSplitter(0.2, 42)`. */
  splitter?: Splitter<T>;
  /** Transforms run on each item as it is decoded. Default none. */
  itemTfms?: ItemTfm | ItemTfm[];
  /** Transforms run on each batch (augmentation, normalisation). Default none. */
  batchTfms?: BatchTfm | BatchTfm[];
}

function toBlock(b: BlockArg, side: string): TransformBlock {
  const block = (typeof b === "function" ? b() : b) as Partial<TransformBlock> | undefined;
  if (!block || typeof block.load !== "function" || typeof block.collate !== "function" || typeof block.show !== "function") {
    const kind = block && typeof block === "object" && "kind" in block ? String((block as { kind: unknown }).kind) : typeof block;
    throw new Error(
      `DataBlock: ${side} block kind "${kind}" is not supported (it is not a transform block with load and collate); ` +
        "use ImageBlock, CategoryBlock, MultiCategoryBlock, RegressionBlock, PointBlock or MaskBlock",
    );
  }
  return block as TransformBlock;
}

function flat<X>(v: X | X[] | undefined): X[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.flat() as X[] : [v];
}

/** A recipe for `DataLoaders` (fastai's `DataBlock`). */
export class DataBlock<S = unknown, T = unknown> {
  /** The blocks, inputs first. */
  readonly blocks: TransformBlock[];
  /** How many blocks are inputs. */
  readonly nInp: number;

  constructor(readonly opts: DataBlockOptions<S, T>) {
    if (!Array.isArray(opts.blocks) || opts.blocks.length < 2) {
      throw new Error("DataBlock: blocks must be [inputBlock, targetBlock] (or more with nInp), e.g. [ImageBlock, CategoryBlock]");
    }
    this.nInp = opts.nInp ?? 1;
    if (!Number.isInteger(this.nInp) || this.nInp < 1 || this.nInp >= opts.blocks.length) {
      throw new Error(`DataBlock: nInp must be a whole number from 1 to ${opts.blocks.length - 1} (the rest are targets), got ${opts.nInp}`);
    }
    this.blocks = opts.blocks.map((b, k) => toBlock(b, k < this.nInp ? "input" : "target"));
    this.blocks.forEach((b, k) => {
      if (b.followsImage && !this.blocks.slice(0, k).some((a) => a.isImage)) {
        throw new Error(`DataBlock: a ${b.kind} block follows an image's geometry; put an ImageBlock before it in blocks`);
      }
    });
    const nY = this.blocks.length - this.nInp;
    if (opts.getY === undefined || (typeof opts.getY !== "function" && !Array.isArray(opts.getY))) {
      throw new Error("DataBlock: getY is required (e.g. parentLabel)");
    }
    if (Array.isArray(opts.getY) ? opts.getY.length !== nY : nY !== 1) {
      throw new Error(`DataBlock: ${nY} target blocks need ${nY} getY functions (an array), got ${Array.isArray(opts.getY) ? opts.getY.length : 1}`);
    }
    // Several inputs need one getter each: without them every input would read the same raw value.
    if (Array.isArray(opts.getX) ? opts.getX.length !== this.nInp : this.nInp !== 1) {
      const got = Array.isArray(opts.getX) ? `${opts.getX.length}` : opts.getX === undefined ? "none" : "one function";
      throw new Error(`DataBlock: ${this.nInp} input blocks need ${this.nInp} getX functions (an array), got ${got}`);
    }
  }

  /** The input block (the first one). */
  get xBlock(): TransformBlock {
    return this.blocks[0]!;
  }

  /** The target block (the first one after the inputs). */
  get yBlock(): TransformBlock {
    return this.blocks[this.nInp]!;
  }

  /** Build `DataLoaders` from `source` (e.g. a folder path): items, split, labels, vocab, loaders. */
  async dataloaders(source: S, opts: LoaderOptions = {}): Promise<DataLoaders> {
    const o = this.opts;
    const items: T[] = o.getItems ? await o.getItems(source) : Array.isArray(source) ? (source as T[]) : [];
    if (!o.getItems && !Array.isArray(source)) throw new Error("DataBlock: no getItems given and the source is not an array");
    if (items.length === 0) throw new Error(`DataBlock: no items found in ${describeSource(source)}`);
    // One getter per block: the inputs' getX (default the item), then the targets' getY.
    const getXs = o.getX === undefined ? [(it: T) => it as unknown] : flat(o.getX);
    const getters = [...getXs, ...flat(o.getY)];
    const raws = getters.map((g) => items.map((it) => g(it)));
    const first = raws[0]!;
    const name = (i: number) => describeItem(first[i], i);
    let [trn, val] = (o.splitter ?? (RandomSplitter(0.2, 42) as Splitter<T>))(items);
    if (trn.length === 0) throw new Error(`DataBlock: the training set is empty (split of ${describeSource(source)})`);
    if (val.length === 0) {
      throw new Error(`DataBlock: the validation set is empty (split of ${describeSource(source)}); check the valid folder name or validPct`);
    }
    // Every image file checked once, now: broken ones are named in one warning and left out of both splits.
    const imageRaws = raws.filter((_, k) => this.blocks[k]!.isImage);
    if ((opts.checkFiles ?? loaderDefaults.checkFiles) && imageRaws.length) {
      const bad = new Map<number, string>();
      for (const r of imageRaws) {
        const inputs = r.map((x) => (typeof x === "string" || Buffer.isBuffer(x) ? x : ""));
        for (const [i, why] of await findUnreadable(inputs, [...trn, ...val], opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels })) bad.set(i, why);
      }
      if (bad.size > 0) {
        console.warn(unreadableWarning(bad, name));
        for (const [split, idx] of [["training", trn], ["validation", val]] as const) {
          if (idx.every((i) => bad.has(i))) {
            throw new Error(
              `DataBlock: no readable image in the ${split} set of ${describeSource(source)}: all ${idx.length} files are unreadable ` +
                `(listed in the warning above); check the files or the folder you passed`,
            );
          }
        }
        trn = trn.filter((i) => !bad.has(i));
        val = val.filter((i) => !bad.has(i));
      }
    }
    // Each block learns what it needs (a vocabulary, a count) from the training labels.
    const blocks: TransformBlock[] = [];
    for (const [k, b] of this.blocks.entries()) {
      try {
        blocks.push(b.setup ? await b.setup(raws[k]!, trn, name, val) : b);
      } catch (e) {
        if (e instanceof Error && /in the training set;/.test(e.message)) e.message = e.message.replace("in the training set;", `in the training set of ${describeSource(source)};`);
        throw e;
      }
    }
    const target = blocks[this.nInp]!;
    const itemTfms = flat(o.itemTfms);
    const batchTfms = flat(o.batchTfms);
    const make = (idx: number[]): LoaderSource => ({
      raws: raws.map((r) => idx.map((i) => r[i])),
      blocks,
      nInp: this.nInp,
      itemTfms,
      batchTfms,
    });
    const d = loaderDefaults;
    const bs = opts.bs ?? d.bs;
    const common = {
      seed: opts.seed ?? d.seed,
      numWorkers: opts.numWorkers ?? d.numWorkers,
      prefetch: opts.prefetch ?? d.prefetch,
      cache: opts.cache ?? d.cache,
      unreadable: new UnreadableImages(),
      ...(opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir }),
      ...(opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels }),
    };
    const train = new DataLoader(make(trn), {
      ...common,
      bs,
      shuffle: opts.shuffle ?? d.shuffle,
      dropLast: opts.dropLast ?? d.dropLast,
      train: true,
    });
    // The two loaders share the batch transform list so `addBatchTfm` reaches both.
    const valid = new DataLoader({ ...make(val), batchTfms: train.source.batchTfms }, {
      ...common,
      bs: opts.valBs ?? bs,
      shuffle: false,
      dropLast: false,
      train: false,
    });
    return new DataLoaders(train, valid, (target.vocab ?? []).slice(), target.kind === "multicategory");
  }
}

function describeSource(source: unknown): string {
  if (typeof source === "string") return `"${source}"`;
  if (Array.isArray(source)) return `the ${source.length} items given`;
  return "the source";
}

function describeItem(x: unknown, i: number): string {
  return typeof x === "string" ? `"${x}"` : `item #${i}`;
}
