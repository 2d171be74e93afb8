/**
 * fastai's building blocks (`ConvLayer`, `ResBlock`, `LinBnDrop`, `Flatten`) and `simpleCnn` made
 * of them, with fastai's defaults instead of tfjs's where tfjs's break training:
 *
 * - BatchNorm: PyTorch's momentum and eps (tfjs `momentum` 0.9 = PyTorch 0.1; tfjs's default 0.99
 *   leaves the moving statistics at their starting values after a short fit, and validation near
 *   chance), gamma 1 (0 for the last BatchNorm of a residual branch) and beta 1e-3, as fastai.
 * - Init: a conv followed by ReLU is Kaiming-uniform (fan in, gain √2), as fastai's `init_linear`;
 *   without an activation, and for linear layers, PyTorch's default (uniform ±1/√fanIn). A conv
 *   bias (only without BatchNorm) starts as N(0, 0.01), fastai's `bias_std`.
 * - Padding: PyTorch's symmetric `(ks − 1)/2` on both sides, also for stride 2 (tfjs `same` puts
 *   the extra pixel on one side only, so those convolutions are `PaddedConv2D`s).
 *
 * tfjs-layers models are graphs of layers, so a block is not a layer but a recipe: `build(x, ctx)`
 * adds its layers after the symbolic tensor `x`, named `<name>.conv`, `<name>.bn`, ... (PyTorch's
 * state-dict style, so `hookOutput(model, "1.relu")` finds them). `sequential([...])` chains blocks
 * and plain tfjs layers into a model, the way `nn.Sequential` does in fastai.
 */
import * as tf from "../engine/tf";
import { PaddedConv2D } from "./layers";

type SymbolicTensor = tf.SymbolicTensor;
type Initializer = ReturnType<typeof tf.initializers.zeros>;

/** What a block needs while it builds: its name and seeds for its initialisers. */
export interface BuildContext {
  /** The block's name; its layers are named `<name>.<part>`. */
  name: string;
  /** The next seed (each initialiser takes one, so a model built twice with the same seed is identical). */
  seed(): number;
}

/** A piece of network (fastai's `ConvLayer`, `ResBlock`, ...): it adds its layers after `x`. */
export interface ModelBlock {
  /** What it is (`ConvLayer`, `ResBlock`), for messages. */
  readonly kind: string;
  build(x: SymbolicTensor, ctx: BuildContext): SymbolicTensor;
}

/** BatchNorm settings that match PyTorch: eps 1e-5 and, in tfjs terms, momentum 0.9 (PyTorch's 0.1). */
export const BN_EPS = 1e-5;
/** tfjs' `momentum` is the weight of the OLD running value: torch momentum 0.1 ↔ tfjs 0.9. */
export const BN_MOMENTUM = 0.9;

/** The activation after a block: ReLU, or none. */
export type Activation = "relu" | null;

/** A child context: same seed stream, name `<parent>.<part>`. */
function child(ctx: BuildContext, part: string | number): BuildContext {
  return { name: `${ctx.name}.${part}`, seed: ctx.seed };
}

function channelsOf(x: SymbolicTensor): number | null {
  return x.shape[x.shape.length - 1] ?? null;
}

/** Refuse an input whose channels are not the `ni` a block was made for (PyTorch would fail there too). */
function checkChannels(kind: string, ctx: BuildContext, x: SymbolicTensor, ni: number): void {
  const c = channelsOf(x);
  if (c !== null && c !== ni) {
    throw new Error(
      `${kind} "${ctx.name}" was made for ${ni} input channels (ni) but its input has ${c}; ` +
        `each block's ni must equal the previous block's nf`,
    );
  }
}

function checkCount(kind: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${kind}: ${what} must be a positive integer, got ${v}`);
}

/** Kaiming-uniform for ReLU (gain √2, fan in), or PyTorch's default for a layer without one. */
function weightInit(act: Activation, seed: number): Initializer {
  return tf.initializers.varianceScaling({ scale: act === "relu" ? 2 : 1 / 3, mode: "fanIn", distribution: "uniform", seed });
}

/** fastai's `BatchNorm` (a layer named `name`): PyTorch's momentum and eps, gamma 1 (0 with `zero`), beta 1e-3. */
export function BatchNorm(name: string, zero = false): tf.layers.Layer {
  return tf.layers.batchNormalization({
    axis: -1,
    epsilon: BN_EPS,
    momentum: BN_MOMENTUM,
    gammaInitializer: zero ? "zeros" : "ones",
    betaInitializer: tf.initializers.constant({ value: 1e-3 }),
    name,
  });
}

/** Options of a 2-D convolution with PyTorch's padding. */
export interface TorchConvOptions {
  /** Output channels. */
  filters: number;
  /** Kernel size. */
  ks: number;
  stride: number;
  /** Zero padding on every side (PyTorch's `padding`). */
  padding: number;
  useBias: boolean;
  kernelInitializer: Initializer;
  biasInitializer?: Initializer;
}

/**
 * A conv with PyTorch's symmetric padding: tfjs's `Conv2D` (`same`, or `valid` without padding) when
 * that is the same thing, else a `PaddedConv2D` that pads inside the convolution.
 */
export function torchConv2d(x: SymbolicTensor, name: string, o: TorchConvOptions): SymbolicTensor {
  const args = {
    filters: o.filters,
    kernelSize: o.ks,
    strides: o.stride,
    useBias: o.useBias,
    kernelInitializer: o.kernelInitializer,
    ...(o.biasInitializer ? { biasInitializer: o.biasInitializer } : {}),
    name,
  };
  const same = o.stride === 1 && 2 * o.padding === o.ks - 1;
  const layer = o.padding > 0 && !same ? new PaddedConv2D({ ...args, pad: o.padding }) : tf.layers.conv2d({ ...args, padding: o.padding > 0 ? "same" : "valid" });
  return layer.apply(x) as SymbolicTensor;
}

/** Options of `ConvLayer` (fastai's defaults). */
export interface ConvLayerOptions {
  /** Kernel size (default 3). */
  ks?: number;
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on every side (default `(ks − 1)/2` rounded down, PyTorch's "same" for odd `ks`). */
  padding?: number;
  /** BatchNorm after the conv (default true); fastai's `norm_type=None` is `bn: false`. */
  bn?: boolean;
  /** Start the BatchNorm's gamma at 0 (fastai's `NormType.BatchZero`, default false). */
  bnZero?: boolean;
  /** Activation after the BatchNorm (default "relu"; `null` for none). */
  act?: Activation;
  /** Conv bias (default: only without BatchNorm, which has its own shift). */
  bias?: boolean;
}

/** fastai's `ConvLayer`: conv → BatchNorm → ReLU, from `ni` to `nf` channels. */
export function ConvLayer(ni: number, nf: number, opts: ConvLayerOptions = {}): ModelBlock {
  checkCount("ConvLayer", "ni", ni);
  checkCount("ConvLayer", "nf", nf);
  const ks = opts.ks ?? 3;
  const stride = opts.stride ?? 1;
  checkCount("ConvLayer", "ks", ks);
  checkCount("ConvLayer", "stride", stride);
  const padding = opts.padding ?? Math.floor((ks - 1) / 2);
  if (!Number.isInteger(padding) || padding < 0) throw new Error(`ConvLayer: padding must be a non-negative integer, got ${padding}`);
  const bn = opts.bn ?? true;
  const act = opts.act === undefined ? "relu" : opts.act;
  if (act !== "relu" && act !== null) throw new Error(`ConvLayer: act must be "relu" or null, got ${JSON.stringify(act)}`);
  const bias = opts.bias ?? !bn;
  return {
    kind: "ConvLayer",
    build(x, ctx) {
      checkChannels("ConvLayer", ctx, x, ni);
      let h = torchConv2d(x, `${ctx.name}.conv`, {
        filters: nf,
        ks,
        stride,
        padding,
        useBias: bias,
        kernelInitializer: weightInit(act, ctx.seed()),
        biasInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.01, seed: ctx.seed() }),
      });
      if (bn) h = BatchNorm(`${ctx.name}.bn`, opts.bnZero ?? false).apply(h) as SymbolicTensor;
      if (act === "relu") h = tf.layers.reLU({ name: `${ctx.name}.relu` }).apply(h) as SymbolicTensor;
      return h;
    },
  };
}

/** Options of `ResBlock`. */
export interface ResBlockOptions {
  /** Stride of the first conv; the shortcut average-pools by the same factor (default 1). */
  stride?: number;
  /** Kernel size of the two convs (default 3). */
  ks?: number;
}

/**
 * fastai's `ResBlock` (expansion 1, the book's chapter 14): `relu(convpath(x) + idpath(x))` where
 * convpath is `ConvLayer(ni, nf, stride)` then `ConvLayer(nf, nf)` with no ReLU and gamma 0 (so the
 * block starts as the identity), and idpath average-pools (when `stride` > 1) then 1×1-convs (when
 * `ni ≠ nf`) so the shapes match.
 */
export function ResBlock(ni: number, nf: number, opts: ResBlockOptions = {}): ModelBlock {
  checkCount("ResBlock", "ni", ni);
  checkCount("ResBlock", "nf", nf);
  const stride = opts.stride ?? 1;
  const ks = opts.ks ?? 3;
  checkCount("ResBlock", "stride", stride);
  const conv1 = ConvLayer(ni, nf, { ks, stride });
  const conv2 = ConvLayer(nf, nf, { ks, act: null, bnZero: true });
  const idconv = ni !== nf ? ConvLayer(ni, nf, { ks: 1, act: null }) : undefined;
  return {
    kind: "ResBlock",
    build(x, ctx) {
      checkChannels("ResBlock", ctx, x, ni);
      let h = conv1.build(x, child(ctx, "convpath.0"));
      h = conv2.build(h, child(ctx, "convpath.1"));
      let id = x;
      if (stride !== 1) {
        // fastai: AvgPool(stride, ceil_mode=True, count_include_pad=False); tfjs `same` pooling counts only real pixels
        id = tf.layers.averagePooling2d({ poolSize: stride, strides: stride, padding: "same", name: `${ctx.name}.idpath.pool` }).apply(id) as SymbolicTensor;
      }
      if (idconv) id = idconv.build(id, child(ctx, "idpath.conv"));
      const sum = tf.layers.add({ name: `${ctx.name}.add` }).apply([h, id]) as SymbolicTensor;
      return tf.layers.reLU({ name: `${ctx.name}.relu` }).apply(sum) as SymbolicTensor;
    },
  };
}

/** Options of `LinBnDrop` (fastai's defaults). */
export interface LinBnDropOptions {
  /** BatchNorm over the features (default true). */
  bn?: boolean;
  /** Dropout probability (default 0: none). */
  p?: number;
  /** Activation after the linear layer (default null: none). */
  act?: Activation;
  /** Linear first, then BatchNorm and dropout (default false: BatchNorm, dropout, linear). */
  linFirst?: boolean;
}

/** fastai's `LinBnDrop`: BatchNorm → dropout → linear (→ activation), from `nIn` to `nOut` features. */
export function LinBnDrop(nIn: number, nOut: number, opts: LinBnDropOptions = {}): ModelBlock {
  checkCount("LinBnDrop", "nIn", nIn);
  checkCount("LinBnDrop", "nOut", nOut);
  const bn = opts.bn ?? true;
  const p = opts.p ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`LinBnDrop: dropout p must be in [0, 1), got ${p}`);
  const act = opts.act ?? null;
  if (act !== "relu" && act !== null) throw new Error(`LinBnDrop: act must be "relu" or null, got ${JSON.stringify(act)}`);
  const linFirst = opts.linFirst ?? false;
  return {
    kind: "LinBnDrop",
    build(x, ctx) {
      if (x.shape.length !== 2) {
        throw new Error(`LinBnDrop "${ctx.name}" needs [batch, features] input but got [${x.shape.join(", ")}]; put Flatten() before it`);
      }
      checkChannels("LinBnDrop", ctx, x, nIn);
      const norm = (h: SymbolicTensor): SymbolicTensor => {
        if (bn) h = BatchNorm(`${ctx.name}.bn`).apply(h) as SymbolicTensor;
        if (p > 0) h = tf.layers.dropout({ rate: p, seed: ctx.seed(), name: `${ctx.name}.drop` }).apply(h) as SymbolicTensor;
        return h;
      };
      const lin = (h: SymbolicTensor): SymbolicTensor => {
        const bound = 1 / Math.sqrt(nIn); // PyTorch's Linear init, weights and bias
        h = tf.layers
          .dense({
            units: nOut,
            useBias: !bn,
            kernelInitializer: weightInit(null, ctx.seed()),
            biasInitializer: tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: ctx.seed() }),
            name: `${ctx.name}.lin`,
          })
          .apply(h) as SymbolicTensor;
        return act === "relu" ? (tf.layers.reLU({ name: `${ctx.name}.relu` }).apply(h) as SymbolicTensor) : h;
      };
      return linFirst ? norm(lin(x)) : lin(norm(x));
    },
  };
}

/** fastai's `Flatten`: `[batch, ...]` → `[batch, features]`. */
export function Flatten(): ModelBlock {
  return { kind: "Flatten", build: (x, ctx) => tf.layers.flatten({ name: ctx.name }).apply(x) as SymbolicTensor };
}

/** fastai's `PoolFlatten`: global average pooling, `[batch, h, w, c]` → `[batch, c]`. */
export function PoolFlatten(): ModelBlock {
  return { kind: "PoolFlatten", build: (x, ctx) => tf.layers.globalAveragePooling2d({ name: `${ctx.name}.pool` }).apply(x) as SymbolicTensor };
}

/** Options of `sequential`. */
export interface SequentialOptions {
  /** Input shape without the batch, e.g. `[28, 28, 1]`, or `[784]` for flat input. */
  inputShape: (number | null)[];
  /** Seed of every initialiser (default 0). */
  seed?: number;
  /** The model's name (default "sequential"). */
  name?: string;
}

function isBlock(v: unknown): v is ModelBlock {
  return typeof v === "object" && v !== null && typeof (v as ModelBlock).build === "function" && typeof (v as ModelBlock).kind === "string";
}

/**
 * fastai's `nn.Sequential` of blocks: builds a model that runs `items` in order. Blocks are named by
 * their position (`0.conv`, `0.bn`, `1.convpath.0.conv`, ...); plain tfjs layers keep their own names.
 */
export function sequential(items: (ModelBlock | tf.layers.Layer)[], opts: SequentialOptions): tf.LayersModel {
  if (!Array.isArray(items) || items.length === 0) throw new Error("sequential needs a non-empty array of blocks or layers");
  if (!opts || !Array.isArray(opts.inputShape) || opts.inputShape.length === 0) {
    throw new Error("sequential needs { inputShape }, the shape of one input without the batch, e.g. [28, 28, 1]");
  }
  let n = (opts.seed ?? 0) * 10007 + 1;
  const seed = () => n++;
  const input = tf.input({ shape: opts.inputShape, name: "input" });
  let x: SymbolicTensor = input;
  items.forEach((item, i) => {
    if (isBlock(item)) x = item.build(x, { name: String(i), seed });
    else if (item instanceof tf.layers.Layer) x = item.apply(x) as SymbolicTensor;
    else throw new Error(`sequential: item ${i} is neither a block (ConvLayer, ResBlock, LinBnDrop, Flatten) nor a tf.layers layer`);
  });
  return tf.model({ inputs: input, outputs: x, name: opts.name ?? "sequential" });
}

/** Options of `simpleCnn`. */
export interface SimpleCnnOptions {
  /** Channels: input first, classes last (default `[1, 16, 32, 64, 10]`). */
  actns?: number[];
  /** Kernel size of each conv (default 3). */
  kernelSzs?: number[];
  /** Stride of each conv (default 2). */
  strides?: number[];
  /** BatchNorm after every conv but the last (default true). */
  bn?: boolean;
  /** Input shape (default `[null, null, actns[0]]`). */
  inputShape?: [number | null, number | null, number];
  /** Seed of the random initialisation (default 0). */
  seed?: number;
}

/**
 * fastai's `simple_cnn`: stride-2 3×3 `ConvLayer`s (conv → BN → ReLU) then `PoolFlatten`.
 * Unlike fastai, the last conv has no ReLU: its outputs are the logits, and a ReLU would clip them.
 */
export function simpleCnn(opts: SimpleCnnOptions = {}): tf.LayersModel {
  const actns = opts.actns ?? [1, 16, 32, 64, 10];
  const nl = actns.length - 1;
  if (nl < 1) throw new Error(`simpleCnn: actns needs at least 2 entries, got [${actns.join(", ")}]`);
  const blocks: ModelBlock[] = [];
  for (let i = 0; i < nl; i++) {
    const last = i === nl - 1;
    blocks.push(
      ConvLayer(actns[i]!, actns[i + 1]!, {
        ks: opts.kernelSzs?.[i] ?? 3,
        stride: opts.strides?.[i] ?? 2,
        bn: (opts.bn ?? true) && !last,
        act: last ? null : "relu",
      }),
    );
  }
  blocks.push(PoolFlatten());
  return sequential(blocks, { inputShape: opts.inputShape ?? [null, null, actns[0]!], seed: opts.seed, name: "simple_cnn" });
}
