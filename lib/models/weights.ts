/**
 * Moving weights between a tfjs-layers model and a PyTorch-style state dict.
 *
 * Names: a layer named `layer1.0.conv1` holds the PyTorch tensors `layer1.0.conv1.weight` (and
 * `.bias`); a BatchNorm `bn1` holds `bn1.weight/bias/running_mean/running_var` (and
 * `num_batches_tracked`, which tfjs does not need). Layouts: conv kernels are OIHW in PyTorch and
 * HWIO in tfjs; dense kernels are [out, in] in PyTorch and [in, out] in tfjs.
 * Loading is all-or-nothing: any missing, unexpected or mis-shaped tensor throws, naming them.
 */
import * as tf from "../engine/tf";
import type { SafeTensor, SafeTensorInput } from "./safetensors";
import { readSafetensors, writeSafetensors } from "./safetensors";
import { PaddedConv2D } from "./layers";

/** PyTorch-named tensors, as read from a `.safetensors` file. */
export type StateDict = Map<string, SafeTensor>;

/** How one tfjs weight maps to one PyTorch tensor. */
interface Slot {
  layer: tf.layers.Layer;
  /** index into `layer.weights` */
  index: number;
  /** PyTorch name */
  key: string;
  /** tfjs shape */
  shape: number[];
  /** layout change between PyTorch and tfjs */
  kind: "conv" | "dense" | "plain";
}

const BN_KEYS: Record<string, string> = {
  gamma: "weight",
  beta: "bias",
  moving_mean: "running_mean",
  moving_variance: "running_var",
};

/** The variable's own short name (`kernel`, `gamma`, ...), without layer prefix or uniquifying suffix. */
function baseName(v: tf.LayerVariable): string {
  const last = v.originalName.split("/").pop() ?? v.originalName;
  return last.replace(/_\d+$/, "");
}

/** Every weight of `model` with its PyTorch name and layout. */
export function weightSlots(model: tf.LayersModel): Slot[] {
  const slots: Slot[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    layer.weights.forEach((v, index) => {
      const base = baseName(v);
      let key: string;
      let kind: Slot["kind"] = "plain";
      if (cls === "BatchNormalization") key = BN_KEYS[base] ?? base;
      else if (base === "kernel") {
        key = "weight";
        kind = cls === "Dense" ? "dense" : cls === "Conv2D" || cls === PaddedConv2D.className ? "conv" : "plain";
      } else key = base;
      slots.push({ layer, index, key: `${layer.name}.${key}`, shape: v.shape as number[], kind });
    });
  }
  return slots;
}

/** PyTorch's shape of a tfjs-shaped weight. */
function torchShape(s: Slot): number[] {
  const sh = s.shape;
  if (s.kind === "conv") return [sh[3]!, sh[2]!, sh[0]!, sh[1]!];
  if (s.kind === "dense") return [sh[1]!, sh[0]!];
  return sh;
}

/** OIHW (PyTorch) → HWIO (tfjs). */
function oihwToHwio(src: Float32Array, [o, i, h, w]: number[]): Float32Array {
  const [O, I, H, W] = [o!, i!, h!, w!];
  const out = new Float32Array(src.length);
  for (let a = 0; a < O; a++)
    for (let b = 0; b < I; b++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) out[((y * W + x) * I + b) * O + a] = src[((a * I + b) * H + y) * W + x]!;
  return out;
}

/** HWIO (tfjs) → OIHW (PyTorch). */
function hwioToOihw(src: Float32Array, [h, w, i, o]: number[]): Float32Array {
  const [H, W, I, O] = [h!, w!, i!, o!];
  const out = new Float32Array(src.length);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let b = 0; b < I; b++)
        for (let a = 0; a < O; a++) out[((a * I + b) * H + y) * W + x] = src[((y * W + x) * I + b) * O + a]!;
  return out;
}

function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]!;
  return out;
}

/**
 * Adapt a stem conv (OIHW) trained on `cIn` channels to `nIn` channels, as fastai does:
 * 1 channel ← sum over the channels (a gray image then gives the activations of the same gray
 * image in RGB); 2 ← the first two × 1.5; more ← the trained channels then zeros. From a
 * 1-channel stem, every new channel gets the filter / nIn (a replicated gray image is unchanged).
 */
export function adaptInputChannels(w: Float32Array, [o, cIn, h, k]: number[], nIn: number): Float32Array {
  const [O, C, H, W] = [o!, cIn!, h!, k!];
  const hw = H * W;
  const out = new Float32Array(O * nIn * hw);
  for (let a = 0; a < O; a++) {
    for (let b = 0; b < nIn; b++) {
      for (let p = 0; p < hw; p++) {
        let v = 0;
        if (C === 1) v = w[a * hw + p]! / nIn;
        else if (nIn === 1) for (let c = 0; c < C; c++) v += w[(a * C + c) * hw + p]!;
        else if (nIn === 2) v = w[(a * C + b) * hw + p]! * 1.5;
        else if (b < C) v = w[(a * C + b) * hw + p]!;
        out[(a * nIn + b) * hw + p] = v;
      }
    }
  }
  return out;
}

/** Options of `loadStateDict`. */
export interface LoadStateDictOptions {
  /** Names in the file to leave unused without complaint (default: none; `num_batches_tracked` is always allowed). */
  ignore?: (name: string) => boolean;
  /** Adapt the first conv's input channels when the file's differ (default true). */
  adaptInput?: boolean;
  /** The file or URL the state dict came from, for error messages (default `"the weights"`). */
  source?: string;
}

/**
 * Copy a PyTorch-named state dict into `model`, converting layouts; throws (loading nothing)
 * when a tensor is missing, unexpected or of the wrong shape.
 */
export function loadStateDict(model: tf.LayersModel, sd: StateDict, opts: LoadStateDictOptions = {}): void {
  const source = opts.source ?? "the weights";
  const slots = weightSlots(model);
  const firstConv = slots.find((s) => s.kind === "conv");
  const missing: string[] = [];
  const mismatched: string[] = [];
  const values = new Map<Slot, Float32Array>();
  const used = new Set<string>();
  for (const s of slots) {
    const t = sd.get(s.key);
    if (!t) {
      missing.push(s.key);
      continue;
    }
    used.add(s.key);
    const want = torchShape(s);
    let data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    let shape = t.shape;
    if (s === firstConv && (opts.adaptInput ?? true) && shape.length === 4 && shape[1] !== want[1] &&
        shape[0] === want[0] && shape[2] === want[2] && shape[3] === want[3]) {
      data = adaptInputChannels(data, shape, want[1]!);
      shape = want;
    }
    if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
      mismatched.push(`${s.key}: file [${t.shape.join(", ")}], model [${want.join(", ")}]`);
      continue;
    }
    if (s.kind === "conv") data = oihwToHwio(data, shape);
    else if (s.kind === "dense") data = transpose2d(data, shape[0]!, shape[1]!);
    values.set(s, data);
  }
  const unexpected = [...sd.keys()].filter(
    (k) => !used.has(k) && !k.endsWith(".num_batches_tracked") && !(opts.ignore?.(k) ?? false),
  );
  if (missing.length || unexpected.length || mismatched.length) {
    const list = (title: string, xs: string[]) =>
      xs.length ? `\n  ${title} (${xs.length}): ${xs.slice(0, 8).join("; ")}${xs.length > 8 ? "; ..." : ""}` : "";
    throw new Error(
      `${source} do not match the model "${model.name}"; nothing was loaded.` +
        list("missing from the file", missing) +
        list("in the file but not in the model", unexpected) +
        list("shape mismatch", mismatched) +
        `\n  Check the architecture and its options (nIn, nOut, widen) against the file.`,
    );
  }
  for (const layer of new Set(slots.map((s) => s.layer))) {
    const mine = slots.filter((s) => s.layer === layer).sort((a, b) => a.index - b.index);
    const ts = mine.map((s) => tf.tensor(values.get(s)!, s.shape, "float32"));
    layer.setWeights(ts);
    tf.dispose(ts);
  }
}

/** The model's weights as a PyTorch-named, PyTorch-laid-out state dict (BN gets `num_batches_tracked` = 0). */
export function modelStateDict(model: tf.LayersModel, dtype: "F32" | "F16" | "BF16" = "F32"): Map<string, SafeTensorInput> {
  const out = new Map<string, SafeTensorInput>();
  for (const s of weightSlots(model)) {
    const v = s.layer.weights[s.index]!;
    let data = v.read().dataSync() as Float32Array;
    if (s.kind === "conv") data = hwioToOihw(data, s.shape);
    else if (s.kind === "dense") data = transpose2d(data, s.shape[0]!, s.shape[1]!);
    out.set(s.key, { shape: torchShape(s), data: Float32Array.from(data), dtype });
    if (s.layer.getClassName() === "BatchNormalization" && s.key.endsWith(".running_var")) {
      out.set(`${s.layer.name}.num_batches_tracked`, { shape: [], data: new Int32Array([0]), dtype: "I64" });
    }
  }
  return out;
}

/** Save `model`'s weights to a `.safetensors` file with PyTorch names (loadable by `torch` and `loadWeights`). */
export async function saveWeights(
  model: tf.LayersModel,
  path: string,
  opts: { metadata?: Record<string, string>; dtype?: "F32" | "F16" | "BF16" } = {},
): Promise<void> {
  await writeSafetensors(path, modelStateDict(model, opts.dtype ?? "F32"), opts.metadata);
}

/** Load a `.safetensors` file saved by `saveWeights` (or PyTorch) into `model`; all-or-nothing. */
export async function loadWeights(model: tf.LayersModel, path: string, opts: LoadStateDictOptions = {}): Promise<Record<string, string>> {
  const f = await readSafetensors(path);
  loadStateDict(model, f.tensors, { source: path, ...opts });
  return f.metadata;
}
