/**
 * Decoding: any image file sharp reads (JPEG, PNG, WebP, GIF's first frame, TIFF, AVIF, SVG) to
 * 8-bit RGB, with EXIF orientation applied and alpha composited on white, item transforms
 * applied on the way. Plain JPEGs take a faster path (libjpeg-turbo with DCT scaling, ./native-image.ts)
 * when tsfast's image addon is built. Falls back to jimp (pure JavaScript) when sharp cannot load.
 *
 * Normalisation rules: grayscale, CMYK and 16-bit inputs are converted to 8-bit sRGB; an alpha
 * channel is composited over `background` (default white, as a transparent emoji looks on a page).
 */
import { open, readFile } from "node:fs/promises";
import { applyPlanJs, type RawImage } from "./pixels";
import { planItemTfm, type ItemPlan, type ItemTfm, type PadMode } from "./transforms";
import { Rng } from "./random";
import { decodeJpegFast, fastPlan, isJpeg, jpegAddon, type ImageAddon } from "./native-image";
import type { Metadata, Sharp, SharpOptions } from "sharp";

/** Pixel limit above which an image is refused (PIL's decompression-bomb threshold). */
export const DEFAULT_MAX_PIXELS = 178_956_970;

/** Options of `decodeImage`. */
export interface DecodeOptions {
  /** Refuse images with more pixels than this. Default 178,956,970 (PIL's bomb limit). */
  maxPixels?: number;
  /** RGB colour alpha is composited over. Default [255, 255, 255] (white). */
  background?: [number, number, number];
  /**
   * Skip an enlarging resize of the last item transform (keep the cropped region at its own
   * resolution). Loaders set it when a batch transform resamples to a smaller final size anyway:
   * the batch resample works in relative coordinates, so the upscale would only cost time. Default false.
   */
  noUpscale?: boolean;
  /**
   * Colour mode, with PIL's names: "RGB", or "L" for grey (luminance copied into all three
   * channels, see `toGrey`). The hook for a grey `ImageBlock`: a block that wants one channel
   * sets "L" and keeps channel 0 when it collates. Default "RGB".
   */
  mode?: ImageMode;
  /**
   * Filled with the geometry the decode ran: the source size (after EXIF orientation) and each
   * item transform's plan as executed. Masks and points of the same item follow these plans.
   */
  record?: DecodeRecord;
}

/** What `decodeImage` records of its geometry (see `DecodeOptions.record`). */
export interface DecodeRecord {
  srcWidth: number;
  srcHeight: number;
  plans: ItemPlan[];
}

/** A decoded image's colour mode (PIL's names): 8-bit RGB, or grey ("L"). */
export type ImageMode = "RGB" | "L";

/**
 * Grey as PIL's `convert("L")` computes it (ITU-R 601-2 luma), rounded, written to all three
 * channels so every later step (batch transforms, the loaders) runs unchanged. It runs after the
 * item transforms; resampling is linear, so the order changes only the rounding:
 *   1. L = R·299/1000 + G·587/1000 + B·114/1000
 *   2. R = G = B = round(L)
 */
export function toGrey(img: RawImage): RawImage {
  const d = img.data;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i += 3) {
    const l = Math.round((d[i]! * 299 + d[i + 1]! * 587 + d[i + 2]! * 114) / 1000);
    out[i] = out[i + 1] = out[i + 2] = l;
  }
  return { data: out, width: img.width, height: img.height };
}

/** Drop `plan`'s resize when it only enlarges a plain crop (see `DecodeOptions.noUpscale`). */
export function withoutUpscale(plan: ItemPlan, w: number, h: number): ItemPlan {
  if (!plan.resize || plan.extend || plan.crop) return plan;
  const sw = plan.extract?.width ?? w;
  const sh = plan.extract?.height ?? h;
  if (plan.resize.width < sw || plan.resize.height < sh) return plan;
  const out: ItemPlan = { out: { width: sw, height: sh } };
  if (plan.extract) out.extract = plan.extract;
  return out;
}

/** An image that could not be decoded; `path` names the file. */
export class ImageDecodeError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = "ImageDecodeError";
  }
}

/** Which decoder runs: `sharp` (libvips) or `jimp` (pure JavaScript). */
export type DecoderName = "sharp" | "jimp";

type SharpModule = (input: Buffer | string, opts?: SharpOptions) => Sharp;
let sharpModule: SharpModule | null | undefined;
let noticeShown = false;

/** The decoder in use: `TSFAST_DECODER=jimp` forces jimp; otherwise sharp unless it fails to load. */
export function decoderName(): DecoderName {
  return loadSharp() ? "sharp" : "jimp";
}

/**
 * sharp itself (tsfast's own copy), for lessons that make or convert image files: a notebook in
 * any folder gets it from tsfast, with no install of its own. Throws if sharp cannot load here.
 */
export function sharp(input: Buffer | string, opts?: SharpOptions): Sharp {
  if (!sharpModule) {
    try {
      sharpModule = require("sharp") as SharpModule;
    } catch (e) {
      throw new Error(`sharp cannot load on this machine (${(e instanceof Error ? e.message : String(e)).split("\n")[0]}); reinstall tsfast's dependencies with \`npm ci\``);
    }
  }
  return sharpModule(input, opts);
}

function loadSharp(): SharpModule | null {
  const forced = process.env["TSFAST_DECODER"];
  if (forced === "jimp") {
    notice("TSFAST_DECODER=jimp");
    return null;
  }
  if (sharpModule === undefined) {
    try {
      sharpModule = require("sharp") as SharpModule;
    } catch (e) {
      sharpModule = null;
      notice(`sharp cannot load: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
    }
  }
  return sharpModule;
}

function notice(why: string): void {
  if (noticeShown) return;
  noticeShown = true;
  console.warn(`tsfast: decoding images with jimp (pure JavaScript, slower) because ${why}`);
}

function describe(input: string | Buffer, index?: number): string {
  if (typeof input === "string") return input;
  return index === undefined ? "<buffer>" : `<buffer #${index}>`;
}

/**
 * Decode `input` (a path or the file's bytes) to 8-bit RGB and apply `tfms` (planned for the
 * training split when `train`, drawing from `rng`); throws `ImageDecodeError` naming the file.
 */
export async function decodeImage(
  input: string | Buffer,
  tfms: readonly ItemTfm[],
  train: boolean,
  rng: Rng,
  opts: DecodeOptions = {},
): Promise<RawImage> {
  const name = describe(input);
  let buf: Buffer;
  try {
    buf = typeof input === "string" ? await readFile(input) : input;
  } catch (e) {
    throw new ImageDecodeError(name, `cannot read file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (buf.length === 0) throw new ImageDecodeError(name, "empty file (0 bytes)");
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const bg = opts.background ?? [255, 255, 255];
  const sharp = loadSharp();
  const noUpscale = opts.noUpscale ?? false;
  const jpeg = sharp && tfms.length <= 1 && isJpeg(buf) ? jpegAddon() : null;
  const fast = jpeg ? await decodeJpegPath(jpeg, buf, name, tfms[0], train, rng, maxPixels, noUpscale, opts.record) : undefined;
  const img = fast?.img ?? (await (sharp
    ? decodeSharp(sharp, buf, name, tfms, train, rng, maxPixels, bg, noUpscale, opts.record, fast?.planned)
    : decodeJimp(buf, name, tfms, train, rng, maxPixels, bg, noUpscale, opts.record)));
  return (opts.mode ?? "RGB") === "L" ? toGrey(img) : img;
}

/**
 * The JPEG fast path (./native-image.ts) for at most one item transform. Without `img`, sharp decodes:
 * `planned` then carries the plan already drawn (so the random stream is the same either way).
 */
async function decodeJpegPath(
  jpeg: ImageAddon,
  buf: Buffer,
  name: string,
  tfm: ItemTfm | undefined,
  train: boolean,
  rng: Rng,
  maxPixels: number,
  noUpscale: boolean,
  record?: DecodeRecord,
): Promise<{ img?: RawImage; planned?: { plan: ItemPlan | undefined } }> {
  const head = jpeg.jpegHeader(buf);
  if (head.refuse !== undefined) return {};
  checkPixels(name, head.width, head.height, maxPixels);
  let plan = tfm ? planItemTfm(tfm, head.width, head.height, train, rng) : undefined;
  if (plan && noUpscale) plan = withoutUpscale(plan, head.width, head.height);
  const img = fastPlan(plan) ? await decodeJpegFast(jpeg, buf, head.width, head.height, plan) : undefined;
  if (!img) return { planned: { plan } };
  if (record) Object.assign(record, { srcWidth: head.width, srcHeight: head.height, plans: plan ? [plan] : [] });
  return { img };
}

/** Bytes read from each end of a file by `probeImage`. */
const PROBE_BYTES = 16;

/** The first and last `PROBE_BYTES` of a file or buffer, and its size. */
async function headAndTail(input: string | Buffer): Promise<{ head: Buffer; tail: Buffer; size: number; mtimeMs: number }> {
  if (typeof input !== "string") {
    return { head: input.subarray(0, PROBE_BYTES), tail: input.subarray(Math.max(0, input.length - PROBE_BYTES)), size: input.length, mtimeMs: 0 };
  }
  const fh = await open(input, "r");
  try {
    const { size, mtimeMs } = await fh.stat();
    const n = Math.min(PROBE_BYTES, size);
    const head = Buffer.alloc(n);
    const tail = Buffer.alloc(n);
    await fh.read(head, 0, n, 0);
    await fh.read(tail, 0, n, size - n);
    return { head, tail, size, mtimeMs };
  } finally {
    await fh.close();
  }
}

/**
 * A JPEG that does not end with its end-of-image marker, or a PNG without its `IEND` chunk, was
 * probably cut off (an interrupted download); the header alone still reads fine.
 */
function looksTruncated(head: Buffer, tail: Buffer): boolean {
  const isJpeg = head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
  if (isJpeg) return tail.lastIndexOf(Buffer.from([0xff, 0xd9])) < 0;
  const isPng = head.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  if (isPng) return tail.lastIndexOf(Buffer.from("IEND")) < 0;
  return false;
}

/** `probeImage`'s verdicts on files, by path, with the size and time of change they were made for. */
const probed = new Map<string, { stamp: string; why: string | undefined }>();

/**
 * Why `input` (a path or bytes) cannot be used as an image, or `undefined` when it looks fine.
 * Cheap enough to run on every file when `DataLoaders` are built (0.4-0.7 ms a file here; a file
 * probed before and unchanged since, same size and time of change, costs only its `stat`):
 *   1. the file exists and is not empty;
 *   2. sharp reads its header (format and size) — skipped when jimp decodes;
 *   3. a JPEG or PNG whose last bytes lack the end marker is decoded in full, and kept if that works.
 * A file that passes can still fail its full decode later; the loaders skip it then (one warning).
 * Images over `maxPixels` pass: the decoder refuses them with the limit in its message.
 */
export async function probeImage(input: string | Buffer, opts: { maxPixels?: number } = {}): Promise<string | undefined> {
  let ends: { head: Buffer; tail: Buffer; size: number; mtimeMs: number };
  try {
    ends = await headAndTail(input);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a folder, not an image" : `cannot read file (${code ?? firstLine(e)})`;
  }
  if (ends.size === 0) return "empty file (0 bytes)";
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof input !== "string") return probeBytes(input, ends, maxPixels);
  const stamp = `${ends.size}:${ends.mtimeMs}:${maxPixels}:${decoderName()}`;
  const seen = probed.get(input);
  if (seen && seen.stamp === stamp) return seen.why;
  const why = await probeBytes(input, ends, maxPixels);
  probed.set(input, { stamp, why });
  return why;
}

/** Steps 2 and 3 of `probeImage`. */
async function probeBytes(input: string | Buffer, ends: { head: Buffer; tail: Buffer }, maxPixels: number): Promise<string | undefined> {
  const fullDecode = async (): Promise<string | undefined> => {
    try {
      await decodeImage(input, [], false, new Rng(0), { maxPixels });
      return undefined;
    } catch (e) {
      return e instanceof ImageDecodeError ? e.reason : firstLine(e);
    }
  };
  const sharp = loadSharp();
  let pixels = 0;
  if (sharp) {
    let meta: Metadata;
    try {
      meta = await sharp(input, { limitInputPixels: false }).metadata();
    } catch (e) {
      // Formats libvips lacks (BMP) may still decode with jimp: try the real thing.
      if (/unsupported image format/i.test(firstLine(e))) return fullDecode();
      return `not a readable image (${firstLine(e)})`;
    }
    const w = meta.width ?? 0;
    const h = meta.height ?? 0;
    if (!(w > 0 && h > 0)) return "image has no size";
    pixels = w * h;
  }
  if (looksTruncated(ends.head, ends.tail) && pixels <= maxPixels) return fullDecode();
  return undefined;
}

function checkPixels(name: string, w: number, h: number, maxPixels: number): void {
  if (w * h > maxPixels) {
    throw new ImageDecodeError(
      name,
      `image is ${w}×${h} = ${w * h} pixels, over the limit of ${maxPixels} (pass a larger maxPixels to load it)`,
    );
  }
}

const SHARP_EXTEND: Record<PadMode, "background" | "copy" | "mirror"> = {
  zeros: "background",
  border: "copy",
  reflection: "mirror",
};

async function decodeSharp(
  sharp: SharpModule,
  buf: Buffer,
  name: string,
  tfms: readonly ItemTfm[],
  train: boolean,
  rng: Rng,
  maxPixels: number,
  bg: [number, number, number],
  noUpscale: boolean,
  record?: DecodeRecord,
  planned?: { plan: ItemPlan | undefined },
): Promise<RawImage> {
  let meta: Metadata;
  try {
    meta = await sharp(buf, { limitInputPixels: false }).metadata();
  } catch (e) {
    // Formats libvips lacks (BMP, for one) may still be readable by jimp.
    if (/unsupported image format/i.test(firstLine(e))) {
      try {
        return await decodeJimp(buf, name, tfms, train, rng, maxPixels, bg, noUpscale, record);
      } catch {
        // fall through to sharp's message
      }
    }
    throw new ImageDecodeError(name, `not a readable image (${firstLine(e)})`);
  }
  const w0 = meta.autoOrient?.width ?? meta.width ?? 0;
  const h0 = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!(w0 > 0 && h0 > 0)) throw new ImageDecodeError(name, "image has no size");
  checkPixels(name, w0, h0, maxPixels);
  if (record) Object.assign(record, { srcWidth: w0, srcHeight: h0, plans: [] });
  let w = w0;
  let h = h0;
  let raw: Buffer | undefined;
  // The first transform runs in the decoding pipeline itself (so JPEG shrink-on-load applies);
  // later ones run on the raw result.
  const steps = tfms.length === 0 ? [undefined] : tfms;
  for (const [k, tfm] of steps.entries()) {
    let plan: ItemPlan | undefined;
    if (k === 0 && planned) plan = planned.plan;
    else {
      plan = tfm ? planItemTfm(tfm, w, h, train, rng) : undefined;
      if (plan && noUpscale && k === steps.length - 1) plan = withoutUpscale(plan, w, h);
    }
    if (plan) record?.plans.push(plan);
    let pipe: Sharp;
    if (raw === undefined) {
      pipe = sharp(buf, { limitInputPixels: maxPixels, pages: 1 }).autoOrient();
      if (meta.hasAlpha) pipe = pipe.flatten({ background: { r: bg[0], g: bg[1], b: bg[2] } });
    } else {
      pipe = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
    }
    if (plan) pipe = applyPlanSharp(pipe, plan);
    try {
      const res = await pipe.toColourspace("srgb").removeAlpha().raw().toBuffer({ resolveWithObject: true });
      if (res.info.channels !== 3) throw new Error(`decoded to ${res.info.channels} channels`);
      raw = res.data;
      w = res.info.width;
      h = res.info.height;
    } catch (e) {
      if (e instanceof ImageDecodeError) throw e;
      throw new ImageDecodeError(name, `cannot decode (${firstLine(e)})`);
    }
  }
  return { data: new Uint8Array(raw!.buffer, raw!.byteOffset, raw!.length), width: w, height: h };
}

function applyPlanSharp(pipe: Sharp, plan: ItemPlan): Sharp {
  if (plan.extract) pipe = pipe.extract(plan.extract);
  if (plan.resize) pipe = pipe.resize(plan.resize.width, plan.resize.height, { fit: "fill", kernel: "linear" });
  if (plan.extend) {
    const { mode, ...margins } = plan.extend;
    pipe = pipe.extend({ ...margins, extendWith: SHARP_EXTEND[mode], background: { r: 0, g: 0, b: 0, alpha: 1 } });
  }
  if (plan.crop) {
    // A second extract after a resize is applied to the resized image.
    if (!plan.resize) throw new Error("internal: a post-resize crop needs a resize");
    pipe = pipe.extract(plan.crop);
  }
  return pipe;
}

async function decodeJimp(
  buf: Buffer,
  name: string,
  tfms: readonly ItemTfm[],
  train: boolean,
  rng: Rng,
  maxPixels: number,
  bg: [number, number, number],
  noUpscale: boolean,
  record?: DecodeRecord,
): Promise<RawImage> {
  const { Jimp } = require("jimp") as typeof import("jimp");
  let img: Awaited<ReturnType<typeof Jimp.read>>;
  try {
    img = await Jimp.read(buf);
  } catch (e) {
    throw new ImageDecodeError(name, `not a readable image (${firstLine(e)})`);
  }
  const { width, height, data } = img.bitmap;
  checkPixels(name, width, height, maxPixels);
  if (record) Object.assign(record, { srcWidth: width, srcHeight: height, plans: [] });
  // RGBA → RGB, compositing alpha over the background.
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height * 4; i += 4, j += 3) {
    const a = data[i + 3]! / 255;
    rgb[j] = Math.round(data[i]! * a + bg[0] * (1 - a));
    rgb[j + 1] = Math.round(data[i + 1]! * a + bg[1] * (1 - a));
    rgb[j + 2] = Math.round(data[i + 2]! * a + bg[2] * (1 - a));
  }
  let cur: RawImage = { data: rgb, width, height };
  for (const [k, tfm] of tfms.entries()) {
    let plan = planItemTfm(tfm, cur.width, cur.height, train, rng);
    if (noUpscale && k === tfms.length - 1) plan = withoutUpscale(plan, cur.width, cur.height);
    record?.plans.push(plan);
    cur = applyPlanJs(cur, plan);
  }
  return cur;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split("\n")[0] ?? msg).slice(0, 200);
}
