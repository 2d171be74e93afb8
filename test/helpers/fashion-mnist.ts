/**
 * A tiny private reader for the Fashion-MNIST IDX files of Debian's `dataset-fashion-mnist`
 * (the wasm training tests' real data; the library's public dataset loaders live in lib/data).
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** `n` images (28×28, values in [0, 1], row-major) and their labels from the train or t10k split. */
export function readFashionMnist(split: "train" | "t10k", n: number): { images: Float32Array; labels: Int32Array } {
  const file = (kind: string) => `${FASHION_MNIST_DIR}/${split}-${kind}-ubyte.gz`;
  const imgPath = file("images-idx3");
  if (!fs.existsSync(imgPath)) {
    throw new Error(`${imgPath} is missing: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)`);
  }
  const img = zlib.gunzipSync(fs.readFileSync(imgPath));
  const lab = zlib.gunzipSync(fs.readFileSync(file("labels-idx1")));
  // IDX header: magic (0x803 images / 0x801 labels), then one big-endian uint32 per dimension.
  if (img.readUInt32BE(0) !== 0x803 || lab.readUInt32BE(0) !== 0x801) throw new Error(`${imgPath}: not an IDX file pair`);
  const count = img.readUInt32BE(4);
  const rows = img.readUInt32BE(8);
  const cols = img.readUInt32BE(12);
  if (n > count) throw new Error(`${imgPath} holds ${count} images, ${n} asked for`);
  const px = rows * cols;
  const images = new Float32Array(n * px);
  for (let i = 0; i < n * px; i++) images[i] = img[16 + i]! / 255;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = lab[8 + i]!;
  return { images, labels };
}
