/**
 * ResNets as tfjs-layers functional models (channels-last), laid out and named like torchvision.
 *
 * Every layer is named after the PyTorch parameter it holds (`conv1`, `layer1.0.conv1`,
 * `layer2.0.downsample.0`, `fc`), so loading torchvision/timm weights is a lookup. Strided convs
 * are `PaddedConv2D`s (and the stem's max pool a `PaddedMaxPool2D`), because tfjs `same` padding
 * puts the extra pixel on one side only while PyTorch pads both sides.
 *
 * `xresnet*` is fastai's bag-of-tricks ResNet (3-conv stem, average pooling in the shortcut, the
 * last BatchNorm of each block starting at zero), named like timm's identical `resnet*d` models
 * (`conv1.0`, `conv1.1`, ..., `downsample.1`), so timm's `resnet18d` weights load too.
 */
import * as tf from "../engine/tf";
import { BN_EPS, BN_MOMENTUM, torchConv2d } from "./blocks";
import { PaddedMaxPool2D } from "./layers";

type SymbolicTensor = tf.SymbolicTensor;
type Init = ReturnType<typeof tf.initializers.varianceScaling>;

export { BN_EPS, BN_MOMENTUM };

/** The shape of a ResNet: block type, blocks per stage, stem kind. */
export interface ResNetConfig {
  /** `basic` (two 3×3 convs, ResNet-18/34) or `bottleneck` (1×1, 3×3, 1×1; ResNet-50+). */
  block: "basic" | "bottleneck";
  /** Blocks in each of the four stages, e.g. `[2, 2, 2, 2]` for ResNet-18. */
  layers: number[];
  /** `true` for fastai's xresnet: 3-conv stem, avg-pool shortcut, zero-init last BN. */
  deep: boolean;
}

/** Options of every architecture builder (`resnet18`, `xresnet18`, ...). */
export interface ArchOptions {
  /** Input channels (default 3, or the channels of `weights`); 1 for grayscale, no copying. */
  nIn?: number;
  /** Output classes of the final `fc` (default 1000, or as many as `weights` has). */
  nOut?: number;
  /** Input shape `[height, width, channels]`; `null` sizes accept any size ≥ 32 (default `[null, null, nIn]`). */
  inputShape?: [number | null, number | null, number];
  /** Keep the pooling + `fc` classifier (default true); `false` returns the body, cut before pooling. */
  includeTop?: boolean;
  /** Width multiplier of the four stages (default 1), as fastai's `widen`. */
  widen?: number;
  /** xresnet only: channels of the 3 stem convs (default `[32, 32, 64]`). */
  stemSzs?: number[];
  /** Seed of the random initialisation (default 0). */
  seed?: number;
  /**
   * Pretrained weights: a `.safetensors` path or URL, the name of a checkpoint shipped in
   * `checkpoints/` (e.g. `"digits04-xresnet18-tiny"`), or `true` for the known default weights
   * of this architecture (downloaded once into `$TSFAST_HOME/models`). Default: random init.
   */
  weights?: string | boolean;
}

/** The options after defaults, as the sync builders take them. */
export interface ResolvedArchOptions {
  nIn: number;
  nOut: number;
  inputShape: [number | null, number | null, number];
  includeTop: boolean;
  widen: number;
  stemSzs: number[];
  seed: number;
}

/** Fill in the defaults of `ArchOptions` (weights aside). */
export function resolveArchOptions(o: ArchOptions = {}): ResolvedArchOptions {
  const nIn = o.nIn ?? o.inputShape?.[2] ?? 3;
  const inputShape = o.inputShape ?? [null, null, nIn];
  if (inputShape[2] !== nIn) {
    throw new Error(`inputShape [${inputShape.join(", ")}] has ${inputShape[2]} channels but nIn is ${nIn}`);
  }
  for (const s of inputShape.slice(0, 2)) {
    if (s !== null && s < 32) throw new Error(`inputShape [${inputShape.join(", ")}]: ResNets need images of at least 32 px (got ${s})`);
  }
  return {
    nIn,
    nOut: o.nOut ?? 1000,
    inputShape,
    includeTop: o.includeTop ?? true,
    widen: o.widen ?? 1,
    stemSzs: o.stemSzs ?? [32, 32, 64],
    seed: o.seed ?? 0,
  };
}

/** Deterministic initialisers: each call gets the next seed. */
class Inits {
  private n: number;
  constructor(seed: number) {
    this.n = seed * 10007 + 1;
  }
  /** Kaiming normal, fan-out, as torchvision inits its convs. */
  conv(): Init {
    return tf.initializers.varianceScaling({ scale: 2, mode: "fanOut", distribution: "normal", seed: this.n++ });
  }
  /** PyTorch's default Linear init: uniform(±1/sqrt(fanIn)). */
  linear(): Init {
    return tf.initializers.varianceScaling({ scale: 1 / 3, mode: "fanIn", distribution: "uniform", seed: this.n++ });
  }
}

/** BatchNorm over channels with PyTorch's eps and momentum; `zero` starts gamma at 0. */
export function batchNorm(x: SymbolicTensor, name: string, zero = false): SymbolicTensor {
  return tf.layers
    .batchNormalization({ axis: -1, epsilon: BN_EPS, momentum: BN_MOMENTUM, gammaInitializer: zero ? "zeros" : "ones", name })
    .apply(x) as SymbolicTensor;
}

/** A ReLU layer named `name`. */
export function relu(x: SymbolicTensor, name: string): SymbolicTensor {
  return tf.layers.reLU({ name }).apply(x) as SymbolicTensor;
}

/** Builds layers onto a symbolic tensor, with PyTorch padding semantics. */
export class Builder {
  constructor(readonly init: Inits) {}

  /** A k×k conv with PyTorch's symmetric padding (k-1)/2 (no bias unless asked). */
  conv(x: SymbolicTensor, name: string, filters: number, k: number, stride = 1, bias = false): SymbolicTensor {
    return torchConv2d(x, name, { filters, ks: k, stride, padding: (k - 1) / 2, useBias: bias, kernelInitializer: this.init.conv() });
  }

  bn(x: SymbolicTensor, name: string, zero = false): SymbolicTensor {
    return batchNorm(x, name, zero);
  }

  relu(x: SymbolicTensor, name: string): SymbolicTensor {
    return relu(x, name);
  }

  /** 3×3 stride-2 max pool with padding 1, as PyTorch's `nn.MaxPool2d(3, 2, 1)`. */
  maxPool(x: SymbolicTensor, name: string): SymbolicTensor {
    return new PaddedMaxPool2D({ poolSize: 3, strides: 2, pad: 1, name }).apply(x) as SymbolicTensor;
  }
}

function channels(x: SymbolicTensor): number {
  return x.shape[x.shape.length - 1] as number;
}

/** One residual block; `name` is e.g. `layer2.0`. */
function block(b: Builder, x: SymbolicTensor, name: string, planes: number, stride: number, cfg: ResNetConfig): SymbolicTensor {
  const expansion = cfg.block === "bottleneck" ? 4 : 1;
  const outCh = planes * expansion;
  const zeroLast = cfg.deep;
  let h: SymbolicTensor;
  if (cfg.block === "basic") {
    h = b.relu(b.bn(b.conv(x, `${name}.conv1`, planes, 3, stride), `${name}.bn1`), `${name}.relu1`);
    h = b.bn(b.conv(h, `${name}.conv2`, planes, 3), `${name}.bn2`, zeroLast);
  } else {
    // torchvision v1.5: the stride sits on the 3×3 conv
    h = b.relu(b.bn(b.conv(x, `${name}.conv1`, planes, 1), `${name}.bn1`), `${name}.relu1`);
    h = b.relu(b.bn(b.conv(h, `${name}.conv2`, planes, 3, stride), `${name}.bn2`), `${name}.relu2`);
    h = b.bn(b.conv(h, `${name}.conv3`, outCh, 1), `${name}.bn3`, zeroLast);
  }
  let id = x;
  if (stride !== 1 || channels(x) !== outCh) {
    if (cfg.deep) {
      // timm's resnet-d / fastai: AvgPool(stride, ceil_mode, count_include_pad=False) → 1×1 conv → BN
      if (stride !== 1) {
        id = tf.layers
          .averagePooling2d({ poolSize: stride, strides: stride, padding: "same", name: `${name}.downsample.0` })
          .apply(id) as SymbolicTensor;
      }
      id = b.bn(b.conv(id, `${name}.downsample.1`, outCh, 1), `${name}.downsample.2`);
    } else {
      id = b.bn(b.conv(id, `${name}.downsample.0`, outCh, 1, stride), `${name}.downsample.1`);
    }
  }
  const sum = tf.layers.add({ name: `${name}.add` }).apply([h, id]) as SymbolicTensor;
  return b.relu(sum, `${name}.relu`);
}

/** Build a ResNet from its config (sync, random init). */
export function buildResNet(cfg: ResNetConfig, opts: ResolvedArchOptions, name: string): tf.LayersModel {
  const b = new Builder(new Inits(opts.seed));
  const input = tf.input({ shape: opts.inputShape, name: "input" });
  let x: SymbolicTensor;
  if (cfg.deep) {
    const [s0, s1, s2] = opts.stemSzs;
    if (s0 === undefined || s1 === undefined || s2 === undefined || opts.stemSzs.length !== 3) {
      throw new Error(`stemSzs must list 3 channel counts, got [${opts.stemSzs.join(", ")}]`);
    }
    x = b.relu(b.bn(b.conv(input, "conv1.0", s0, 3, 2), "conv1.1"), "conv1.2");
    x = b.relu(b.bn(b.conv(x, "conv1.3", s1, 3), "conv1.4"), "conv1.5");
    x = b.conv(x, "conv1.6", s2, 3);
  } else {
    x = b.conv(input, "conv1", Math.round(64 * opts.widen), 7, 2);
  }
  x = b.relu(b.bn(x, "bn1"), "relu");
  x = b.maxPool(x, "maxpool");
  const widths = [64, 128, 256, 512].map((w) => Math.max(1, Math.round(w * opts.widen)));
  cfg.layers.forEach((n, i) => {
    for (let j = 0; j < n; j++) {
      const stride = j === 0 && i > 0 ? 2 : 1;
      x = block(b, x, `layer${i + 1}.${j}`, widths[i]!, stride, cfg);
    }
  });
  if (opts.includeTop) {
    x = tf.layers.globalAveragePooling2d({ name: "avgpool" }).apply(x) as SymbolicTensor;
    x = tf.layers
      .dense({ units: opts.nOut, kernelInitializer: b.init.linear(), biasInitializer: b.init.linear(), name: "fc" })
      .apply(x) as SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: x, name });
}

/** The configs of the named architectures. */
export const RESNET_CONFIGS: Record<string, ResNetConfig> = {
  resnet18: { block: "basic", layers: [2, 2, 2, 2], deep: false },
  resnet34: { block: "basic", layers: [3, 4, 6, 3], deep: false },
  resnet50: { block: "bottleneck", layers: [3, 4, 6, 3], deep: false },
  resnet101: { block: "bottleneck", layers: [3, 4, 23, 3], deep: false },
  xresnet18: { block: "basic", layers: [2, 2, 2, 2], deep: true },
  xresnet34: { block: "basic", layers: [3, 4, 6, 3], deep: true },
  xresnet50: { block: "bottleneck", layers: [3, 4, 6, 3], deep: true },
};
