/**
 * A private ResNet-18/34 builder for the engine benchmark (torchvision's layout, channels-last):
 * 7x7/2 stem, 3x3/2 max pool, four stages of BasicBlocks (64-128-256-512), BatchNorm, 10 classes.
 * `same` padding stands in for torchvision's explicit padding: identical FLOPs and shapes.
 */
import * as tf from "../lib/engine/tf";

function convBn(x: tf.SymbolicTensor, filters: number, kernel: number, stride: number, name: string): tf.SymbolicTensor {
  const c = tf.layers.conv2d({ filters, kernelSize: kernel, strides: stride, padding: "same", useBias: false, name: `${name}_conv` }).apply(x) as tf.SymbolicTensor;
  return tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }).apply(c) as tf.SymbolicTensor;
}

function basicBlock(x: tf.SymbolicTensor, filters: number, stride: number, name: string): tf.SymbolicTensor {
  let y = convBn(x, filters, 3, stride, `${name}_1`);
  y = tf.layers.reLU().apply(y) as tf.SymbolicTensor;
  y = convBn(y, filters, 3, 1, `${name}_2`);
  const inC = x.shape[x.shape.length - 1];
  const shortcut = stride !== 1 || inC !== filters ? convBn(x, filters, 1, stride, `${name}_down`) : x;
  const sum = tf.layers.add().apply([y, shortcut]) as tf.SymbolicTensor;
  return tf.layers.reLU().apply(sum) as tf.SymbolicTensor;
}

/** ResNet-18 (`[2,2,2,2]`) or ResNet-34 (`[3,4,6,3]`) for `size`-pixel RGB inputs. */
export function benchResnet(depth: 18 | 34, size: number, classes = 10): tf.LayersModel {
  const blocks = depth === 18 ? [2, 2, 2, 2] : [3, 4, 6, 3];
  const input = tf.input({ shape: [size, size, 3] });
  let x = convBn(input, 64, 7, 2, "stem");
  x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "same" }).apply(x) as tf.SymbolicTensor;
  [64, 128, 256, 512].forEach((filters, stage) => {
    for (let b = 0; b < blocks[stage]!; b++) {
      x = basicBlock(x, filters, b === 0 && stage > 0 ? 2 : 1, `s${stage + 1}b${b + 1}`);
    }
  });
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: classes, name: "fc" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}
