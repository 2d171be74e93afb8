/**
 * `visionLearner`: fastai's `vision_learner` — a (pretrained) body cut before its pooling, fastai's
 * head on top, three parameter groups, normalisation matching the weights, and a frozen Learner.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { Learner } from "../learner/learner";
import type { DataLoadersLike, VisionDataLoaders } from "../learner/contracts";
import type { LearnerOptions } from "../learner/learner";
import type { Arch, Stats } from "./archs";
import { archMeta, setArchMeta } from "./archs";
import { AdaptiveAvgPool2d, AdaptiveConcatPool2d, SigmoidRange } from "./layers";
import { IMAGENET_STATS, SHIPPED_COLOUR, SHIPPED_GREY } from "./pretrained";
import { BN_EPS, BN_MOMENTUM } from "./resnet";
import type { ArchOptions } from "./resnet";

type SymbolicTensor = tf.SymbolicTensor;

/** Options of `createHead` (fastai's `create_head`), with fastai's defaults. */
export interface HeadOptions {
  /** Hidden sizes of the head's linear layers (default `[512]`). */
  linFtrs?: number[];
  /** Dropout of the last linear layer; earlier ones get `ps / 2` (default 0.5). A list sets each. */
  ps?: number | number[];
  /** Pool with max and average concatenated (default true), else average only. */
  concatPool?: boolean;
  /** BatchNorm before the first linear layer (default true). */
  firstBn?: boolean;
  /** BatchNorm after the last linear layer (default false). */
  bnFinal?: boolean;
  /** Squash outputs into `[low, high]` with a sigmoid (default none), for regression. */
  yRange?: [number, number];
  /** Seed of the head's initialisation and dropout (default 0). */
  seed?: number;
}

/**
 * fastai's head on features `x` with `nf` channels: pool → flatten → [BN → dropout → linear
 * (no bias) → ReLU] per hidden size → BN → dropout → linear to `nOut`. Layers are named
 * `head.<i>` after their index in fastai's `nn.Sequential`.
 */
export function createHead(x: SymbolicTensor, nOut: number, opts: HeadOptions = {}): SymbolicTensor {
  const nf = x.shape[x.shape.length - 1] as number;
  const concat = opts.concatPool ?? true;
  const sizes = [concat ? 2 * nf : nf, ...(opts.linFtrs ?? [512]), nOut];
  const nLin = sizes.length - 1;
  const psIn = opts.ps ?? 0.5;
  const ps = Array.isArray(psIn) ? psIn : [...Array(nLin - 1).fill(psIn / 2), psIn];
  if (ps.length !== nLin) throw new Error(`createHead: ps has ${ps.length} entries but the head has ${nLin} linear layers`);
  const bns = [opts.firstBn ?? true, ...Array(nLin - 1).fill(true)];
  let seed = (opts.seed ?? 0) * 7919 + 17;
  let i = 0;
  const name = () => `head.${i++}`;
  let h: SymbolicTensor = concat
    ? (new AdaptiveConcatPool2d({ name: name() }).apply(x) as SymbolicTensor)
    : (new AdaptiveAvgPool2d({ name: name() }).apply(x) as SymbolicTensor);
  h = tf.layers.flatten({ name: name() }).apply(h) as SymbolicTensor;
  for (let k = 0; k < nLin; k++) {
    // fastai's LinBnDrop: BN → dropout → linear (bias only without BN) → activation
    if (bns[k]) h = tf.layers.batchNormalization({ axis: -1, epsilon: BN_EPS, momentum: BN_MOMENTUM, name: name() }).apply(h) as SymbolicTensor;
    if (ps[k]! > 0) h = tf.layers.dropout({ rate: ps[k]!, seed: seed++, name: name() }).apply(h) as SymbolicTensor;
    h = tf.layers
      .dense({ units: sizes[k + 1]!, useBias: !bns[k], kernelInitializer: tf.initializers.heNormal({ seed: seed++ }), name: name() })
      .apply(h) as SymbolicTensor;
    if (k < nLin - 1) h = tf.layers.reLU({ name: name() }).apply(h) as SymbolicTensor;
  }
  // fastai's bn_final uses BatchNorm1d(momentum=0.01): tfjs momentum 0.99
  if (opts.bnFinal) h = tf.layers.batchNormalization({ axis: -1, epsilon: BN_EPS, momentum: 0.99, name: name() }).apply(h) as SymbolicTensor;
  if (opts.yRange) h = new SigmoidRange({ low: opts.yRange[0], high: opts.yRange[1], name: name() }).apply(h) as SymbolicTensor;
  return h;
}

/**
 * The three parameter groups of fastai's ResNet splits, for a model made of a body and a `head`
 * (the layers `isHead` picks): ResNet → stem + layer1 + layer2 | layer3 + layer4 | head;
 * xresnet → stem | stages | head; any other body → its two halves | head.
 */
export function splitBodyHead(model: tf.LayersModel, isHead: (l: tf.layers.Layer) => boolean): tf.layers.Layer[][] {
  const head = model.layers.filter((l) => isHead(l));
  const body = model.layers.filter((l) => !isHead(l));
  const stage = (l: tf.layers.Layer) => Number(/^layer(\d+)\./.exec(l.name)?.[1] ?? 0);
  let cut: (l: tf.layers.Layer, i: number) => boolean;
  if (body.some((l) => l.name === "conv1.0")) cut = (l) => stage(l) === 0;
  else if (body.some((l) => stage(l) > 0)) cut = (l) => stage(l) <= 2;
  else cut = (_l, i) => i < body.length / 2;
  return [body.filter((l, i) => cut(l, i)), body.filter((l, i) => !cut(l, i)), head];
}

/** `visionLearner`'s parameter groups: `splitBodyHead` with the `head.*` layers as the head. */
export function visionSplit(model: tf.LayersModel): tf.layers.Layer[][] {
  return splitBodyHead(model, (l) => l.name.startsWith("head."));
}

/** Options of `createVisionModel`. */
export interface VisionModelOptions extends HeadOptions {
  /**
   * `true`: the architecture's known (ImageNet) weights, downloaded once; `"shipped"`: the backbone
   * shipped with tsfast for the data (`visionLearner` only; offline: see `shippedDefault`); another
   * string: a shipped checkpoint's name, a `.safetensors` path or a URL; `false`: random (default true).
   */
  pretrained?: boolean | string;
  /** Input channels (default 3); a pretrained 3-channel stem is adapted (summed for 1 channel). */
  nIn?: number;
  /** Extra options for the architecture (e.g. `widen`), ignored when the checkpoint sets them. */
  archOptions?: ArchOptions;
}

/** fastai's `create_vision_model`: the body of `arch` cut before pooling, plus `createHead`; returns the model and the weights' stats. */
export async function createVisionModel(
  arch: Arch,
  nOut: number,
  opts: VisionModelOptions = {},
): Promise<{ model: tf.LayersModel; stats?: Stats }> {
  await ready();
  const pretrained = opts.pretrained ?? true;
  if (pretrained === "shipped") {
    throw new Error(`createVisionModel: pretrained: "shipped" picks by the data, which only visionLearner sees; name the checkpoint instead ("${SHIPPED_COLOUR}" or "${SHIPPED_GREY}")`);
  }
  const body = await arch({ ...opts.archOptions, nIn: opts.nIn, includeTop: false, weights: pretrained === false ? undefined : pretrained, seed: opts.seed });
  const out = createHead(body.outputs[0]!, nOut, opts);
  const model = tf.model({ inputs: body.inputs, outputs: out, name: `${arch.archName}_learner` });
  const meta = archMeta(body);
  if (meta) setArchMeta(model, meta); // so `archMeta(learn.model)` tells the body's architecture and weights
  return { model, stats: meta?.stats };
}

/** Stats with one entry per input channel: 1-channel stats repeat, 3-channel stats average for 1 channel. */
export function statsForChannels(stats: Stats, nIn: number): Stats {
  const fit = (v: number[]) => {
    if (v.length === nIn) return v.slice();
    if (v.length === 1) return Array(nIn).fill(v[0]!);
    if (nIn === 1) return [v.reduce((a, b) => a + b, 0) / v.length];
    throw new Error(`the weights' normalisation stats have ${v.length} channels but the data has ${nIn}`);
  };
  return { mean: fit(stats.mean), std: fit(stats.std) };
}

/**
 * The backbone `pretrained: "shipped"` picks: for grey images (all channels equal) the digits
 * network of lesson 1 (`digits04-xresnet18-tiny`, trained on 28-px handwriting: a weak start for
 * other grey pictures, where `"colour-xresnet18-small"` by name may do better), for colour images
 * the colour network (`colour-xresnet18-small`, pretrained on emoji and icons, CC BY-SA 4.0).
 * See checkpoints/MODEL_CARD.md.
 */
export function shippedDefault(grey: boolean): string {
  return grey ? SHIPPED_GREY : SHIPPED_COLOUR;
}

/**
 * Whether a batch `[n, h, w, c]` is grey: one channel, or every pixel's channels equal (pass pixels
 * before any per-channel `Normalize`; visionLearner undoes one the DataLoaders already have).
 */
export function isGreyBatch(xb: tf.Tensor): boolean {
  const c = xb.shape[3] ?? 1;
  if (c === 1) return true;
  const diff = tf.tidy(() => {
    const [first, ...rest] = tf.split(xb, c, 3);
    return tf.max(tf.stack(rest.map((r) => tf.max(tf.abs(tf.sub(r, first!))))));
  });
  const grey = diff.dataSync()[0]! <= 1e-6;
  diff.dispose();
  return grey;
}

/** What a learner factory learns from one batch of the data: the weights to start from, the input channels and the image size. */
export interface DataPeek {
  /** `pretrained` with `"shipped"` resolved to a checkpoint name by the pixels (grey or colour). */
  pretrained: boolean | string;
  /** Input channels (`nIn` as given, else the batch's). */
  nIn?: number;
  /** `[height, width]` of the batch's images, when a batch was read. */
  size?: [number, number];
}

/**
 * Read one validation batch when needed (channels, size, or grey-vs-colour for `pretrained: "shipped"`),
 * as `visionLearner` and `unetLearner` do before building their model.
 */
export async function peekData(
  dls: DataLoadersLike & VisionDataLoaders,
  arch: Arch,
  pretrained: boolean | string,
  nIn: number | undefined,
  who: string,
  needSize = false,
): Promise<DataPeek> {
  if (pretrained === "shipped") {
    if (arch.archName !== "xresnet18") {
      throw new Error(`${who}: the shipped checkpoints are xresnet18s: use xresnet18 with pretrained: "shipped", or pretrained: true for ${arch.archName}'s ImageNet weights`);
    }
    if (!dls.oneBatch) throw new Error(`${who}: pretrained: "shipped" needs DataLoaders with oneBatch() to see whether the images are grey or colour`);
  }
  let size: [number, number] | undefined;
  if ((nIn === undefined || pretrained === "shipped" || needSize) && dls.oneBatch) {
    // a validation batch: no augmentation, and the training loader's random state is left alone
    const b = await dls.oneBatch({ valid: true }).catch((e: Error) => {
      if (/no readable images/.test(e.message)) return dls.oneBatch!();
      throw e;
    });
    nIn ??= b.xb.shape[3];
    size = [b.xb.shape[1]!, b.xb.shape[2]!];
    if (pretrained === "shipped") {
      // judge the pixels as decoded: undo a Normalize the user already added (per-channel stats)
      const norm = dls.normalize;
      const pixels = norm ? tf.tidy(() => tf.add(tf.mul(b.xb, tf.tensor1d(norm.std)), tf.tensor1d(norm.mean))) : b.xb;
      pretrained = shippedDefault(isGreyBatch(pixels));
      if (pixels !== b.xb) pixels.dispose();
    }
    tf.dispose([b.xb, b.yb]);
  }
  return { pretrained, nIn, size };
}

/** Add a `Normalize` batch transform with the weights' stats (ImageNet's when unknown) when pretrained, asked for (default) and none is present. */
export function addWeightsNormalize(
  dls: VisionDataLoaders,
  pretrained: boolean | string,
  stats: Stats | undefined,
  nIn: number | undefined,
  normalize = true,
): void {
  if (pretrained !== false && normalize && !dls.normalize && dls.addBatchTfm) {
    const s = statsForChannels(stats ?? IMAGENET_STATS, nIn ?? 3);
    dls.addBatchTfm({ type: "Normalize", mean: s.mean, std: s.std });
  }
}

/** `o` without `keys`: a factory's options minus those that went to its model, leaving the Learner's. */
export function omit<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Omit<T, K> {
  const out = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

/** `visionLearner`'s options that are the model's, not the Learner's. */
const VISION_MODEL_KEYS = ["pretrained", "nIn", "archOptions", "linFtrs", "ps", "concatPool", "firstBn", "bnFinal", "yRange", "seed", "normalize", "nOut"] as const;

/** Options of `visionLearner`: the head's, the body's and the Learner's (`lossFunc`, `metrics`, `lr`, `wd`, `cbs`, `trainBn`, ...). */
export interface VisionLearnerOptions extends VisionModelOptions, Omit<LearnerOptions, "splitter"> {
  /** Add a `Normalize` batch transform with the weights' stats when pretrained and none is present (default true). */
  normalize?: boolean;
  /** Output size (default `dls.c`). */
  nOut?: number;
  /** Parameter groups (default `visionSplit`: 3 groups). */
  splitter?: (model: tf.LayersModel) => tf.layers.Layer[][];
}

/**
 * fastai's `vision_learner`: `arch`'s body (pretrained by default) + fastai's head for `dls.c`
 * classes, 3 parameter groups, the weights' normalisation added to `dls`, the loss chosen from the
 * data by the Learner; returns the Learner, frozen (all but the head) when pretrained.
 */
export async function visionLearner(
  dls: DataLoadersLike & VisionDataLoaders,
  arch: Arch,
  opts: VisionLearnerOptions = {},
): Promise<Learner> {
  await ready();
  const nOut = opts.nOut ?? dls.c;
  if (nOut === undefined) throw new Error("visionLearner: pass nOut (the DataLoaders have no `c`, the number of classes)");
  const { pretrained, nIn } = await peekData(dls, arch, opts.pretrained ?? true, opts.nIn, "visionLearner");
  const { model, stats } = await createVisionModel(arch, nOut, { ...opts, nIn, pretrained });
  addWeightsNormalize(dls, pretrained, stats, nIn, opts.normalize);
  // The body's and the head's options went to createVisionModel; the rest are the Learner's.
  const { splitter, ...rest } = opts;
  const learnerOpts = omit(rest, VISION_MODEL_KEYS);
  const learn = new Learner(dls, model, { ...learnerOpts, splitter: splitter ?? visionSplit });
  if (pretrained !== false) learn.freeze();
  return learn;
}
