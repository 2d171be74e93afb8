/**
 * Checking that uploaded bytes are a whole, decodable image before the model sees them.
 *
 * Two steps, because they fail for different reasons the client must hear about:
 *   1. Read the header (`sharp().metadata()`): no known image format → 415.
 *   2. Decode every pixel: a truncated or corrupt file fails here → 422. A header announcing
 *      more than `maxPixels` pixels is refused before decoding (a decompression bomb) → 422.
 */
import sharp from "sharp";
import { HttpError } from "./errors";

/** What `checkImage` learned about a valid upload. */
export interface ImageInfo {
  /** Format name from the file header (`jpeg`, `png`, `webp`, `gif`, ...). */
  format: string;
  width: number;
  height: number;
}

/** Throw a 415/422 `HttpError` unless `data` decodes fully as an image of at most `maxPixels` pixels. */
export async function checkImage(data: Buffer, maxPixels: number, filename?: string): Promise<ImageInfo> {
  const what = filename ? `"${filename}"` : "the upload";
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>>;
  try {
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch {
    throw new HttpError(
      415,
      "not_an_image",
      `${what} (${data.length} bytes, starting ${JSON.stringify(data.subarray(0, 8).toString("latin1"))}) is not an image format tsfast can decode (JPEG, PNG, WebP, GIF, TIFF, AVIF, SVG)`,
    );
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height > maxPixels) {
    throw new HttpError(422, "image_too_large", `${what} is ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels} (maxPixels)`);
  }
  try {
    await sharp(data, { limitInputPixels: maxPixels }).raw().toBuffer();
  } catch (e) {
    const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new HttpError(422, "corrupt_image", `${what} is a ${meta.format ?? "image"} file that cannot be decoded (truncated or corrupt): ${reason}`);
  }
  return { format: meta.format ?? "unknown", width, height };
}
