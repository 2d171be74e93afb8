/**
 * `ImageDataLoaders`: the one-line factories of fastai (`fromFolder`, `fromNameRe`,
 * `fromNameFunc`, `fromCsv`, `fromLists`), each a `DataBlock` underneath.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import type { BatchTfm } from "./augment";
import { CategoryBlock, DataBlock, ImageBlock, MaskBlock, MultiCategoryBlock } from "./block";
import { parseCsv } from "./csv";
import {
  ColSplitter,
  GrandparentSplitter,
  RandomSplitter,
  RegexLabeller,
  getImageFiles,
  imageExtensions,
  parentLabel,
  type Splitter,
} from "./items";
import { loaderDefaults, type DataLoaders, type LoaderOptions } from "./loader";
import type { ItemTfm } from "./transforms";

/** Options every factory takes (plus the `LoaderOptions`: `bs`, `valBs`, `shuffle`, `seed`, ...). */
export interface FactoryOptions extends LoaderOptions {
  /** Fraction of items put in the validation set at random. Default 0.2 (folders with `train`/`valid` inside: split by folder instead). */
  validPct?: number;
  /** Classes and their order. Default: the sorted labels of the training set. */
  vocab?: string[];
  /** Transforms run on each item as decoded, e.g. `Resize(460)`. Default none. */
  itemTfms?: ItemTfm | ItemTfm[];
  /** Transforms run on each batch, e.g. `augTransforms({ size: 224 })`. Default none. */
  batchTfms?: BatchTfm | BatchTfm[];
}

/** Options of `ImageDataLoaders.fromFolder`. */
export interface FromFolderOptions extends FactoryOptions {
  /** Name of the training folder. Default "train". */
  train?: string;
  /** Name of the validation folder. Default "valid". */
  valid?: string;
}

/** Options of `ImageDataLoaders.fromCsv`. */
export interface FromCsvOptions extends FactoryOptions {
  /** Column of file names (name or 0-based index). Default 0. */
  fnCol?: string | number;
  /** Column of labels (name or 0-based index). Default 1. */
  labelCol?: string | number;
  /** Split labels on this string: multi-label. Default none (single-label). */
  labelDelim?: string;
  /** Column whose true values mark validation rows. Default none (random split by `validPct`). */
  validCol?: string | number;
  /** Folder (under `path`) the file names are relative to. Default `path` itself. */
  folder?: string;
  /** Suffix added to each file name (e.g. ".jpg"). Default "". */
  suff?: string;
  /** Whether the first row names the columns. Default true. */
  header?: boolean;
  /** Field separator. Default ",". */
  delimiter?: string;
  /** A row naming a file that does not exist: "error" refuses the CSV, naming the rows; "warn" leaves those rows out with one warning. Default "error". */
  missingFiles?: "error" | "warn";
}

/** Options of `fromLists`, `fromNameRe`, `fromNameFunc`. */
export interface FromListsOptions extends FactoryOptions {
  /** Split single string labels on this string: multi-label. Default none. */
  labelDelim?: string;
}

/** Fraction of the items put in the validation set when neither `validPct` nor split folders say. */
const defaultValidPct = 0.2;

function splitFor(opts: FactoryOptions): Splitter {
  return RandomSplitter(opts.validPct ?? defaultValidPct, opts.seed ?? loaderDefaults.seed);
}

function yBlock(multi: boolean, vocab?: string[]) {
  const o = vocab ? { vocab } : {};
  return multi ? MultiCategoryBlock(o) : CategoryBlock(o);
}

function resolveFiles(dir: string, files: readonly string[]): string[] {
  return files.map((f) => (path.isAbsolute(f) ? f : path.join(dir, f)));
}

/** Build `DataLoaders` from items and a label function. */
async function fromItems(
  dir: string,
  items: string[],
  label: (f: string, i: number) => string | string[],
  multi: boolean,
  splitter: Splitter,
  opts: FactoryOptions,
): Promise<DataLoaders> {
  const idx = new Map(items.map((f, i) => [f, i]));
  const block = new DataBlock<string, string>({
    blocks: [ImageBlock, yBlock(multi, opts.vocab)],
    getItems: () => items,
    getY: (f) => label(f, idx.get(f)!),
    splitter: splitter as Splitter<string>,
    ...(opts.itemTfms === undefined ? {} : { itemTfms: opts.itemTfms }),
    ...(opts.batchTfms === undefined ? {} : { batchTfms: opts.batchTfms }),
  });
  return block.dataloaders(dir, opts);
}

/** Items of a list are unique file paths in these factories; duplicates would alias labels. */
function checkUnique(files: string[], what: string): void {
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f)) throw new Error(`${what}: file "${f}" is listed twice`);
    seen.add(f);
  }
}

function splitLabel(l: string, delim: string | undefined): string | string[] {
  if (delim === undefined) return l;
  return l.split(delim).map((s) => s.trim()).filter((s) => s !== "");
}

/** fastai's `ImageDataLoaders`: one-line constructors for image classification data. */
export const ImageDataLoaders = {
  /**
   * Images in `path/<train|valid>/<class>/*`, labelled by their folder; with `validPct`, or when
   * `path` has neither split folder, `path/<class>/*` split at random (20 % by default, seeded).
   */
  async fromFolder(dir: string, opts: FromFolderOptions = {}): Promise<DataLoaders> {
    const trainName = opts.train ?? "train";
    const validName = opts.valid ?? "valid";
    if (!existsDir(dir)) throw new Error(`ImageDataLoaders.fromFolder: folder "${dir}" does not exist`);
    let files: string[];
    let splitter: Splitter;
    // Neither split folder (and no validPct): split at random rather than refuse (fastai would refuse).
    const noSplitFolders =
      opts.validPct === undefined && opts.train === undefined && opts.valid === undefined &&
      !existsDir(path.join(dir, trainName)) && !existsDir(path.join(dir, validName));
    if (opts.validPct === undefined && !noSplitFolders) {
      for (const [name, opt] of [[trainName, "train"], [validName, "valid"]] as const) {
        if (!existsDir(path.join(dir, name))) {
          throw new Error(
            `ImageDataLoaders.fromFolder: no "${name}" folder in "${dir}" (found: ${listDirs(dir).join(", ") || "nothing"}); ` +
              `set the ${opt} option to its name, or pass validPct to split at random`,
          );
        }
      }
      files = getImageFiles(dir, { folders: [trainName, validName] });
      splitter = GrandparentSplitter(trainName, validName) as Splitter;
    } else {
      files = getImageFiles(dir);
      splitter = splitFor(opts);
      if (noSplitFolders && files.length > 0) {
        console.log(
          `tsfast: no "${trainName}"/"${validName}" folders in "${dir}": putting a random ${defaultValidPct * 100} % of the images ` +
            `in the validation set (seed ${opts.seed ?? loaderDefaults.seed}); pass validPct to choose the fraction`,
        );
      }
    }
    if (files.length === 0) {
      throw new Error(`ImageDataLoaders.fromFolder: no image files (${imageExtensions.join(" ")}) under "${dir}"`);
    }
    warnEmptyClassFolders(dir, opts.validPct === undefined && !noSplitFolders ? [trainName, validName] : undefined, files);
    return fromItems(dir, files, parentLabel, false, splitter, opts);
  },

  /** Label each file by the first capture group of `pattern` matched against its file name (fastai's `from_name_re`). */
  async fromNameRe(dir: string, files: string[], pattern: RegExp | string, opts: FromListsOptions = {}): Promise<DataLoaders> {
    const lab = RegexLabeller(pattern);
    return byFunc("fromNameRe", dir, files, (f) => lab(path.basename(f)), opts);
  },

  /** Label each file by the first capture group of `pattern` matched against its whole path (fastai's `from_path_re`). */
  async fromPathRe(dir: string, files: string[], pattern: RegExp | string, opts: FromListsOptions = {}): Promise<DataLoaders> {
    const lab = RegexLabeller(pattern);
    return byFunc("fromPathRe", dir, files, (f) => lab(f), opts);
  },

  /** Label each file by `labelFunc(fileName)`; arrays of labels make it multi-label (fastai's `from_name_func`). */
  async fromNameFunc(
    dir: string,
    files: string[],
    labelFunc: (fileName: string) => string | string[],
    opts: FromListsOptions = {},
  ): Promise<DataLoaders> {
    return byFunc("fromNameFunc", dir, files, (f) => labelFunc(path.basename(f)), opts);
  },

  /** Label each file by `labelFunc(path)`; arrays of labels make it multi-label (fastai's `from_path_func`). */
  async fromPathFunc(
    dir: string,
    files: string[],
    labelFunc: (file: string) => string | string[],
    opts: FromListsOptions = {},
  ): Promise<DataLoaders> {
    return byFunc("fromPathFunc", dir, files, labelFunc, opts);
  },

  /** Files with labels given in parallel lists; arrays of labels (or `labelDelim`) make it multi-label. */
  async fromLists(dir: string, files: string[], labels: (string | string[])[], opts: FromListsOptions = {}): Promise<DataLoaders> {
    if (files.length !== labels.length) {
      throw new Error(`ImageDataLoaders.fromLists: ${files.length} files but ${labels.length} labels`);
    }
    const full = resolveFiles(dir, files);
    checkUnique(full, "ImageDataLoaders.fromLists");
    const ls = labels.map((l) => (typeof l === "string" ? splitLabel(l, opts.labelDelim) : l));
    const multi = opts.labelDelim !== undefined || ls.some((l) => Array.isArray(l));
    return fromItems(dir, full, (_f, i) => asKind(ls[i]!, multi), multi, splitFor(opts), opts);
  },

  /** Files and labels from a CSV (fastai's `from_csv`): `fnCol`, `labelCol`, optional `labelDelim` and `validCol`. */
  async fromCsv(dir: string, csvFile: string = "labels.csv", opts: FromCsvOptions = {}): Promise<DataLoaders> {
    const csvPath = path.isAbsolute(csvFile) ? csvFile : path.join(dir, csvFile);
    let text: string;
    try {
      text = readFileSync(csvPath, "utf8");
    } catch {
      throw new Error(`ImageDataLoaders.fromCsv: cannot read "${csvPath}"`);
    }
    let rows: string[][];
    try {
      rows = parseCsv(text, opts.delimiter ?? ",");
    } catch (e) {
      throw new Error(`ImageDataLoaders.fromCsv: cannot parse "${csvPath}": ${e instanceof Error ? e.message : String(e)}`);
    }
    const header = opts.header ?? true;
    const names = header ? (rows.shift() ?? []) : (rows[0] ?? []).map((_, i) => String(i));
    const colIndex = (c: string | number, what: string): number => {
      const k = typeof c === "number" ? c : names.indexOf(c);
      if (k < 0 || k >= names.length) {
        throw new Error(`ImageDataLoaders.fromCsv: ${what} column ${JSON.stringify(c)} not found in "${csvPath}"; columns are ${names.join(", ")}`);
      }
      return k;
    };
    const fnK = colIndex(opts.fnCol ?? 0, "fnCol");
    const labK = colIndex(opts.labelCol ?? 1, "labelCol");
    const validK = opts.validCol === undefined ? undefined : colIndex(opts.validCol, "validCol");
    let data = rows.filter((r) => r.length > 1 || (r[0] ?? "") !== "");
    if (data.length === 0) throw new Error(`ImageDataLoaders.fromCsv: "${csvPath}" has no data rows`);
    const folder = opts.folder === undefined ? dir : path.join(dir, opts.folder);
    const suff = opts.suff ?? "";
    const missingMode = opts.missingFiles ?? "error";
    if (missingMode !== "error" && missingMode !== "warn") {
      throw new Error(`ImageDataLoaders.fromCsv: missingFiles must be "error" or "warn", got ${JSON.stringify(missingMode)}`);
    }
    let files = data.map((r, i) => {
      const fn = r[fnK];
      if (fn === undefined || fn === "") throw new Error(`ImageDataLoaders.fromCsv: row ${i + 1 + (header ? 1 : 0)} of "${csvPath}" has no file name`);
      return path.join(folder, fn + suff);
    });
    checkUnique(files, "ImageDataLoaders.fromCsv");
    // A short row or an empty label cell would make a class named "" (single-label); refuse them by row.
    const width = names.length;
    const short = data.flatMap((r, i) => (r.length < width ? [i + 1 + (header ? 1 : 0)] : []));
    if (short.length) {
      throw new Error(`ImageDataLoaders.fromCsv: row${short.length === 1 ? "" : "s"} ${listRows(short)} of "${csvPath}" ha${short.length === 1 ? "s" : "ve"} fewer than the ${width} columns (${names.join(", ")})`);
    }
    const multi = opts.labelDelim !== undefined;
    if (!multi) {
      const blank = data.flatMap((r, i) => ((r[labK] ?? "").trim() === "" ? [i + 1 + (header ? 1 : 0)] : []));
      if (blank.length) {
        throw new Error(`ImageDataLoaders.fromCsv: row${blank.length === 1 ? "" : "s"} ${listRows(blank)} of "${csvPath}" ha${blank.length === 1 ? "s" : "ve"} an empty label (column ${JSON.stringify(names[labK])}); fill or remove ${blank.length === 1 ? "it" : "them"}`);
      }
    }
    const missing = data.flatMap((_r, i) => (isFile(files[i]!) ? [] : [i]));
    if (missing.length) {
      const rowNo = (i: number): number => i + 1 + (header ? 1 : 0);
      const shown = missing.slice(0, 10).map((i) => `row ${rowNo(i)} names "${files[i]}"`).join(", ");
      const more = missing.length > 10 ? ` and ${missing.length - 10} more` : "";
      const what = `${missing.length} row${missing.length === 1 ? "" : "s"} of "${csvPath}" name${missing.length === 1 ? "s a file that does" : " files that do"} not exist (${shown}${more})`;
      if (missingMode === "error") {
        throw new Error(`ImageDataLoaders.fromCsv: ${what}; fix the rows, check folder and suff, or pass missingFiles: "warn" to leave them out`);
      }
      if (missing.length === data.length) {
        throw new Error(`ImageDataLoaders.fromCsv: every row of "${csvPath}" names a missing file (${shown}${more}); check folder and suff`);
      }
      console.warn(`tsfast: ImageDataLoaders.fromCsv: left out ${what}`);
      const gone = new Set(missing);
      data = data.filter((_r, i) => !gone.has(i));
      files = files.filter((_f, i) => !gone.has(i));
    }
    const labels = data.map((r) => splitLabel(r[labK] ?? "", opts.labelDelim));
    let splitter: Splitter = splitFor(opts);
    if (validK !== undefined) {
      const name = names[validK]!;
      const records = data.map((r) => ({ [name]: r[validK] ?? "" }));
      const cs = ColSplitter(name);
      splitter = () => cs(records);
    }
    return fromItems(dir, files, (_f, i) => labels[i]!, multi, splitter, opts);
  },
};

/** Label every file by `label(path)` (strings split by `labelDelim`; arrays make it multi-label). */
async function byFunc(
  what: string,
  dir: string,
  files: string[],
  label: (file: string) => string | string[],
  opts: FromListsOptions,
): Promise<DataLoaders> {
  const full = resolveFiles(dir, files);
  checkUnique(full, `ImageDataLoaders.${what}`);
  const labels = full.map((f) => {
    const l = label(f);
    return typeof l === "string" ? splitLabel(l, opts.labelDelim) : l;
  });
  const multi = opts.labelDelim !== undefined || labels.some((l) => Array.isArray(l));
  return fromItems(dir, full, (_f, i) => asKind(labels[i]!, multi), multi, splitFor(opts), opts);
}

/** Row numbers for an error message: the first 10, then how many more. */
function listRows(rows: number[]): string {
  return rows.slice(0, 10).join(", ") + (rows.length > 10 ? ` and ${rows.length - 10} more` : "");
}

function asKind(l: string | string[], multi: boolean): string | string[] {
  if (multi) return Array.isArray(l) ? l : [l];
  return l;
}

function existsDir(d: string): boolean {
  try {
    return statSync(d).isDirectory();
  } catch {
    return false;
  }
}

function isFile(f: string): boolean {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
}

function listDirs(d: string): string[] {
  try {
    return readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** One warning naming class folders that hold no images (they get no class). */
function warnEmptyClassFolders(dir: string, splits: string[] | undefined, files: string[]): void {
  const parents = new Set(files.map((f) => path.dirname(f)));
  const roots = splits ? splits.map((s) => path.join(dir, s)) : [dir];
  const empty: string[] = [];
  for (const r of roots) {
    for (const c of listDirs(r)) {
      const full = path.join(r, c);
      if (c.startsWith(".")) continue;
      const hasNested = [...parents].some((p) => p === full || p.startsWith(full + path.sep));
      if (!hasNested) empty.push(full);
    }
  }
  if (empty.length) console.warn(`tsfast: class folder${empty.length === 1 ? "" : "s"} with no images (ignored): ${empty.join(", ")}`);
}

/** Options of `SegmentationDataLoaders.fromLabelFunc`. */
export interface SegmentationOptions extends LoaderOptions {
  /** The class of each mask value, background (0) first. Required. */
  codes: string[];
  /** The code metrics ignore, if any. */
  voidCode?: string;
  /** Fraction of items put in the validation set at random. Default 0.2. */
  validPct?: number;
  /** How to split the images instead, e.g. `FuncSplitter((file) => validNames.has(basename(file)))`. Default `RandomSplitter(validPct, seed)`. */
  splitter?: Splitter<string>;
  /** Transforms run on each image and its mask as decoded, e.g. `Resize(128)`. Default none. */
  itemTfms?: ItemTfm | ItemTfm[];
  /** Transforms run on each batch, e.g. `augTransforms()`; masks follow the geometry, never the lighting. Default none. */
  batchTfms?: BatchTfm | BatchTfm[];
}

/** fastai's `SegmentationDataLoaders`: images and their class-index masks. */
export const SegmentationDataLoaders = {
  /**
   * Images `fnames` (relative to `dir`, or absolute) with masks named by `labelFunc(file)` (a path,
   * absolute or relative to `dir`): `MaskBlock(codes)` targets, split at random by `validPct`.
   */
  async fromLabelFunc(dir: string, fnames: string[], labelFunc: (file: string) => string, opts: SegmentationOptions): Promise<DataLoaders> {
    if (!opts || !Array.isArray(opts.codes)) {
      throw new Error('SegmentationDataLoaders.fromLabelFunc: give the codes, e.g. { codes: ["background", "cat"] }');
    }
    if (typeof labelFunc !== "function") throw new Error("SegmentationDataLoaders.fromLabelFunc: labelFunc must be a function from an image file to its mask file");
    const files = resolveFiles(dir, fnames);
    checkUnique(files, "SegmentationDataLoaders.fromLabelFunc");
    const block = new DataBlock<string, string>({
      blocks: [ImageBlock, MaskBlock(opts.voidCode === undefined ? { codes: opts.codes } : { codes: opts.codes, voidCode: opts.voidCode })],
      getItems: () => files,
      getY: (f) => {
        const m = labelFunc(f);
        if (typeof m !== "string" || m === "") throw new Error(`SegmentationDataLoaders.fromLabelFunc: labelFunc gave ${JSON.stringify(m)} for "${f}"; it must give the mask file's path`);
        return path.isAbsolute(m) ? m : path.join(dir, m);
      },
      splitter: opts.splitter ?? (splitFor(opts) as Splitter<string>),
      ...(opts.itemTfms === undefined ? {} : { itemTfms: opts.itemTfms }),
      ...(opts.batchTfms === undefined ? {} : { batchTfms: opts.batchTfms }),
    });
    return block.dataloaders(dir, opts);
  },
};
