/**
 * Saving and loading: `export`/`loadLearner` (a self-contained, code-free inference artifact:
 * tfjs LayersModel JSON + weights + vocab + inference spec + metadata) and `save`/`load`
 * checkpoints (weights + optimizer state) in `<path>/models/`. Writes are atomic (temp + rename).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { Loss } from "./losses";
import type { Optimizer, OptimizerState } from "./optimizer";
import { disposeState } from "./optimizer";
import { sha256Hex, validateExport } from "./validate-export";

/** The artifact format name written into `tsfast.json`. */
export const EXPORT_FORMAT = "tsfast-export";
/** The artifact format version this build writes and reads. */
export const EXPORT_VERSION = 1;
const CKPT_MAGIC = "TSFASTCK";
const CKPT_VERSION = 1;

/** How model outputs become probabilities. */
export type Activation = "softmax" | "sigmoid" | "none";

/** `tsfast.json`: the export's metadata. */
export interface ExportMeta {
  format: string;
  version: number;
  createdAt: string;
  vocab: string[];
  isMultiLabel: boolean;
  /** The data floor's `inferenceSpec()` (item transforms, normalisation, ...), or null. */
  inferenceSpec: unknown;
  loss: { name: string; activation: Activation; thresh: number };
  /** Layer class names the topology uses (each must be registered to load). */
  layerClasses: string[];
  weightsBytes: number;
  weightsSha256: string;
  /** sha256 (hex) of every file of the export but this one, by file name; `loadLearner` checks them all. */
  files: Record<string, string>;
}

/** Turns file paths or encoded images into a model input batch (the data floor's `prepareInferenceBatch`). */
export type PrepareInferenceBatch = (spec: unknown, inputs: (string | Buffer)[]) => Promise<tf.Tensor4D>;

let preparer: PrepareInferenceBatch | undefined;

/** Tell the learner how to preprocess `predict` inputs (the data floor registers its `prepareInferenceBatch`). */
export function setInferencePreparer(f: PrepareInferenceBatch): void {
  preparer = f;
}

function findPreparer(): PrepareInferenceBatch {
  if (preparer) return preparer;
  for (const p of ["../data/loader", "../data", "../data/index", "../data/inference"]) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const m = require(p) as { prepareInferenceBatch?: PrepareInferenceBatch };
      if (typeof m.prepareInferenceBatch === "function") return (preparer = m.prepareInferenceBatch);
    } catch {
      // not present in this build
    }
  }
  throw new Error("predict needs the data module's prepareInferenceBatch; import it from tsfast or call setInferencePreparer(fn)");
}

/** The activation a loss implies. */
export function activationOf(loss: Loss): { activation: Activation; thresh: number } {
  const l = loss as Loss & { activationName?: Activation; thresh?: number };
  if (l.activationName) return { activation: l.activationName, thresh: l.thresh ?? 0.5 };
  if (/CrossEntropy/.test(loss.name)) return { activation: "softmax", thresh: 0.5 };
  if (/BCE/.test(loss.name)) return { activation: "sigmoid", thresh: l.thresh ?? 0.5 };
  return { activation: "none", thresh: 0.5 };
}

/** What `predict` returns. */
export interface Prediction {
  /** The most likely class name. */
  label: string;
  /** Its index in `vocab`. */
  index: number;
  /** Probability per class (or raw outputs for regression). */
  probs: number[];
  /** Multi-label: every class whose probability exceeds the threshold. */
  labels?: string[];
}

/** What `predict` needs besides the model. */
export interface InferenceInfo {
  vocab: string[];
  isMultiLabel: boolean;
  inferenceSpec: unknown;
  activation: Activation;
  thresh: number;
}

/** Run a model on one input (file path, encoded image, or an already prepared tensor) and decode it. */
export async function predictWith(model: tf.LayersModel, meta: InferenceInfo, input: string | Buffer | tf.Tensor): Promise<Prediction> {
  const x = input instanceof tf.Tensor ? (input.rank === 3 ? tf.expandDims(input, 0) : input.clone()) : undefined;
  const [r] = await predictManyWith(model, meta, x ?? [input as string | Buffer]);
  x?.dispose();
  return r!;
}

/** Run a model on many inputs at once (paths / encoded images, or a prepared NHWC batch) and decode each. */
export async function predictManyWith(model: tf.LayersModel, meta: InferenceInfo, inputs: (string | Buffer)[] | tf.Tensor): Promise<Prediction[]> {
  await ready();
  const x = inputs instanceof tf.Tensor ? inputs : await findPreparer()(meta.inferenceSpec, inputs);
  let rows: number[][];
  try {
    const out = tf.tidy(() => {
      const logits = model.apply(x, { training: false }) as tf.Tensor;
      const p = meta.activation === "softmax" ? tf.softmax(logits) : meta.activation === "sigmoid" ? tf.sigmoid(logits) : logits;
      return tf.reshape(p, [x.shape[0]!, -1]);
    });
    rows = (await out.array()) as number[][];
    out.dispose();
  } finally {
    if (x !== inputs) x.dispose();
  }
  const broken = rows.findIndex((r) => !r.every(Number.isFinite));
  if (broken >= 0) {
    throw new Error(
      `predict: the model output NaN or infinite values (input ${broken}), so no label can be trusted; its weights are broken ` +
        `(did training diverge?). Train again with a lower learning rate, or load a checkpoint saved before it went wrong`,
    );
  }
  const name = (i: number) => meta.vocab[i] ?? String(i);
  return rows.map((probs) => {
    let index = 0;
    probs.forEach((p, i) => {
      if (p > probs[index]!) index = i;
    });
    const r: Prediction = { label: name(index), index, probs };
    if (meta.isMultiLabel) r.labels = probs.flatMap((p, i) => (p > meta.thresh ? [name(i)] : []));
    return r;
  });
}

function concatWeightData(w: tf.io.WeightData | undefined): ArrayBuffer {
  if (!w) return new ArrayBuffer(0);
  return Array.isArray(w) ? tf.io.concatenateArrayBuffers(w) : w;
}

function layerClasses(topology: unknown): string[] {
  const out = new Set<string>();
  const walk = (o: unknown) => {
    if (Array.isArray(o)) o.forEach(walk);
    else if (o && typeof o === "object") {
      const r = o as Record<string, unknown>;
      if (typeof r["class_name"] === "string" && "config" in r) out.add(r["class_name"]);
      Object.values(r).forEach(walk);
    }
  };
  walk(topology);
  return [...out].sort();
}

/** Write `files` into `dir` atomically: a temp sibling folder, then rename over the old one. */
function writeDirAtomic(dir: string, files: Record<string, Buffer | string>): void {
  const abs = path.resolve(dir);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = `${abs}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  try {
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(tmp, name), data);
    if (fs.existsSync(abs)) {
      const old = `${abs}.old-${process.pid}-${Date.now()}`;
      fs.renameSync(abs, old);
      fs.renameSync(tmp, abs);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, abs);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Write an inference artifact for `model` into `dir` (see the module comment). */
export async function exportModel(
  dir: string,
  model: tf.LayersModel,
  info: { vocab: string[]; isMultiLabel: boolean; inferenceSpec: unknown; loss: Loss },
): Promise<void> {
  await ready();
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  if (!artifacts) throw new Error("export: the model produced no artifacts");
  const weights = Buffer.from(concatWeightData(artifacts.weightData));
  const modelJson = {
    format: "layers-model",
    generatedBy: `tsfast ${EXPORT_FORMAT} v${EXPORT_VERSION}`,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs ?? [] }],
  };
  const meta: ExportMeta = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    createdAt: new Date().toISOString(),
    vocab: info.vocab,
    isMultiLabel: info.isMultiLabel,
    inferenceSpec: info.inferenceSpec ?? null,
    loss: { name: info.loss.name, ...activationOf(info.loss) },
    layerClasses: layerClasses(artifacts.modelTopology),
    weightsBytes: weights.length,
    weightsSha256: crypto.createHash("sha256").update(weights).digest("hex"),
    files: { "model.json": sha256Hex(JSON.stringify(modelJson)), "weights.bin": sha256Hex(weights) },
  };
  writeDirAtomic(dir, {
    "model.json": JSON.stringify(modelJson),
    "weights.bin": weights,
    "tsfast.json": JSON.stringify(meta, null, 2),
  });
}

/** A learner restored by `loadLearner`: enough to `predict` without training data. */
export interface InferenceLearner {
  model: tf.LayersModel;
  vocab: string[];
  /** fastai's `learn.dls.vocab`, for code written against a training learner. */
  dls: { vocab: string[]; isMultiLabel: boolean };
  isMultiLabel: boolean;
  meta: ExportMeta;
  /** Predict one input: a file path, an encoded image, or a prepared tensor. */
  predict(input: string | Buffer | tf.Tensor): Promise<Prediction>;
  /** Predict many inputs in one batch: paths / encoded images, or a prepared NHWC tensor (not disposed). */
  predictBatch(inputs: (string | Buffer)[] | tf.Tensor): Promise<Prediction[]>;
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new Error(`loadLearner: ${file} is missing — ${what}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`loadLearner: ${file} is not valid JSON (${(e as Error).message}); the export is truncated or corrupted`);
  }
}

/** Restore an artifact written by `learn.export(dir)`; custom layer classes must be registered first. */
export async function loadLearner(dir: string): Promise<InferenceLearner> {
  await ready();
  await validateExport(dir, EXPORT_FORMAT, EXPORT_VERSION); // every file, field, checksum and shape (validate-export.ts)
  const meta = readJson(path.join(dir, "tsfast.json"), "this folder is not a tsfast export (learn.export writes it)") as ExportMeta;
  if (meta?.format !== EXPORT_FORMAT) {
    throw new Error(`loadLearner: ${dir} holds format "${String(meta?.format)}", not "${EXPORT_FORMAT}"; it was not written by learn.export`);
  }
  if (typeof meta.version !== "number" || meta.version > EXPORT_VERSION) {
    throw new Error(`loadLearner: ${dir} is ${EXPORT_FORMAT} version ${meta.version}, newer than this tsfast reads (${EXPORT_VERSION}); upgrade tsfast`);
  }
  const modelJson = readJson(path.join(dir, "model.json"), "the export is incomplete") as { modelTopology?: unknown; weightsManifest?: { weights: tf.io.WeightsManifestEntry[] }[] };
  const wfile = path.join(dir, "weights.bin");
  if (!fs.existsSync(wfile)) throw new Error(`loadLearner: ${wfile} is missing; the export is incomplete`);
  const weights = fs.readFileSync(wfile);
  if (weights.length !== meta.weightsBytes) {
    throw new Error(`loadLearner: ${wfile} has ${weights.length} bytes but the export recorded ${meta.weightsBytes}; the file is truncated or corrupted`);
  }
  if (crypto.createHash("sha256").update(weights).digest("hex") !== meta.weightsSha256) {
    throw new Error(`loadLearner: ${wfile} does not match its recorded checksum; the file is corrupted`);
  }
  const registry = tf.serialization.SerializationMap.getMap().classNameMap;
  const missing = (meta.layerClasses ?? []).filter((c) => !(c in registry));
  if (missing.length) {
    throw new Error(
      `loadLearner: the model uses layer class(es) ${missing.join(", ")} that are not registered; import the module that ` +
        `defines them (it calls tf.serialization.registerClass) before loadLearner`,
    );
  }
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology as tf.io.ModelArtifacts["modelTopology"],
      weightSpecs: modelJson.weightsManifest?.flatMap((g) => g.weights) ?? [],
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  const info = { vocab: meta.vocab ?? [], isMultiLabel: !!meta.isMultiLabel, inferenceSpec: meta.inferenceSpec, ...meta.loss };
  return {
    model,
    vocab: info.vocab,
    isMultiLabel: info.isMultiLabel,
    dls: { vocab: info.vocab, isMultiLabel: info.isMultiLabel },
    meta,
    predict: (input) => predictWith(model, info, input),
    predictBatch: (inputs) => predictManyWith(model, info, inputs),
  };
}

// ---------------------------------------------------------------- checkpoints

interface TensorEntry {
  shape: number[];
  dtype: string;
  offset: number;
  length: number;
}

interface CkptHeader {
  format: string;
  version: number;
  weights: (TensorEntry & { name: string })[];
  opt: null | { kind: string; hypers: OptimizerState["hypers"]; params: { step: number; tensors: Record<string, TensorEntry> }[] };
}

/** Write weights (all, incl. batch-norm statistics) and optimizer state to `file` (atomically). */
export async function saveCheckpoint(file: string, model: tf.LayersModel, opt?: Optimizer): Promise<void> {
  const chunks: Buffer[] = [];
  let offset = 0;
  const put = async (t: tf.Tensor): Promise<TensorEntry> => {
    const data = await t.data();
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    chunks.push(Buffer.from(buf));
    const e = { shape: t.shape, dtype: t.dtype, offset, length: buf.length };
    offset += buf.length;
    return e;
  };
  const header: CkptHeader = { format: CKPT_MAGIC, version: CKPT_VERSION, weights: [], opt: null };
  for (const w of model.weights) header.weights.push({ name: w.originalName, ...(await put(w.read())) });
  if (opt) {
    const st = opt.stateDict();
    try {
      const params: NonNullable<CkptHeader["opt"]>["params"] = [];
      for (const p of st.params) {
        const tensors: Record<string, TensorEntry> = {};
        for (const [k, t] of Object.entries(p.tensors)) tensors[k] = await put(t);
        params.push({ step: p.step, tensors });
      }
      header.opt = { kind: st.kind, hypers: st.hypers, params };
    } finally {
      disposeState(st);
    }
  }
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(head.length);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat([Buffer.from(CKPT_MAGIC), len, head, ...chunks]));
  fs.renameSync(tmp, file);
}

/** Load a checkpoint written by `saveCheckpoint` into `model` (and `opt` when given and saved). */
export async function loadCheckpoint(file: string, model: tf.LayersModel, opt?: Optimizer, withOpt = true): Promise<void> {
  await ready();
  if (!fs.existsSync(file)) throw new Error(`load: checkpoint ${file} does not exist (learn.save(name) writes <path>/models/<name>.tsfast)`);
  const buf = fs.readFileSync(file);
  if (buf.length < 12 || buf.subarray(0, 8).toString() !== CKPT_MAGIC) throw new Error(`load: ${file} is not a tsfast checkpoint`);
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) throw new Error(`load: ${file} is truncated`);
  const header = JSON.parse(buf.subarray(12, 12 + hlen).toString()) as CkptHeader;
  if (header.version > CKPT_VERSION) throw new Error(`load: ${file} is checkpoint version ${header.version}, newer than this tsfast reads (${CKPT_VERSION})`);
  const base = 12 + hlen;
  const read = (e: TensorEntry): tf.Tensor => {
    if (base + e.offset + e.length > buf.length) throw new Error(`load: ${file} is truncated`);
    const bytes = buf.subarray(base + e.offset, base + e.offset + e.length);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const data = e.dtype === "int32" ? new Int32Array(ab) : new Float32Array(ab);
    return tf.tensor(data, e.shape, e.dtype as tf.DataType);
  };
  const ws = model.weights;
  if (ws.length !== header.weights.length) {
    throw new Error(`load: ${file} holds ${header.weights.length} weights but the model has ${ws.length}; it was saved from a different architecture`);
  }
  const tensors = header.weights.map((e, i) => {
    if (!tf.util.arraysEqual(e.shape, ws[i]!.shape as number[])) {
      throw new Error(`load: weight ${e.name} has shape [${e.shape}] in ${file} but [${ws[i]!.shape}] in the model`);
    }
    return read(e);
  });
  ws.forEach((w, i) => w.write(tensors[i]!));
  tf.dispose(tensors);
  if (opt && withOpt && header.opt) {
    const st: OptimizerState = {
      kind: header.opt.kind,
      hypers: header.opt.hypers,
      params: header.opt.params.map((p) => ({ step: p.step, tensors: Object.fromEntries(Object.entries(p.tensors).map(([k, e]) => [k, read(e)])) })),
    };
    try {
      opt.loadStateDict(st);
    } finally {
      disposeState(st);
    }
  }
}
