/**
 * The small layers fastai's `DynamicUnet` needs and tfjs-layers lacks, channels-last and registered
 * with tfjs serialization (so an exported U-Net reloads from JSON once this module is imported):
 *
 * - `PixelShuffle`: PyTorch's `nn.PixelShuffle`, with PyTorch's channel order. tfjs'
 *   `depthToSpace` reads channel `(i*r + j)*C + c` for sub-pixel (i, j) of channel c; PyTorch reads
 *   `c*r*r + i*r + j`. Keeping PyTorch's order means PyTorch weights load with no channel shuffle
 *   and fastai's ICNR init reads the same: the r*r filters of one output channel are neighbours.
 * - `ReplicationPad2d`: PyTorch's `nn.ReplicationPad2d` (the first half of fastai's blur).
 * - `ResizeToOrig`: nearest-neighbour resize of its first input to the spatial size of its second,
 *   a no-op when they match (fastai's `ResizeToOrig`, and the `F.interpolate` in `UnetBlock`).
 * - `SelfAttention`: fastai's `SelfAttention` (SAGAN), without its spectral normalisation.
 */
import * as tf from "../engine/tf";

type Kwargs = Record<string, unknown>;
type LayerVariable = tf.layers.Layer["weights"][number];

function first(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
}

function firstShape(s: tf.Shape | tf.Shape[]): tf.Shape {
  return (Array.isArray(s[0]) ? s[0] : s) as tf.Shape;
}

const times = (d: number | null | undefined, k: number) => (d == null ? null : d * k);

/** Layers whose whole config is a few plain fields: `getConfig` and `fromConfig` handle them. */
abstract class PlainConfigLayer extends tf.layers.Layer {
  protected abstract fields(): tf.serialization.ConfigDict;

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.fields() };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config as Kwargs) as T;
  }
}

/** `[b, h, w, c·r²]` → `[b, h·r, w·r, c]`, sub-pixel (i, j) of channel c read from channel `c·r² + i·r + j` (PyTorch's order). */
export class PixelShuffle extends PlainConfigLayer {
  static className = "PixelShuffle";
  readonly scale: number;

  constructor(args: { scale?: number; name?: string }) {
    super({ name: args.name });
    this.scale = args.scale ?? 2;
  }

  protected fields() {
    return { scale: this.scale };
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [b, h, w, c] = firstShape(inputShape);
    const r = this.scale;
    if (c != null && c % (r * r) !== 0) throw new Error(`PixelShuffle(${r}): ${c} channels is not a multiple of ${r * r}`);
    return [b ?? null, times(h, r), times(w, r), c == null ? null : c / (r * r)];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = first(inputs);
      const [b, h, w, cr] = x.shape as number[];
      const r = this.scale;
      const c = cr! / (r * r);
      // 1. split the channels as (c, i, j); 2. move i beside h and j beside w; 3. merge them
      const split = tf.reshape(x, [b! * h!, w!, c, r, r]); // [bh, w, c, i, j]
      const moved = tf.transpose(split, [0, 3, 1, 4, 2]); // [bh, i, w, j, c]
      return tf.reshape(moved, [b!, h! * r, w! * r, c]);
    });
  }

  override getClassName(): string {
    return PixelShuffle.className;
  }
}

/** PyTorch's `nn.ReplicationPad2d((left, right, top, bottom))` on `[b, h, w, c]`: edge pixels repeated. */
export class ReplicationPad2d extends PlainConfigLayer {
  static className = "ReplicationPad2d";
  /** `[left, right, top, bottom]`, PyTorch's order. */
  readonly padding: [number, number, number, number];

  constructor(args: { padding: [number, number, number, number]; name?: string }) {
    super({ name: args.name });
    this.padding = [...args.padding];
  }

  protected fields() {
    return { padding: this.padding };
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [b, h, w, c] = firstShape(inputShape);
    const [l, r, t, bo] = this.padding;
    return [b ?? null, h == null ? null : h + t + bo, w == null ? null : w + l + r, c ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [l, r, t, bo] = this.padding;
      const edge = (x: tf.Tensor, axis: number, before: number, after: number) => {
        // fresh begin/size arrays per slice: tfjs keeps them by reference for the gradient
        const at = (i: number) => [0, 1, 2, 3].map((d) => (d === axis ? i : 0));
        const size = [0, 1, 2, 3].map((d) => (d === axis ? 1 : -1));
        const head = tf.slice(x, at(0), size);
        const tail = tf.slice(x, at(x.shape[axis]! - 1), size.slice());
        const parts = [...Array<tf.Tensor>(before).fill(head), x, ...Array<tf.Tensor>(after).fill(tail)];
        return parts.length === 1 ? x : tf.concat(parts, axis);
      };
      return edge(edge(first(inputs), 1, t, bo), 2, l, r);
    });
  }

  override getClassName(): string {
    return ReplicationPad2d.className;
  }
}

/** `[x, ref]` → `x` resized (nearest, PyTorch's `F.interpolate` rule) to `ref`'s height and width; `x` itself when they match. */
export class ResizeToOrig extends PlainConfigLayer {
  static className = "ResizeToOrig";

  constructor(args: { name?: string } = {}) {
    super({ name: args.name });
  }

  protected fields() {
    return {};
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [x, ref] = inputShape as tf.Shape[];
    return [x![0] ?? null, ref![1] ?? null, ref![2] ?? null, x![3] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, ref] = inputs as tf.Tensor[];
    const [h, w] = [ref!.shape[1]!, ref!.shape[2]!];
    if (x!.shape[1] === h && x!.shape[2] === w) return tf.clone(x!);
    // alignCorners and halfPixelCenters off: source index floor(dst · in / out), as PyTorch's 'nearest'
    return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [h, w]);
  }

  override getClassName(): string {
    return ResizeToOrig.className;
  }
}

/**
 * fastai's `SelfAttention` over the pixels of `[b, h, w, c]` (SAGAN): with N = h·w pixels,
 * f = x·Wq, g = x·Wk (c/8 channels), v = x·Wv; out = γ · softmax_i(f_i·g_j)-weighted sum of v + x.
 * γ starts at 0, so the layer starts as the identity. fastai wraps Wq, Wk, Wv in spectral
 * normalisation; this layer does not (a documented difference). The kernels are stored as
 * PyTorch's 1-d conv weights `[out, in, 1]`, named `query.0.weight` & co, so fastai-layout state
 * dicts load as they are.
 */
export class SelfAttention extends PlainConfigLayer {
  static className = "SelfAttention";
  readonly nChannels: number;
  readonly seed: number;
  private wq?: LayerVariable;
  private wk?: LayerVariable;
  private wv?: LayerVariable;
  private gamma?: LayerVariable;

  constructor(args: { nChannels: number; seed?: number; name?: string }) {
    super({ name: args.name });
    this.nChannels = args.nChannels;
    this.seed = args.seed ?? 0;
  }

  protected fields() {
    return { nChannels: this.nChannels, seed: this.seed };
  }

  override build(): void {
    const c = this.nChannels;
    const c8 = Math.floor(c / 8);
    // PyTorch's default conv init: uniform(±1/sqrt(fan_in))
    const init = (k: number) => tf.initializers.randomUniform({ minval: -1 / Math.sqrt(c), maxval: 1 / Math.sqrt(c), seed: this.seed + k });
    this.wq = this.addWeight("query.0.weight", [c8, c, 1], "float32", init(1));
    this.wk = this.addWeight("key.0.weight", [c8, c, 1], "float32", init(2));
    this.wv = this.addWeight("value.0.weight", [c, c, 1], "float32", init(3));
    this.gamma = this.addWeight("gamma", [1], "float32", tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return firstShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = first(inputs);
      const [b, h, w, c] = x.shape as number[];
      const n = h! * w!;
      const flat = tf.reshape(x, [b! * n, c!]);
      // 1. the three 1×1 projections (PyTorch's [out, in, 1] kernels, hence transposeB)
      const proj = (v: LayerVariable) => {
        const k = tf.reshape(v.read(), [v.shape[0]!, c!]) as tf.Tensor2D;
        return tf.reshape(tf.matMul(flat as tf.Tensor2D, k, false, true), [b!, n, v.shape[0]!]) as tf.Tensor3D;
      };
      const f = proj(this.wq!);
      const g = proj(this.wk!);
      const v = proj(this.wv!);
      // 2. beta^T[j, i] = softmax over i of f_i·g_j (fastai's softmax over dim 1, transposed)
      const betaT = tf.softmax(tf.matMul(g, f, false, true), -1) as tf.Tensor3D;
      // 3. out_j = γ Σ_i beta[i, j] v_i + x_j
      const o = tf.matMul(betaT, v);
      return tf.add(tf.mul(this.gamma!.read(), tf.reshape(o, [b!, h!, w!, c!])), x);
    });
  }

  override getClassName(): string {
    return SelfAttention.className;
  }
}

tf.serialization.registerClass(PixelShuffle);
tf.serialization.registerClass(ReplicationPad2d);
tf.serialization.registerClass(ResizeToOrig);
tf.serialization.registerClass(SelfAttention);
