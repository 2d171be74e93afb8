/**
 * Segmentation masks as files: a PNG of class indices, grey (the pixel value is the class) or
 * palette (the palette index is the class, whatever colour the palette gives it), read exactly —
 * never through a colour conversion that would blend or rescale indices.
 */
import { readFile } from "node:fs/promises";
import sharp from "sharp";
import type { RawMask } from "./follow";
import { greyPng } from "../display/image";

/** Why a mask cannot be read: names the file and what to change. */
export class MaskDecodeError extends Error {
  constructor(
    readonly path: string,
    why: string,
  ) {
    super(`${path}: ${why}`);
    this.name = "MaskDecodeError";
  }
}

interface PngHeader {
  bitDepth: number;
  colourType: number;
  palette?: Uint8Array;
}

/** The IHDR fields and PLTE chunk of a PNG, or undefined when `buf` is not a PNG. */
function pngHeader(buf: Buffer): PngHeader | undefined {
  if (buf.length < 33 || buf.readUInt32BE(0) !== 0x89504e47) return undefined;
  const hdr: PngHeader = { bitDepth: buf[24]!, colourType: buf[25]! };
  for (let p = 8; p + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    if (type === "PLTE") hdr.palette = new Uint8Array(buf.subarray(p + 8, p + 8 + len));
    if (type === "IDAT" || type === "IEND") break;
    p += 12 + len;
  }
  return hdr;
}

/** Decode a mask file (path or bytes) to class indices. */
export async function decodeMask(input: string | Buffer): Promise<RawMask> {
  const name = typeof input === "string" ? input : "<mask buffer>";
  let buf: Buffer;
  try {
    buf = typeof input === "string" ? await readFile(input) : input;
  } catch (e) {
    throw new MaskDecodeError(name, `cannot read the mask (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const png = pngHeader(buf);
  if (png?.bitDepth === 16) throw new MaskDecodeError(name, "a 16-bit PNG mask; save class indices as an 8-bit grey or palette PNG");
  if (png && (png.colourType === 2 || png.colourType === 6)) {
    throw new MaskDecodeError(name, "an RGB mask; save class indices as a grey or palette PNG (the pixel value, or palette index, is the class)");
  }
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    raw = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new MaskDecodeError(name, `not a readable mask image (${(e instanceof Error ? e.message : String(e)).split("\n")[0]})`);
  }
  const { width, height, channels } = raw.info;
  const data = new Uint8Array(width * height);
  if (png?.colourType === 3 && png.palette) {
    // Palette: sharp expands to colours; map each colour back to its (first) palette index.
    const index = new Map<number, number>();
    for (let k = png.palette.length / 3 - 1; k >= 0; k--) index.set((png.palette[3 * k]! << 16) | (png.palette[3 * k + 1]! << 8) | png.palette[3 * k + 2]!, k);
    for (let i = 0; i < data.length; i++) {
      const p = i * channels;
      const k = index.get((raw.data[p]! << 16) | (raw.data[p + 1]! << 8) | raw.data[p + 2]!);
      if (k === undefined) throw new MaskDecodeError(name, "a palette mask with a colour outside its palette");
      data[i] = k;
    }
  } else if (channels <= 2 || png?.colourType === 0 || png?.colourType === 4) {
    // Grey (sharp may hand a grey PNG back as three equal channels): channel 0 is the index.
    // A grey PNG under 8 bits comes out scaled to 0-255: scale its levels back to indices.
    const levels = png && png.bitDepth < 8 ? (1 << png.bitDepth) - 1 : 255;
    for (let i = 0; i < data.length; i++) data[i] = Math.round((raw.data[i * channels]! * levels) / 255);
  } else {
    throw new MaskDecodeError(name, `a ${channels}-channel mask; save class indices as a grey or palette PNG`);
  }
  return { data, width, height };
}

/** A mask as a grey PNG whose pixel values are the class indices (what `decodeMask` reads back). */
export async function maskToPng(m: RawMask): Promise<Buffer> {
  return greyPng(m.data, m.width, m.height);
}
