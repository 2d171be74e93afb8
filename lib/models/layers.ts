/**
 * fastai's small layers that tfjs-layers lacks, registered so that saved models reload from JSON.
 */
import * as tf from "../engine/tf";

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
