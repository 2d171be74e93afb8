/**
 * `unetLearner`: fastai's `unet_learner` — a `DynamicUnet` (a U-Net decoder grown on any encoder)
 * over a (pretrained) ResNet body, for per-pixel classification. Channels-last: images
 * `[b, h, w, c]` in, logits `[b, h, w, nOut]` out, at the input's size.
 *
 * How `DynamicUnet` is built (fastai's algorithm, vision/models/unet.py):
 * 1. Run the encoder's children (stem conv, bn, relu, maxpool, layer1..4) on an `imgSize` image
 *    (shape inference here, no compute) and take a skip connection wherever the next child
 *    changes the spatial size (relu, layer1, layer2, layer3 for a ResNet).
 * 2. Middle: BatchNorm → ReLU → ConvLayer(ni → 2ni) → ConvLayer(2ni → ni).
 * 3. One `UnetBlock` per skip, deepest first: `PixelShuffle_ICNR` doubles the size (1×1 conv to 4×
 *    the channels with ICNR init, ReLU, pixel shuffle, optional blur), nearest resize to the
 *    skip's size if they differ, concat with BatchNorm(skip), ReLU, two ConvLayers (the channels
 *    halve, except in the last block); fastai's self-attention sits in the third-from-last block.
 * 4. A final `PixelShuffle_ICNR` when the last skip is smaller than the image, a resize to the
 *    input's size, the input image concatenated (`lastCross`) and a `ResBlock`, then a 1×1
 *    ConvLayer to `nOut` (and `SigmoidRange` with `yRange`).
 * fastai's U-Net uses `norm_type=None`: its ConvLayers are conv (with bias) → ReLU, no BatchNorm.
 *
 * Names: the encoder keeps its torchvision names (`conv1`, `layer1.0.conv1`); the decoder's layers
 * are named after fastai's `DynamicUnet` state dict (`1` the BatchNorm, `3.0.0` the first middle
 * conv, `4.shuf.0.0`, `4.bn`, `4.conv1.0`, ..., `11.convpath.0.0`, `12.0`), so `modelStateDict`
 * gives fastai's keys and `bench/unet_torch.py` (the PyTorch port the tests compare with) loads them.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { Learner } from "../learner/learner";
import type { DataLoadersLike, VisionDataLoaders } from "../learner/contracts";
import type { LearnerOptions } from "../learner/learner";
import { CrossEntropyLossFlat } from "../learner/losses";
import type { Arch, Stats } from "./archs";
import { archMeta, setArchMeta } from "./archs";
import { SigmoidRange } from "./layers";
import { batchNorm, relu } from "./resnet";
import type { ArchOptions } from "./resnet";
import { PixelShuffle, ReplicationPad2d, ResizeToOrig, SelfAttention } from "./unet-layers";
import { addWeightsNormalize, omit, peekData, splitBodyHead } from "./vision";

type SymbolicTensor = tf.SymbolicTensor;

/** Options of `DynamicUnet` (`dynamicUnet`, `createUnetModel`), fastai's names and defaults. */
export interface UnetOptions {
  /** Blur after each pixel shuffle (replication pad + 2×2 average pool), against checkerboard artefacts (default false). */
  blur?: boolean;
  /** With `blur`, blur the last `UnetBlock` too (default true). */
  blurFinal?: boolean;
  /** Self-attention in the third-from-last `UnetBlock` (default false; without fastai's spectral norm). */
  selfAttention?: boolean;
  /** Squash outputs into `[low, high]` with a sigmoid (default none), for regression. */
  yRange?: [number, number];
  /** Concatenate the input image before the final `ResBlock` (default true). */
  lastCross?: boolean;
  /** The final `ResBlock` halves the channels (default false). */
  bottle?: boolean;
  /** Norm of the decoder's ConvLayers: `null` none (fastai's U-Net default), `"batch"` BatchNorm. */
  normType?: "batch" | null;
  /** Seed of the decoder's initialisation (default 0). */
  seed?: number;
}

/** Options of `createUnetModel`: the decoder's, plus which weights the encoder starts from. */
export interface UnetModelOptions extends UnetOptions {
  /** `true`: the architecture's known (ImageNet) weights; a string: a shipped checkpoint, a path or URL; `false`: random (default true). */
  pretrained?: boolean | string;
  /** Input channels (default 3). */
  nIn?: number;
  /** Extra options for the architecture (e.g. `widen`). */
  archOptions?: ArchOptions;
}

/** Deterministic He-normal initialisers (fastai's `kaiming_normal_`), one seed each. */
class Seeds {
  constructor(private n: number) {}
  heNormal() {
    return tf.initializers.heNormal({ seed: this.n++ });
  }
  /** PyTorch's default conv init, uniform(±1/sqrt(fan_in)). */
  torchDefault() {
    return tf.initializers.varianceScaling({ scale: 1 / 3, mode: "fanIn", distribution: "uniform", seed: this.n++ });
  }
  next() {
    return this.n++;
  }
}

function channels(x: SymbolicTensor): number {
  return x.shape[x.shape.length - 1] as number;
}

/** Builds fastai's decoder layers onto symbolic tensors, naming each after its state-dict key. */
class Decoder {
  /** ICNR kernels to set once the model exists (ICNR is an init, not a serialisable initializer). */
  readonly icnr: { name: string; seed: number }[] = [];
  constructor(
    readonly seeds: Seeds,
    readonly normType: "batch" | null,
  ) {}

  /**
   * fastai's `ConvLayer` (an `nn.Sequential` named `name`): conv `.0` (symmetric padding, bias
   * only without norm), then BatchNorm `.1` with `norm: "batch"`, then ReLU when `act`, then `xtra`.
   */
  convLayer(
    x: SymbolicTensor,
    name: string,
    nf: number,
    o: { ks?: number; act?: boolean; norm?: "batch" | "batchZero" | null; init?: "he" | "torch"; xtra?: (x: SymbolicTensor, name: string) => SymbolicTensor } = {},
  ): SymbolicTensor {
    const ks = o.ks ?? 3;
    const norm = o.norm === undefined ? this.normType : o.norm;
    let i = 0;
    let h = tf.layers
      .conv2d({
        filters: nf,
        kernelSize: ks,
        padding: "same", // odd kernels, stride 1: symmetric, as PyTorch's padding (ks-1)/2
        useBias: norm === null,
        kernelInitializer: o.init === "torch" ? this.seeds.torchDefault() : this.seeds.heNormal(),
        name: `${name}.${i++}`,
      })
      .apply(x) as SymbolicTensor;
    if (norm !== null) h = batchNorm(h, `${name}.${i++}`, norm === "batchZero");
    if (o.act ?? true) h = relu(h, `${name}.${i++}`);
    if (o.xtra) h = o.xtra(h, `${name}.${i++}`);
    return h;
  }

  /** fastai's `PixelShuffle_ICNR(ni, nf)`: ConvLayer 1×1 to 4·nf (ICNR init) `.0`, shuffle `.1`, blur `.2`/`.3`. */
  pixelShuffleICNR(x: SymbolicTensor, name: string, nf: number, blur: boolean): SymbolicTensor {
    const conv = `${name}.0`;
    let h = this.convLayer(x, conv, nf * 4, { ks: 1 });
    this.icnr.push({ name: `${conv}.0`, seed: this.seeds.next() });
    h = new PixelShuffle({ scale: 2, name: `${name}.1` }).apply(h) as SymbolicTensor;
    if (blur) {
      h = new ReplicationPad2d({ padding: [1, 0, 1, 0], name: `${name}.2` }).apply(h) as SymbolicTensor;
      h = tf.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: "valid", name: `${name}.3` }).apply(h) as SymbolicTensor;
    }
    return h;
  }

  /** fastai's `UnetBlock`: upsample `up`, match `skip`'s size, concat with BatchNorm(skip), ReLU, two ConvLayers. */
  unetBlock(up: SymbolicTensor, skip: SymbolicTensor, name: string, o: { finalDiv: boolean; blur: boolean; selfAttention: boolean }): SymbolicTensor {
    const upC = channels(up);
    let u = this.pixelShuffleICNR(up, `${name}.shuf`, Math.floor(upC / 2), o.blur);
    u = new ResizeToOrig({ name: `${name}.resize` }).apply([u, skip]) as SymbolicTensor;
    const s = batchNorm(skip, `${name}.bn`);
    let h = tf.layers.concatenate({ axis: -1, name: `${name}.cat` }).apply([u, s]) as SymbolicTensor;
    h = relu(h, `${name}.relu`);
    const ni = Math.floor(upC / 2) + channels(skip);
    const nf = o.finalDiv ? ni : Math.floor(ni / 2);
    h = this.convLayer(h, `${name}.conv1`, nf);
    const sa = (t: SymbolicTensor, n: string) => new SelfAttention({ nChannels: nf, seed: this.seeds.next(), name: n }).apply(t) as SymbolicTensor;
    return this.convLayer(h, `${name}.conv2`, nf, { xtra: o.selfAttention ? sa : undefined });
  }

  /**
   * fastai's `ResBlock(1, ni, nf)`: ReLU(convpath(x) + idpath(x)); convpath = ConvLayer 3×3 →
   * ConvLayer 3×3 without activation (its BatchNorm starting at zero); idpath = identity, or a 1×1
   * ConvLayer with BatchNorm when the channels change (fastai's default norm there).
   */
  resBlock(x: SymbolicTensor, name: string, nf: number): SymbolicTensor {
    const norm2 = this.normType === "batch" ? "batchZero" : null;
    let h = this.convLayer(x, `${name}.convpath.0`, nf);
    h = this.convLayer(h, `${name}.convpath.1`, nf, { act: false, norm: norm2 });
    const id = channels(x) === nf ? x : this.convLayer(x, `${name}.idpath.0`, nf, { ks: 1, act: false, norm: "batch" });
    const sum = tf.layers.add({ name: `${name}.add` }).apply([h, id]) as SymbolicTensor;
    return relu(sum, `${name}.act`);
  }
}

/**
 * The encoder's children as fastai's `nn.Sequential` body has them (layers grouped by the first
 * part of their name: `conv1`, `bn1`, `relu`, `maxpool`, `layer1`, ...), each with its output.
 */
function encoderChildren(body: tf.LayersModel): { name: string; output: SymbolicTensor }[] {
  const out = new Map<string, SymbolicTensor>();
  for (const l of body.layers) {
    if (l.getClassName() === "InputLayer") continue;
    out.set(l.name.split(".")[0]!, l.output as SymbolicTensor); // later layers of a child overwrite: its last output
  }
  return [...out].map(([name, output]) => ({ name, output }));
}

/** The children after which the spatial size changes (fastai's `_get_sz_change_idxs`, on the width). */
export function sizeChangeIdxs(sizes: tf.Shape[]): number[] {
  const idxs: number[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) if (sizes[i]![2] !== sizes[i + 1]![2]) idxs.push(i);
  return idxs;
}

/**
 * fastai's `DynamicUnet` on `body` (a model cut before its pooling, built by `resnet18({ includeTop:
 * false })` & co): the U-Net for `nOut` classes, structured for `imgSize` images (square when a
 * number) though it runs on any size. ICNR sets the upsampling convs' kernels.
 */
export function dynamicUnet(body: tf.LayersModel, nOut: number, imgSize: number | [number, number], opts: UnetOptions = {}): tf.LayersModel {
  const [h, w] = typeof imgSize === "number" ? [imgSize, imgSize] : imgSize;
  const input = body.inputs[0]!;
  const nIn = channels(input);
  const children = encoderChildren(body);
  const probe = tf.model({ inputs: body.inputs, outputs: children.map((c) => c.output) });
  const sizes = probe.computeOutputShape([1, h, w, nIn]) as tf.Shape[];
  const idxs = sizeChangeIdxs(sizes).reverse();
  const d = new Decoder(new Seeds((opts.seed ?? 0) * 7919 + 101), opts.normType ?? null);

  let x = body.outputs[0]!;
  const ni = channels(x);
  x = relu(batchNorm(x, "1"), "2");
  x = d.convLayer(d.convLayer(x, "3.0", ni * 2), "3.1", ni);
  let k = 4;
  idxs.forEach((idx, i) => {
    const notFinal = i !== idxs.length - 1;
    x = d.unetBlock(x, children[idx]!.output, `${k++}`, {
      finalDiv: notFinal,
      blur: (opts.blur ?? false) && (notFinal || (opts.blurFinal ?? true)),
      selfAttention: (opts.selfAttention ?? false) && i === idxs.length - 3,
    });
  });
  let nc = channels(x);
  if (sizes[0]![1] !== h || sizes[0]![2] !== w) x = d.pixelShuffleICNR(x, `${k++}`, nc, false);
  x = new ResizeToOrig({ name: `${k++}` }).apply([x, input]) as SymbolicTensor;
  if (opts.lastCross ?? true) {
    x = tf.layers.concatenate({ axis: -1, name: `${k++}` }).apply([x, input]) as SymbolicTensor;
    nc += nIn;
    x = d.resBlock(x, `${k++}`, opts.bottle ? Math.floor(nc / 2) : nc);
  }
  x = d.convLayer(x, `${k++}`, nOut, { ks: 1, act: false, init: "torch" });
  if (opts.yRange) x = new SigmoidRange({ low: opts.yRange[0], high: opts.yRange[1], name: `${k++}` }).apply(x) as SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x, name: `${body.name}_unet` });
  for (const { name, seed } of d.icnr) setIcnr(model.getLayer(name), seed);
  return model;
}

/**
 * fastai's `icnr_init` for a conv that feeds a pixel shuffle of scale 2: one He-normal filter per
 * output channel, copied to its 4 sub-pixel positions (channels `4c..4c+3`), so the shuffled
 * output starts as a nearest-neighbour upsampling, free of checkerboard artefacts.
 */
export function setIcnr(conv: tf.layers.Layer, seed: number): void {
  const [kernel, ...rest] = conv.getWeights();
  const [kh, kw, cin, cout] = kernel!.shape as number[];
  const k = tf.tidy(() => {
    const base = tf.initializers.heNormal({ seed }).apply([kh!, kw!, cin!, cout! / 4]);
    return tf.reshape(tf.tile(tf.reshape(base, [kh!, kw!, cin!, cout! / 4, 1]), [1, 1, 1, 1, 4]), [kh!, kw!, cin!, cout!]);
  });
  const zeros = rest.map((b) => tf.zerosLike(b)); // fastai zeroes its bias
  conv.setWeights([k, ...zeros]);
  tf.dispose([k, ...zeros]); // (getWeights' tensors are the variables' own: not disposed)
}

/** fastai's `create_unet_model`: `arch`'s body (pretrained by default) cut before pooling, and a `DynamicUnet` on it; returns the model and the weights' stats. */
export async function createUnetModel(
  arch: Arch,
  nOut: number,
  imgSize: number | [number, number],
  opts: UnetModelOptions = {},
): Promise<{ model: tf.LayersModel; stats?: Stats }> {
  await ready();
  const pretrained = opts.pretrained ?? true;
  if (pretrained === "shipped") throw new Error('createUnetModel: pretrained: "shipped" picks by the data, which only unetLearner sees; name the checkpoint instead');
  const body = await arch({ ...opts.archOptions, nIn: opts.nIn, includeTop: false, weights: pretrained === false ? undefined : pretrained, seed: opts.seed });
  const model = dynamicUnet(body, nOut, imgSize, opts);
  const meta = archMeta(body);
  if (meta) setArchMeta(model, meta);
  return { model, stats: meta?.stats };
}

/** `unetLearner`'s parameter groups: `splitBodyHead` with the decoder (layers named by number) as the head. */
export function unetSplit(model: tf.LayersModel): tf.layers.Layer[][] {
  return splitBodyHead(model, (l) => /^\d/.test(l.name));
}

/** `unetLearner`'s options that are the model's, not the Learner's. */
const UNET_MODEL_KEYS = ["pretrained", "nIn", "archOptions", "blur", "blurFinal", "selfAttention", "yRange", "lastCross", "bottle", "normType", "seed", "normalize", "nOut", "imgSize"] as const;

/** Options of `unetLearner`: the U-Net's, the encoder's and the Learner's (`lossFunc`, `metrics`, `lr`, `wd`, `cbs`, `trainBn`, ...). */
export interface UnetLearnerOptions extends UnetModelOptions, Omit<LearnerOptions, "splitter"> {
  /** Add a `Normalize` batch transform with the weights' stats when pretrained and none is present (default true). */
  normalize?: boolean;
  /** Classes per pixel (default `dls.c`). */
  nOut?: number;
  /** The size the U-Net is structured for (default: the size of a validation batch's images). */
  imgSize?: number | [number, number];
  /** Parameter groups (default `unetSplit`: encoder stem..layer2 | layer3..layer4 | decoder). */
  splitter?: (model: tf.LayersModel) => tf.layers.Layer[][];
}

/**
 * fastai's `unet_learner`: a `DynamicUnet` over `arch`'s (pretrained) body for `dls.c` classes per
 * pixel, loss `CrossEntropyLossFlat({ axis: -1 })` over the pixels of `[b, h, w]` class-index
 * masks, 3 parameter groups, the weights' normalisation added to `dls`; frozen (all but the
 * decoder) when pretrained.
 */
export async function unetLearner(dls: DataLoadersLike & VisionDataLoaders, arch: Arch, opts: UnetLearnerOptions = {}): Promise<Learner> {
  await ready();
  const nOut = opts.nOut ?? dls.c;
  if (nOut === undefined) throw new Error("unetLearner: pass nOut (the DataLoaders have no `c`, the number of classes per pixel)");
  const peek = await peekData(dls, arch, opts.pretrained ?? true, opts.nIn, "unetLearner", opts.imgSize === undefined);
  const imgSize = opts.imgSize ?? peek.size;
  if (!imgSize) throw new Error("unetLearner: pass imgSize (the DataLoaders have no oneBatch() to read the image size from)");
  const { pretrained, nIn } = peek;
  const { model, stats } = await createUnetModel(arch, nOut, imgSize, { ...opts, nIn, pretrained });
  addWeightsNormalize(dls, pretrained, stats, nIn, opts.normalize);
  const { splitter, lossFunc, ...rest } = opts;
  const learnerOpts = omit(rest, UNET_MODEL_KEYS); // those went to createUnetModel
  const learn = new Learner(dls, model, { ...learnerOpts, lossFunc: lossFunc ?? CrossEntropyLossFlat({ axis: -1 }), splitter: splitter ?? unetSplit });
  if (pretrained !== false) learn.freeze();
  return learn;
}
