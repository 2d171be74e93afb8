/**
 * `DataBlock`: the generic recipe (fastai's data block API) — what the inputs and targets are
 * (`blocks`), how to get items, labels and the split — turned into `DataLoaders` by `dataloaders`.
 * Blocks are plain objects with a `kind`, so later lessons can add kinds (masks, tabular, text).
 */
import type { BatchTfm } from "./augment";
import { DataLoader, DataLoaders, loaderDefaults, UnreadableImages, type LoaderOptions, type LoaderSource } from "./loader";
import { findUnreadable, unreadableWarning } from "./check";
import { RandomSplitter, type Splitter } from "./items";
import type { ItemTfm } from "./transforms";

/** A block: what kind of data one side of a sample is. */
export interface Block {
  kind: string;
  /** Fixed vocabulary (category blocks). */
  vocab?: string[];
}

/** An image input (fastai's `ImageBlock`). */
export function ImageBlock(): Block {
  return { kind: "image" };
}

/** A single-label category target (fastai's `CategoryBlock`); `vocab` fixes the classes and their order. */
export function CategoryBlock(opts: { vocab?: string[] } = {}): Block {
  return opts.vocab ? { kind: "category", vocab: opts.vocab.slice() } : { kind: "category" };
}

/** A multi-label target: a set of categories per item (fastai's `MultiCategoryBlock`). */
export function MultiCategoryBlock(opts: { vocab?: string[] } = {}): Block {
  return opts.vocab ? { kind: "multicategory", vocab: opts.vocab.slice() } : { kind: "multicategory" };
}

/** A block, or a block factory called with no options (`CategoryBlock` as well as `CategoryBlock({ vocab })`). */
export type BlockArg = Block | (() => Block);

/** Options of `DataBlock`. */
export interface DataBlockOptions<S, T> {
  /** [input block, target block], e.g. `[ImageBlock, CategoryBlock]`. */
  blocks: [BlockArg, BlockArg];
  /** The items from the source (e.g. `getImageFiles`). Default: the source itself when it is an array. */
  getItems?: (source: S) => T[] | Promise<T[]>;
  /** The decoder input of an item: a file path or bytes. Default the item itself. */
  getX?: (item: T) => string | Buffer;
  /** The label of an item: a string (single-label) or strings (multi-label). */
  getY: (item: T) => string | string[];
  /** Which items are for validation. Default `RandomSplitter(0.2, 42)`. */
  splitter?: Splitter<T>;
  /** Transforms run on each item as it is decoded. Default none. */
  itemTfms?: ItemTfm | ItemTfm[];
  /** Transforms run on each batch (augmentation, normalisation). Default none. */
  batchTfms?: BatchTfm | BatchTfm[];
}

function toBlock(b: BlockArg): Block {
  return typeof b === "function" ? b() : b;
}

function flat<X>(v: X | X[] | undefined): X[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.flat() as X[] : [v];
}

/** Sorted like fastai's `CategoryMap`: numbers numerically, otherwise by string. */
function sortVocab(labels: Set<string>): string[] {
  const xs = [...labels];
  const allNum = xs.every((s) => s.trim() !== "" && Number.isFinite(Number(s)));
  return allNum ? xs.sort((a, b) => Number(a) - Number(b)) : xs.sort();
}

/** A recipe for `DataLoaders` (fastai's `DataBlock`). */
export class DataBlock<S = unknown, T = unknown> {
  readonly xBlock: Block;
  readonly yBlock: Block;

  constructor(readonly opts: DataBlockOptions<S, T>) {
    if (!Array.isArray(opts.blocks) || opts.blocks.length !== 2) {
      throw new Error("DataBlock: blocks must be [inputBlock, targetBlock], e.g. [ImageBlock, CategoryBlock]");
    }
    this.xBlock = toBlock(opts.blocks[0]);
    this.yBlock = toBlock(opts.blocks[1]);
    if (this.xBlock.kind !== "image") {
      throw new Error(`DataBlock: input block kind "${this.xBlock.kind}" is not supported yet (use ImageBlock)`);
    }
    if (this.yBlock.kind !== "category" && this.yBlock.kind !== "multicategory") {
      throw new Error(`DataBlock: target block kind "${this.yBlock.kind}" is not supported yet (use CategoryBlock or MultiCategoryBlock)`);
    }
    if (typeof opts.getY !== "function") throw new Error("DataBlock: getY is required (e.g. parentLabel)");
  }

  /** Build `DataLoaders` from `source` (e.g. a folder path): items, split, labels, vocab, loaders. */
  async dataloaders(source: S, opts: LoaderOptions = {}): Promise<DataLoaders> {
    const o = this.opts;
    const items: T[] = o.getItems ? await o.getItems(source) : Array.isArray(source) ? (source as T[]) : [];
    if (!o.getItems && !Array.isArray(source)) throw new Error("DataBlock: no getItems given and the source is not an array");
    if (items.length === 0) throw new Error(`DataBlock: no items found in ${describeSource(source)}`);
    const getX = o.getX ?? ((it: T) => it as unknown as string | Buffer);
    const inputs = items.map(getX);
    const multi = this.yBlock.kind === "multicategory";
    const labels: (string | string[])[] = items.map((it) => {
      const y = o.getY(it);
      if (multi) return Array.isArray(y) ? y.map(String) : [String(y)];
      if (Array.isArray(y)) throw new Error(`DataBlock: getY gave several labels ${JSON.stringify(y)} for a CategoryBlock; use MultiCategoryBlock`);
      return String(y);
    });
    if (!multi) {
      // An empty label would become a class named "".
      const blank = labels.flatMap((l, i) => (l === "" ? [i] : []));
      if (blank.length) {
        const shown = blank.slice(0, 5).map((i) => describeItem(inputs[i]!, i)).join(", ");
        throw new Error(`DataBlock: getY gave an empty label for ${blank.length} item${blank.length === 1 ? "" : "s"} (${shown}${blank.length > 5 ? ", ..." : ""}); label or remove them`);
      }
    }
    let [trn, val] = (o.splitter ?? (RandomSplitter(0.2, 42) as Splitter<T>))(items);
    if (trn.length === 0) throw new Error(`DataBlock: the training set is empty (split of ${describeSource(source)})`);
    if (val.length === 0) {
      throw new Error(`DataBlock: the validation set is empty (split of ${describeSource(source)}); check the valid folder name or validPct`);
    }
    // Every file checked once, now: broken ones are named in one warning and left out of both splits.
    if (opts.checkFiles ?? loaderDefaults.checkFiles) {
      const bad = await findUnreadable(inputs, [...trn, ...val], opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels });
      if (bad.size > 0) {
        console.warn(unreadableWarning(bad, (i) => describeItem(inputs[i]!, i)));
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
    // Vocabulary: given, or every label of the training set, sorted.
    let vocab = this.yBlock.vocab;
    if (!vocab) {
      const seen = new Set<string>();
      for (const i of trn) for (const l of flat(labels[i])) seen.add(l);
      vocab = sortVocab(seen);
    }
    if (!multi && vocab.length < 2) {
      throw new Error(
        `DataBlock: only one class (${JSON.stringify(vocab[0])}) in the training set of ${describeSource(source)}; a classifier needs at least 2`,
      );
    }
    const index = new Map(vocab.map((v, k) => [v, k]));
    const toTarget = (i: number): number | number[] => {
      const ls = flat(labels[i]);
      const ks = ls.map((l) => {
        const k = index.get(l);
        if (k === undefined) {
          throw new Error(`label "${l}" of ${describeItem(inputs[i]!, i)} is not in the vocab [${vocab!.join(", ")}]`);
        }
        return k;
      });
      return multi ? ks : ks[0]!;
    };
    const itemTfms = flat(o.itemTfms);
    const batchTfms = flat(o.batchTfms);
    const make = (idx: number[]): LoaderSource => ({
      inputs: idx.map((i) => inputs[i]!),
      labels: idx.map((i) => labels[i]!),
      targets: idx.map(toTarget),
      itemTfms,
      batchTfms,
      c: vocab!.length,
      isMultiLabel: multi,
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
    return new DataLoaders(train, valid, vocab.slice(), multi);
  }
}

function describeSource(source: unknown): string {
  if (typeof source === "string") return `"${source}"`;
  if (Array.isArray(source)) return `the ${source.length} items given`;
  return "the source";
}

function describeItem(x: string | Buffer, i: number): string {
  return typeof x === "string" ? `"${x}"` : `item #${i}`;
}
