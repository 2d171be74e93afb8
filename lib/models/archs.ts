/**
 * The architecture functions users call: `resnet18({ weights, nIn, nOut })` → a tfjs LayersModel.
 *
 * They are async because weights may come from a file or a URL. Without weights the model is
 * randomly initialised (seeded). With weights, `nIn`/`nOut` default to the file's, architecture
 * options saved in a tsfast checkpoint (`widen`, `stemSzs`) are applied, and the checkpoint's
 * normalisation stats are remembered for `visionLearner` (see `archMeta`).
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { ArchOptions } from "./resnet";
import { RESNET_CONFIGS, buildResNet, resolveArchOptions } from "./resnet";
import { readSafetensors } from "./safetensors";
import { KNOWN_WEIGHTS, resolveWeightsFile, shippedCheckpoint } from "./pretrained";
import { loadStateDict } from "./weights";

/** Normalisation statistics (one entry per input channel). */
export interface Stats {
  mean: number[];
  std: number[];
}

/** What tsfast remembers about a model built by an architecture function. */
export interface ArchMeta {
  /** The architecture name (`resnet18`, ...). */
  arch: string;
  /** The options the model was built with (weights aside). */
  options: ArchOptions;
  /** Normalisation the weights expect, when pretrained weights were loaded. */
  stats?: Stats;
  /** Where the weights came from, when loaded. */
  weightsSource?: string;
  /** Free-form metadata of the weights file. */
  fileMetadata?: Record<string, string>;
}

const metas = new WeakMap<tf.LayersModel, ArchMeta>();

/** The architecture and weights info of a model built by `resnet18` & co (undefined for other models). */
export function archMeta(model: tf.LayersModel): ArchMeta | undefined {
  return metas.get(model);
}

/** Remember `meta` for `model` too (a model built around a body: `createVisionModel`'s). */
export function setArchMeta(model: tf.LayersModel, meta: ArchMeta): void {
  metas.set(model, meta);
}

/** An architecture function, as `visionLearner` takes it. */
export interface Arch {
  (opts?: ArchOptions): Promise<tf.LayersModel>;
  /** The name used for the known-weights table and checkpoint metadata. */
  readonly archName: string;
}

/** Metadata keys tsfast writes into its own checkpoints. */
export const META_KEYS = {
  arch: "tsfast.arch",
  archOptions: "tsfast.arch_options",
  mean: "tsfast.mean",
  std: "tsfast.std",
} as const;

function parseJson<T>(s: string | undefined, what: string, source: string): T | undefined {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s) as T;
  } catch {
    throw new Error(`${source}: metadata ${what} is not JSON: ${s}`);
  }
}

function makeArch(name: string): Arch {
  const cfg = RESNET_CONFIGS[name];
  if (!cfg) throw new Error(`unknown architecture ${name}`);
  const fn = async (opts: ArchOptions = {}): Promise<tf.LayersModel> => {
    await ready();
    if (!opts.weights) {
      const model = buildResNet(cfg, resolveArchOptions(opts), name);
      metas.set(model, { arch: name, options: { ...opts } });
      return model;
    }
    let src: string;
    let stats: Stats | undefined;
    let sha: string | undefined;
    if (opts.weights === true) {
      const known = KNOWN_WEIGHTS[name];
      if (!known) throw new Error(`${name} has no known pretrained weights; pass weights: "path/or/url.safetensors"`);
      src = known.url;
      stats = known.stats;
      sha = known.sha256;
    } else if (!/[/\\]/.test(opts.weights) && !opts.weights.endsWith(".safetensors")) {
      src = shippedCheckpoint(opts.weights); // a bare name: one of the checkpoints shipped with tsfast
    } else src = opts.weights;
    const file = await resolveWeightsFile(src, { sha256: sha, what: `${name} weights` });
    const f = await readSafetensors(file);
    const meta = f.metadata;
    if (meta[META_KEYS.arch] && meta[META_KEYS.arch] !== name) {
      throw new Error(`${src} holds a ${meta[META_KEYS.arch]} checkpoint, not ${name}: build it with ${meta[META_KEYS.arch]}(...)`);
    }
    const saved = parseJson<ArchOptions>(meta[META_KEYS.archOptions], META_KEYS.archOptions, src) ?? {};
    const mean = parseJson<number[]>(meta[META_KEYS.mean], META_KEYS.mean, src);
    const std = parseJson<number[]>(meta[META_KEYS.std], META_KEYS.std, src);
    if (mean && std) stats = { mean, std };
    // the file decides what the user did not: input channels, classes, width
    const stem = f.tensors.get("conv1.weight") ?? f.tensors.get("conv1.0.weight");
    const fc = f.tensors.get("fc.weight");
    const o: ArchOptions = {
      widen: saved.widen,
      stemSzs: saved.stemSzs,
      ...opts,
      nIn: opts.nIn ?? opts.inputShape?.[2] ?? stem?.shape[1],
      nOut: opts.nOut ?? fc?.shape[0],
    };
    const includeTop = o.includeTop ?? true;
    const model = buildResNet(cfg, resolveArchOptions(o), name);
    loadStateDict(model, f.tensors, { source: src, ignore: includeTop ? undefined : (k) => k.startsWith("fc.") });
    const resolved = { ...o };
    delete resolved.weights;
    metas.set(model, { arch: name, options: resolved, stats, weightsSource: src, fileMetadata: meta });
    return model;
  };
  return Object.assign(fn, { archName: name });
}

/** torchvision's ResNet-18 (11.7 M parameters at 1000 classes). */
export const resnet18: Arch = makeArch("resnet18");
/** torchvision's ResNet-34. */
export const resnet34: Arch = makeArch("resnet34");
/** torchvision's ResNet-50 (bottleneck blocks, v1.5: stride on the 3×3 conv). */
export const resnet50: Arch = makeArch("resnet50");
/** torchvision's ResNet-101. */
export const resnet101: Arch = makeArch("resnet101");
/** fastai's xresnet18 (= timm's resnet18d): deep stem, avg-pool shortcut, zero-init last BN. */
export const xresnet18: Arch = makeArch("xresnet18");
/** fastai's xresnet34 (= timm's resnet34d). */
export const xresnet34: Arch = makeArch("xresnet34");
/** fastai's xresnet50 (= timm's resnet50d). */
export const xresnet50: Arch = makeArch("xresnet50");
