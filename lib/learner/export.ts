/**
 * `export`/`loadLearner`: a self-contained, code-free inference artifact (tfjs LayersModel JSON +
 * weights + vocab + inference spec + metadata), written atomically (a temp folder, then rename).
 * Checkpoints (`save`/`load`) are in `checkpoint.ts`, prediction in `predict.ts`.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { Loss } from "./losses";
import { activationOf, predictManyWith, predictWith, type Activation, type Prediction } from "./predict";
import { sha256Hex, validateExport } from "./validate-export";

/** The artifact format name written into `tsfast.json`. */
export const EXPORT_FORMAT = "tsfast-export";
/** The artifact format version this build writes and reads. */
export const EXPORT_VERSION = 1;

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
  /** Predict one input: a file path, an encoded image, a prepared tensor, (collaborative filtering) `{ user, item }`, or (tables) a row by column name. */
  predict(input: string | Buffer | tf.Tensor | { user: unknown; item: unknown } | Record<string, string | number | boolean | null>): Promise<Prediction>;
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
    predict: (input) => predictWith(model, info, input as string | Buffer | tf.Tensor),
    predictBatch: (inputs) => predictManyWith(model, info, inputs),
  };
}
