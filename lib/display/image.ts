/**
 * Showing images: tensors or encoded PNG/JPEG bytes, alone or as a captioned grid.
 */
import sharp from "sharp";
import * as tf from "../engine/tf";
import { escapeHtml, showBundle } from "./display";

/** An image to show: encoded bytes (PNG/JPEG/...) or an HWC tensor (float in [0,1] or ints in [0,255]). */
export type ImageLike = Buffer | Uint8Array | tf.Tensor3D;

/** Encode an HWC tensor (1, 3 or 4 channels; float in [0,1] or integers in [0,255]) as PNG. */
export async function tensorToPng(t: tf.Tensor3D): Promise<Buffer> {
  if (t.rank !== 3) throw new Error(`tensorToPng expects an HWC tensor of rank 3, got shape [${t.shape.join(", ")}]`);
  const [h, w, c] = t.shape;
  if (c !== 1 && c !== 3 && c !== 4) throw new Error(`tensorToPng expects 1, 3 or 4 channels, got ${c}`);
  const values = await t.data();
  // Float tensors are taken as [0,1]; integer tensors as [0,255]. Both are clipped.
  const scale = t.dtype === "float32" ? 255 : 1;
  const bytes = Buffer.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Math.round((values[i] ?? 0) * scale);
    bytes[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return sharp(bytes, { raw: { width: w, height: h, channels: c as 1 | 3 | 4 } }).png().toBuffer();
}

/** A grey PNG whose pixel values are `data` (one byte per pixel, row-major): how masks of class indices are saved. */
export async function greyPng(data: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(Buffer.from(data), { raw: { width, height, channels: 1 } }).toColourspace("b-w").png().toBuffer();
}

async function toPng(image: ImageLike): Promise<Buffer> {
  if (image instanceof tf.Tensor) return tensorToPng(image);
  return sharp(Buffer.from(image)).png().toBuffer();
}

/** Show one image inline (PNG). */
export async function showImage(image: ImageLike, opts: { title?: string } = {}): Promise<void> {
  const png = await toPng(image);
  const meta = await sharp(png).metadata();
  const text = `[image ${meta.width}x${meta.height}]${opts.title ? " " + opts.title : ""}`;
  showBundle({ "image/png": png.toString("base64"), "text/plain": text });
}

/** One cell of an image grid. */
export interface GridItem {
  image: ImageLike;
  /** Caption under the image. */
  title?: string;
  /** Caption colour (CSS), e.g. "red" for a wrong prediction. */
  color?: string;
}

/** Options for `showImageGrid`. */
export interface GridOptions {
  /** Images per row (default: ceil(sqrt(n))). */
  ncols?: number;
  /** Displayed size of each image in pixels (default 128). */
  size?: number;
  /** A heading over the grid. */
  title?: string;
}

/** The HTML, PNG montage and text of a captioned grid (exposed for tests and live displays). */
export async function imageGridBundle(items: GridItem[], opts: GridOptions = {}): Promise<Record<string, string>> {
  const n = items.length;
  const ncols = Math.max(1, opts.ncols ?? Math.ceil(Math.sqrt(n)));
  const size = opts.size ?? 128;
  const pngs = await Promise.all(items.map((it) => toPng(it.image)));
  const cells = items.map((it, i) => {
    const src = `data:image/png;base64,${pngs[i]!.toString("base64")}`;
    const cap = it.title ? `<div style="font:12px sans-serif;color:${escapeHtml(it.color ?? "black")};white-space:pre-line">${escapeHtml(it.title)}</div>` : "";
    return `<figure style="margin:4px;text-align:center"><img src="${src}" style="width:${size}px;height:${size}px;object-fit:contain;image-rendering:pixelated"/>${cap}</figure>`;
  });
  const heading = opts.title ? `<div style="font:bold 14px sans-serif">${escapeHtml(opts.title)}</div>` : "";
  const html = `${heading}<div class="tsfast-grid" style="display:grid;grid-template-columns:repeat(${ncols},${size + 8}px)">${cells.join("")}</div>`;
  // The montage (no captions: text rendering needs fonts) is the fallback for viewers without HTML.
  const nrows = Math.ceil(n / ncols);
  const tiles = await Promise.all(pngs.map((p) => sharp(p).resize(size, size, { fit: "contain", background: "#ffffff" }).png().toBuffer()));
  const montage = await sharp({ create: { width: ncols * size, height: Math.max(1, nrows) * size, channels: 3, background: "#ffffff" } })
    .composite(tiles.map((input, i) => ({ input, left: (i % ncols) * size, top: Math.floor(i / ncols) * size })))
    .png()
    .toBuffer();
  const text = `[${n} images]` + (items.some((it) => it.title) ? " " + items.map((it) => it.title ?? "").join(" | ") : "");
  return { "text/html": html, "image/png": montage.toString("base64"), "text/plain": text };
}

/** Show images in a grid with captions (HTML), with a PNG montage as fallback. */
export async function showImageGrid(items: GridItem[], opts: GridOptions = {}): Promise<void> {
  if (items.length === 0) throw new Error("showImageGrid was given no images");
  showBundle(await imageGridBundle(items, opts));
}
