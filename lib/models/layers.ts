/**
 * fastai's small layers that tfjs-layers lacks, registered so that saved models reload from JSON.
 */
import * as tf from "../engine/tf";
import { registerConvCall } from "../engine/conv-layers";

type Kwargs = Record<string, unknown>;

/**
 * fastai's `AdaptiveConcatPool2d`: global max-pool and global avg-pool, concatenated along the
 * channels (max first, as fastai), keeping 1×1 spatial dims: `[b, h, w, c]` → `[b, 1, 1, 2c]`.
 */
export class AdaptiveConcatPool2d extends tf.layers.Layer {
  static className = "AdaptiveConcatPool2d";

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const c = s[3];
    return [s[0] ?? null, 1, 1, c == null ? null : 2 * c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      return tf.concat([tf.max(x, [1, 2], true), tf.mean(x, [1, 2], true)], 3);
    });
  }

  override getClassName(): string {
    return AdaptiveConcatPool2d.className;
  }
}

/**
 * fastai's `nn.AdaptiveAvgPool2d(1)` (the head's pool with `concatPool: false`): the global average,
 * keeping 1×1 spatial dims, `[b, h, w, c]` → `[b, 1, 1, c]`. tfjs's `globalAveragePooling2d` drops them
 * (its `keepDims` is not in tfjs-layers 4.22), and the head's `Flatten` needs a rank-4 input.
 */
export class AdaptiveAvgPool2d extends tf.layers.Layer {
  static className = "AdaptiveAvgPool2d";

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0] ?? null, 1, 1, s[3] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mean((Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D, [1, 2], true));
  }

  override getClassName(): string {
    return AdaptiveAvgPool2d.className;
  }
}

/** fastai's `SigmoidRange`: `sigmoid(x) * (high - low) + low`, for regression targets in a known range. */
export class SigmoidRange extends tf.layers.Layer {
  static className = "SigmoidRange";
  readonly low: number;
  readonly high: number;

  constructor(args: { low: number; high: number; name?: string }) {
    super({ name: args.name });
    this.low = args.low;
    this.high = args.high;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
      return tf.add(tf.mul(tf.sigmoid(x), this.high - this.low), this.low);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), low: this.low, high: this.high };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config as Kwargs) as T;
  }

  override getClassName(): string {
    return SigmoidRange.className;
  }
}

tf.serialization.registerClass(AdaptiveConcatPool2d);
tf.serialization.registerClass(AdaptiveAvgPool2d);
tf.serialization.registerClass(SigmoidRange);

/** The members of tfjs-layers' `Conv2D` that `PaddedConv2D` uses (tfjs-layers does not export the class). */
interface Conv2DLayer extends tf.layers.Layer {
  kernel: tf.LayerVariable | null;
  bias: tf.LayerVariable | null;
  filters: number;
  kernelSize: number[];
  strides: number[];
  dilationRate: number[];
  dataFormat: string;
  activation: { apply(x: tf.Tensor): tf.Tensor; getClassName(): string } | null;
}
type Conv2DClass = new (args: Kwargs) => Conv2DLayer;
// Its constructor, reached through an instance (named, so tfjs's automatic layer names do not move).
const Conv2DBase = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1, name: "tsfast_conv2d_probe" })).constructor as Conv2DClass;

/** `[[0, 0], [p, p], [p, p], [0, 0]]`: `p` zeros on each side of an NHWC tensor's height and width. */
function symmetric(p: number): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [p, p], [p, p], [0, 0]];
}

/** PyTorch's output length of a window over `n` with `p` padding on each side (floor mode). */
function windowLength(n: number | null, k: number, stride: number, p: number, dilation = 1): number | null {
  return n == null ? null : Math.floor((n + 2 * p - (k - 1) * dilation - 1) / stride) + 1;
}

function positiveInteger(v: unknown, what: string, min = 1): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new Error(`${what} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/**
 * tfjs-layers' `Conv2D` with PyTorch's padding: `pad` zeros on every side, inside the convolution
 * (PyTorch's `nn.Conv2d(..., padding=pad)`). tfjs's `same` puts a stride-2 convolution's extra
 * pixel on one side only, so tsfast's ResNets used to pad with a `ZeroPadding2D` layer and run a
 * `valid` convolution on the padded copy: a copy of the activation forward, a slice of its gradient
 * backward, and the copy kept for the backward pass. Here the engines pad inside the kernel (oneDNN,
 * XNNPACK and tfjs's cpu kernels all take explicit padding), with the same numbers.
 * Weights and config are `Conv2D`'s plus `pad`; channels-last only.
 */
export class PaddedConv2D extends Conv2DBase {
  static className = "PaddedConv2D";
  readonly pad: number;

  constructor(args: Kwargs) {
    super({ ...args, padding: "valid" });
    this.pad = positiveInteger(args["pad"], "PaddedConv2D: pad", 0);
    if (this.dataFormat !== "channelsLast") throw new Error(`PaddedConv2D: only channelsLast data, got ${this.dataFormat}`);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const [kh, kw] = this.kernelSize as [number, number];
    const [sh, sw] = this.strides as [number, number];
    const [dh, dw] = this.dilationRate as [number, number];
    return [s[0] ?? null, windowLength(s[1] ?? null, kh, sh, this.pad, dh), windowLength(s[2] ?? null, kw, sw, this.pad, dw), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      // a ReLU runs inside the convolution (a oneDNN post-op on "native"), as tfjs's Conv2D does
      const act = this.activation ? this.activation.getClassName() : "linear";
      const fused = act === "relu";
      let y: tf.Tensor = tf.fused.conv2d({
        x,
        filter: this.kernel!.read() as tf.Tensor4D,
        strides: this.strides as [number, number],
        pad: symmetric(this.pad),
        dataFormat: "NHWC",
        dilations: this.dilationRate as [number, number],
        bias: this.bias ? this.bias.read() : undefined,
        activation: fused ? "relu" : "linear",
      });
      if (act !== "linear" && !fused) y = this.activation!.apply(y);
      return y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), pad: this.pad };
  }

  override getClassName(): string {
    return PaddedConv2D.className;
  }
}

/**
 * PyTorch's `nn.MaxPool2d(poolSize, strides, pad)`: padded positions never win the max (PyTorch pads
 * with -inf), and the window count rounds down. tfjs-layers' `MaxPooling2D` has only `valid` and
 * (asymmetric) `same`.
 */
export class PaddedMaxPool2D extends tf.layers.Layer {
  static className = "PaddedMaxPool2D";
  readonly poolSize: number;
  readonly strides: number;
  readonly pad: number;

  constructor(args: { poolSize: number; strides: number; pad: number; name?: string }) {
    super({ name: args.name });
    this.poolSize = positiveInteger(args.poolSize, "PaddedMaxPool2D: poolSize");
    this.strides = positiveInteger(args.strides, "PaddedMaxPool2D: strides");
    this.pad = positiveInteger(args.pad, "PaddedMaxPool2D: pad", 0);
    if (2 * this.pad > this.poolSize) throw new Error(`PaddedMaxPool2D: pad ${this.pad} must be at most half of poolSize ${this.poolSize} (PyTorch's rule)`);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0] ?? null, windowLength(s[1] ?? null, this.poolSize, this.strides, this.pad), windowLength(s[2] ?? null, this.poolSize, this.strides, this.pad), s[3] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      return tf.maxPool(x, this.poolSize, this.strides, symmetric(this.pad));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), poolSize: this.poolSize, strides: this.strides, pad: this.pad };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config as Kwargs) as T;
  }

  override getClassName(): string {
    return PaddedMaxPool2D.className;
  }
}

tf.serialization.registerClass(PaddedConv2D as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>);
// its call is one convolution padded `pad` on each side: fusions may stand in for it (engine/conv-layers.ts)
registerConvCall(PaddedConv2D.prototype.call, (l) => symmetric((l as unknown as PaddedConv2D).pad));
tf.serialization.registerClass(PaddedMaxPool2D);
