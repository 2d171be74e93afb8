/**
 * The wasm training tests' real data: Fashion-MNIST from Debian's `dataset-fashion-mnist`, read
 * with the library's own `readIdx` and scaled to [0, 1] floats.
 */
import * as fs from "node:fs";
import { readIdx } from "../../lib/data/datasets/mnist";

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** `n` images (28×28, values in [0, 1], row-major) and their labels from the train or t10k split. */
export function readFashionMnist(split: "train" | "t10k", n: number): { images: Float32Array; labels: Int32Array } {
  const file = (kind: string) => `${FASHION_MNIST_DIR}/${split}-${kind}-ubyte.gz`;
  const imgPath = file("images-idx3");
  if (!fs.existsSync(imgPath)) {
    throw new Error(`${imgPath} is missing: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)`);
  }
  const img = readIdx(imgPath);
  const lab = readIdx(file("labels-idx1"));
  const [count, rows, cols] = img.dims;
  if (img.dims.length !== 3 || lab.dims.length !== 1) throw new Error(`${imgPath}: not an IDX image/label file pair`);
  if (n > count!) throw new Error(`${imgPath} holds ${count} images, ${n} asked for`);
  const px = rows! * cols!;
  const images = new Float32Array(n * px);
  for (let i = 0; i < n * px; i++) images[i] = img.data[i]! / 255;
  return { images, labels: Int32Array.from(lab.data.subarray(0, n)) };
}
