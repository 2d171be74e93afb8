/**
 * Getting items and labels: `getImageFiles`, the splitters (`RandomSplitter`, `GrandparentSplitter`,
 * `FuncSplitter`, `ColSplitter`, `IndexSplitter`) and the labellers (`parentLabel`, `RegexLabeller`).
 */
import { readdirSync, realpathSync, statSync } from "node:fs";
import * as path from "node:path";
import { Rng } from "./random";

/** File extensions `getImageFiles` treats as images (lower case, with the dot). */
export const imageExtensions: readonly string[] = [
  ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".avif", ".heic", ".heif", ".svg",
];

/** Options of `getFiles` / `getImageFiles`. */
export interface GetFilesOptions {
  /** Descend into sub-folders. Default true. */
  recurse?: boolean;
  /** Only these top-level sub-folders of `path` are searched. Default all. */
  folders?: string[];
  /** Extensions to keep (with the dot, any case). Default all files. */
  extensions?: readonly string[];
}

/**
 * Files under `path` (sorted, hidden files and folders skipped), optionally filtered by extension.
 * Symlinked folders are followed, but each real folder is walked once: a link back to a folder
 * already seen (a loop, or a second route to the same images) is skipped, so no file is listed twice.
 */
export function getFiles(dir: string, opts: GetFilesOptions = {}): string[] {
  const recurse = opts.recurse ?? true;
  const exts = opts.extensions?.map((e) => e.toLowerCase());
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new Error(`getFiles: folder "${dir}" does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`getFiles: "${dir}" is not a folder`);
  const out: string[] = [];
  const seenDirs = new Set<string>();
  const walk = (d: string, depth: number): void => {
    let real: string;
    try {
      real = realpathSync(d);
    } catch {
      return;
    }
    if (seenDirs.has(real)) return;
    seenDirs.add(real);
    const entries = readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const full = path.join(d, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const s = statSync(full);
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch {
          continue;
        }
      }
      if (isDir) {
        if (depth === 0 && opts.folders && !opts.folders.includes(e.name)) continue;
        if (recurse) walk(full, depth + 1);
      } else if (isFile) {
        if (depth === 0 && opts.folders) continue;
        if (!exts || exts.includes(path.extname(e.name).toLowerCase())) out.push(full);
      }
    }
  };
  walk(dir, 0);
  return out;
}

/** Image files under `path` (fastai's `get_image_files`), sorted. */
export function getImageFiles(dir: string, opts: Omit<GetFilesOptions, "extensions"> = {}): string[] {
  return getFiles(dir, { ...opts, extensions: imageExtensions });
}

/** A splitter: item list → [training indices, validation indices]. */
export type Splitter<T = unknown> = (items: readonly T[]) => [number[], number[]];

/** Put a random `validPct` of the items in the validation set (fastai's `RandomSplitter`). */
export function RandomSplitter(validPct: number = 0.2, seed: number = 42): Splitter {
  if (!(validPct >= 0 && validPct < 1)) throw new Error(`RandomSplitter: validPct must be in [0, 1), got ${validPct}`);
  return (items) => {
    const idx = new Rng(seed).permutation(items.length);
    const cut = Math.floor(validPct * items.length);
    return [idx.slice(cut), idx.slice(0, cut)];
  };
}

/** Split by the name of each file's grandparent folder (fastai's `GrandparentSplitter`). */
export function GrandparentSplitter(trainName: string = "train", validName: string = "valid"): Splitter<string> {
  return (items) => {
    const trn: number[] = [];
    const val: number[] = [];
    items.forEach((it, i) => {
      const gp = path.basename(path.dirname(path.dirname(String(it))));
      if (gp === trainName) trn.push(i);
      else if (gp === validName) val.push(i);
    });
    return [trn, val];
  };
}

/** Items for which `isValid(item)` is true go to the validation set (fastai's `FuncSplitter`). */
export function FuncSplitter<T>(isValid: (item: T) => boolean): Splitter<T> {
  return (items) => {
    const trn: number[] = [];
    const val: number[] = [];
    items.forEach((it, i) => (isValid(it) ? val : trn).push(i));
    return [trn, val];
  };
}

/** The given indices are the validation set (fastai's `IndexSplitter`). */
export function IndexSplitter(validIdx: readonly number[]): Splitter {
  const set = new Set(validIdx);
  return (items) => {
    const trn: number[] = [];
    const val: number[] = [];
    for (let i = 0; i < items.length; i++) (set.has(i) ? val : trn).push(i);
    return [trn, val];
  };
}

/** True for the CSV-ish spellings of true: `true`, `1`, `yes` (any case), or a boolean true. */
export function truthy(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0 && !Number.isNaN(v); // a missing number (NaN) is not "true"
  return ["true", "1", "yes", "t", "y"].includes(String(v).trim().toLowerCase());
}

/** Rows whose column `col` is true go to the validation set (fastai's `ColSplitter`). */
export function ColSplitter(col: string = "is_valid"): Splitter<Record<string, unknown>> {
  return (items) => {
    if (items.length > 0 && !(col in items[0]!)) {
      throw new Error(`ColSplitter: column "${col}" not found; columns are ${Object.keys(items[0]!).join(", ")}`);
    }
    const trn: number[] = [];
    const val: number[] = [];
    items.forEach((row, i) => (truthy(row[col]) ? val : trn).push(i));
    return [trn, val];
  };
}

/** The name of the folder a file is in (fastai's `parent_label`). */
export function parentLabel(file: string): string {
  return path.basename(path.dirname(file));
}

/** Label by the first capture group of `pattern` (fastai's `RegexLabeller`); `match` anchors at the start. */
export function RegexLabeller(pattern: RegExp | string, opts: { match?: boolean } = {}): (item: string) => string {
  const re = typeof pattern === "string" ? new RegExp(pattern) : pattern;
  return (item) => {
    const s = String(item);
    const m = re.exec(s);
    if (!m || (opts.match && m.index !== 0)) throw new Error(`RegexLabeller: pattern ${re} does not match "${s}"`);
    if (m[1] === undefined) throw new Error(`RegexLabeller: pattern ${re} has no capture group to use as the label`);
    return m[1];
  };
}
