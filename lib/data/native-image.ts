/**
 * tsfast's image addon (`native/image`, built with the engine when libjpeg's headers are there):
 *
 * - The JPEG fast path. Plain JPEGs are decoded by libjpeg-turbo off the main thread. When the
 *   region kept is at least twice the output size, libjpeg's DCT scaling shrinks on load (PIL's
 *   `draft`). One triangle-filter resample then takes that region to the output size (PIL's
 *   BILINEAR, antialiased when shrinking). sharp (libvips) costs about 1.8 ms of CPU per 500×375
 *   photo for lesson 1's crop-and-resize, of which libjpeg's decode is 0.19 ms; this path costs
 *   about 0.5 ms. sharp keeps every other image, and JPEGs with an ICC profile, an EXIF rotation,
 *   CMYK, or any libjpeg warning. `TSFAST_DECODER=sharp` turns the fast path off.
 * - The augmentation warp: `projectiveResample` (augment.ts), lighting and normalisation fused,
 *   in C++, bit for bit the same floats.
 *
 * `TSFAST_IMAGE_ADDON=0` turns both off (plain sharp and JavaScript, as without the addon).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { nativeDir } from "../engine/native/addon";
import type { ItemPlan } from "./transforms";
import type { RawImage } from "./pixels";

/** The addon's functions. */
export interface ImageAddon {
  /** Size and components of a JPEG, and `refuse` (why the fast path does not apply) when it does not. */
  jpegHeader(buf: Uint8Array): { width: number; height: number; components: number; refuse?: string };
  /**
   * Decode `buf`, resample its `box` ([x0, y0, x1, y1] in pixels of the full image) to `ow`×`oh`
   * RGB in `out`; resolves to the DCT scale used (out of 8), or to why it refused the file.
   */
  jpegDecode(buf: Uint8Array, out: Uint8Array, box: Float64Array, ow: number, oh: number, allowScale: boolean): Promise<number | string>;
  /** The resample alone, synchronously: `box` of the `w`×`h` RGB `src` to `ow`×`oh` in `out`. */
  resample(src: Uint8Array, w: number, h: number, box: Float64Array, out: Uint8Array, ow: number, oh: number): void;
  /**
   * `projectiveResample` (augment.ts): `pad` 0 zeros, 1 border, 2 reflection; then the lighting
   * table `lut` and the normalisation `norm` ([mean0..2, scale0..2]) when given. Returns how many
   * lighting edge cells it left as resampled, listed in `edges` (indices from `offset`).
   */
  warp(
    src: Uint8Array, w: number, h: number, m: Float64Array, oh: number, ow: number, pad: number, out: Float32Array, offset: number,
    lut: Float32Array | null, norm: Float64Array | null, edges: Int32Array | null,
  ): number;
  /** The libjpeg-turbo version it was built against. */
  libjpeg: string;
}

let cached: ImageAddon | null | undefined;

/** The addon, or null when it was not built (no libjpeg headers) or `TSFAST_IMAGE_ADDON=0`. */
export function imageAddon(): ImageAddon | null {
  if (process.env["TSFAST_IMAGE_ADDON"] === "0") return null;
  if (cached !== undefined) return cached;
  cached = null;
  try {
    const file = path.join(nativeDir(), "image", "build", "Release", "tsfast_image.node");
    if (fs.existsSync(file)) cached = require(file) as ImageAddon;
  } catch {
    // not in a checkout's layout, or a broken build: sharp and JavaScript do the work
  }
  return cached;
}

/** The addon for decoding JPEGs: none when `TSFAST_DECODER` picks a decoder (sharp or jimp). */
export function jpegAddon(): ImageAddon | null {
  return process.env["TSFAST_DECODER"] ? null : imageAddon();
}

/** True for bytes that start like a JPEG (SOI and a marker). */
export function isJpeg(buf: Uint8Array): boolean {
  return buf.length > 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
}

/** The plans the fast path runs: a crop and/or a resize, nothing padded or cropped after resizing. */
export function fastPlan(plan: ItemPlan | undefined): boolean {
  return plan === undefined || (plan.extend === undefined && plan.crop === undefined);
}

/**
 * Decode `buf` (`width`×`height`, a header the addon accepted) through `plan` (or whole when
 * undefined); resolves to undefined when libjpeg refused the file, which sharp then decodes.
 */
export async function decodeJpegFast(addon: ImageAddon, buf: Uint8Array, width: number, height: number, plan: ItemPlan | undefined): Promise<RawImage | undefined> {
  const r = plan?.extract ?? { left: 0, top: 0, width, height };
  const out = plan?.resize ?? { width: r.width, height: r.height };
  const data = new Uint8Array(out.width * out.height * 3);
  const box = new Float64Array([r.left, r.top, r.left + r.width, r.top + r.height]);
  const res = await addon.jpegDecode(buf, data, box, out.width, out.height, true);
  if (typeof res === "string") return undefined;
  return { data, width: out.width, height: out.height };
}
