/**
 * What the server needs from a model: a vocabulary and an async `predict` on image bytes.
 *
 * A `Learner` (and what `loadLearner(dir)` returns) already has this shape. `loadPredictor(dir)`
 * obtains one from an export folder through `loadLearner`; `setPredictorLoader` points it
 * elsewhere (tests, or another model format).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import type { LearnerLike, Prediction } from "../learner/contracts";
import { loadLearner } from "../learner/export";
import { BrokenModelError, PredictInputError } from "../learner/predict";
import { isTextSpec, specTokenizer, TextDataLoaders } from "../text/data";
import { checkImage } from "./image";
import { HttpError } from "./errors";
import type { Upload } from "./upload";

export type { LearnerLike, Prediction };

/** The model side of the server: anything with a `vocab` and a `predict` on image bytes. */
export interface Predictor {
  /** Class names, in the order of `probs`. */
  vocab: string[];
  /** Classify one encoded image (JPEG, PNG, ...). */
  predict(input: Buffer): Promise<Prediction>;
  /** Classify several at once (optional; the server batches waiting requests when present). */
  predictBatch?: (inputs: Buffer[]) => Promise<Prediction[]>;
  /** Whether the model is multi-label (optional). */
  isMultiLabel?: boolean;
  /** Free the model's tensors (optional; `close()` calls it for a model the server loaded). */
  dispose?: () => void;
}

/** Turns an export folder into a `Predictor`. */
export type PredictorLoader = (dir: string) => Promise<Predictor>;

let loader: PredictorLoader | undefined;

/** Make `serve(dir)` and the CLI load export folders with `fn` instead of `loadLearner`; `undefined` restores the default. */
export function setPredictorLoader(fn: PredictorLoader | undefined): void {
  loader = fn;
}

/** Load the model exported to `dir` (by `learn.export(dir)`); errors name the folder and what is missing. */
export async function loadPredictor(dir: string): Promise<Predictor> {
  const abs = path.resolve(dir);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(abs);
  } catch {
    throw new Error(`export folder "${dir}" does not exist (resolved to ${abs}); create it with learn.export("${dir}")`);
  }
  if (!stat.isDirectory()) {
    throw new Error(`"${dir}" is a file, not an export folder; pass the folder learn.export(dir) wrote`);
  }
  const load = loader ?? loadLearnerPredictor;
  const p = await load(abs);
  if (!p || !Array.isArray(p.vocab) || typeof p.predict !== "function") {
    throw new Error(`the model loaded from "${dir}" has no vocab/predict; is it a tsfast export?`);
  }
  return p;
}

/** `loadLearner(dir)` as a `Predictor` that frees the model's weights on `dispose()`. */
async function loadLearnerPredictor(dir: string): Promise<Predictor> {
  const learn = await loadLearner(dir);
  // a text model trained with custom tokenizer rules: refuse at start, not at every request, when they are unknown here
  const spec = (learn as { meta?: { inferenceSpec?: unknown } }).meta?.inferenceSpec;
  if (isTextSpec(spec)) {
    try {
      specTokenizer(spec);
    } catch (e) {
      learn.model.dispose();
      throw e;
    }
  }
  // An exported learner owns its model's weights; the server frees them on close().
  return Object.assign(learn, { dispose: () => learn.model.dispose() });
}

/** The class probabilities sorted high to low, best `k` first. */
export function topK(probs: number[], vocab: string[], k: number): { label: string; index: number; probability: number }[] {
  return probs
    .map((p, i) => ({ label: vocab[i] ?? String(i), index: i, probability: p }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, Math.max(0, k));
}

/** `source` as a `Predictor`: as is, or a `Learner` seen through `learn.dls.vocab`. */
export function asPredictor(source: Predictor | LearnerLike): Predictor {
  const s = source as Partial<Predictor> & Partial<LearnerLike>;
  if (s && typeof s.predict === "function") {
    if (Array.isArray(s.vocab)) return source as Predictor;
    if (s.dls && Array.isArray(s.dls.vocab)) {
      const learn = source as LearnerLike;
      const p: Predictor & { model?: unknown; inputKind?: string } = {
        vocab: learn.dls.vocab!,
        isMultiLabel: !!learn.dls.isMultiLabel,
        predict: (input) => learn.predict(input),
        model: learn.model,
      };
      // a text learner takes { "text": "..." } as its export does
      if (learn.dls instanceof TextDataLoaders) p.inputKind = "text";
      if (typeof learn.predictBatch === "function") p.predictBatch = (inputs) => learn.predictBatch!(inputs);
      return p;
    }
  }
  throw new Error("serve(source): source must be an export folder path, a Learner, or an object with `vocab` and `predict(input)`");
}

/**
 * The work of one batch: check every image (a bad one fails alone), then predict the good ones
 * together with `predictBatch` when the model has it — one by one if not, or if the batch call fails.
 */
export function checkedBatchPredict(predictor: Predictor, maxPixels: number) {
  return async (uploads: Upload[]): Promise<({ pred: Prediction; ms: number } | Error)[]> => {
    const t0 = performance.now();
    const out: (Prediction | Error | undefined)[] = uploads.map(() => undefined);
    const good: number[] = [];
    for (const [i, u] of uploads.entries()) {
      try {
        if (u.via === "json") {
          out[i] = await predictJsonRow(predictor, u.data);
          continue;
        }
        if (specKind(predictor) === "text") throw new HttpError(415, "unsupported_media_type", `this model classifies text, not files; ${TEXT_HOW}`);
        await checkImage(u.data, maxPixels, u.filename);
        good.push(i);
      } catch (e) {
        out[i] = asError(e);
      }
    }
    let batched = false;
    if (predictor.predictBatch && good.length > 1) {
      try {
        const preds = await predictor.predictBatch(good.map((i) => uploads[i]!.data));
        if (preds.length === good.length) {
          good.forEach((i, j) => (out[i] = preds[j]!));
          batched = true;
        }
      } catch {
        // fall through: predicted one by one, so only the image at fault fails
      }
    }
    if (!batched) {
      for (const i of good) {
        try {
          out[i] = await predictor.predict(uploads[i]!.data);
        } catch (e) {
          out[i] = asError(e);
        }
      }
    }
    const ms = performance.now() - t0;
    return out.map((r) => (r instanceof Error || r === undefined ? (r ?? new Error("no prediction")) : { pred: r, ms }));
  };
}

// ---- tables: a JSON row goes to a tabular model's `predict` as an object (a bad row is a 400/422 naming the column)
async function predictJsonRow(predictor: Predictor, body: Buffer): Promise<Prediction> {
  // an export says what it takes; a learner passed to `serve` as it is gets to try
  const kind = specKind(predictor);
  let row: unknown;
  try {
    row = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new HttpError(400, "bad_json", `the body is not valid JSON (${(e as Error).message}); ${kind === "text" ? TEXT_HOW : 'send a row such as {"age": 39, "workclass": "Private"}'}`);
  }
  // text: { "text": "..." } goes to predict as the string
  if (kind === "text") return predictJsonText(predictor, row);
  if (row === null || typeof row !== "object" || Array.isArray(row)) {
    throw new HttpError(400, "bad_row", "the JSON body must be one object of column values, such as {\"age\": 39, \"workclass\": \"Private\"}");
  }
  if (kind !== undefined && kind !== "tabular") throw new HttpError(415, "unsupported_media_type", "this model takes images, not JSON rows; send the image as multipart field \"file\" or the raw body");
  try {
    return await predictor.predict(row as unknown as Buffer);
  } catch (e) {
    // a row's problems (a missing column, a value of the wrong kind) are the client's; broken weights are not
    if (e instanceof BrokenModelError) throw e;
    throw new HttpError(422, "bad_row", asError(e).message);
  }
}
// ---- end tables

/** A text export's JSON body `{ "text": "..." }`: a missing or non-string field is a 400, an empty text a 422 saying so. */
async function predictJsonText(predictor: Predictor, json: unknown): Promise<Prediction> {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new HttpError(400, "bad_text", `this model classifies text: send {"text": "..."} (the body is ${json === null ? "null" : Array.isArray(json) ? "a list" : `a ${typeof json}`})`);
  }
  const body = json as Record<string, unknown>;
  const text = body["text"];
  if (typeof text !== "string") {
    const keys = Object.keys(body);
    throw new HttpError(400, "bad_text", `this model classifies text: send {"text": "..."} (the body has ${keys.length ? `fields ${keys.map((k) => `"${k}"`).join(", ")}` : "no fields"}${"text" in body ? `, and "text" is ${typeof text}` : ""})`);
  }
  try {
    return await predictor.predict(text as unknown as Buffer);
  } catch (e) {
    // only a text the model cannot take (empty) is the client's to fix: anything else is the server's (a 500)
    if (e instanceof PredictInputError) throw new HttpError(422, "bad_text", e.message);
    throw e;
  }
}

/** How to send a text model its input (in the errors of a body it cannot take). */
export const TEXT_HOW = `send the text as JSON {"text": "..."} with Content-Type application/json (curl -H 'Content-Type: application/json' -d '{"text": "a great film"}')`;

/** The kind of input an export takes ("image", "tabular", "text", ...), from its inference spec (a text learner in memory: "text"); undefined for other learners and hand-made predictors. */
export function specKind(predictor: Predictor): string | undefined {
  const p = predictor as { meta?: { inferenceSpec?: { kind?: string } | null }; inputKind?: string };
  const spec = p.meta?.inferenceSpec;
  return spec === undefined ? p.inputKind : (spec?.kind ?? "image");
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Model facts for `GET /info`, read defensively: name, input shape and parameter count from `model`
 * (a tf.LayersModel), export metadata from `meta` (its tsfast.json); a hand-made predictor may have neither.
 */
export function modelInfo(p: Predictor): Record<string, unknown> {
  const src = p as unknown as {
    model?: { name?: unknown; inputs?: { shape?: unknown }[]; countParams?: () => number };
    meta?: { format?: unknown; version?: unknown; createdAt?: unknown; loss?: unknown };
  };
  const info: Record<string, unknown> = {};
  const m = src.model;
  if (m && typeof m === "object") {
    if (typeof m.name === "string") info["name"] = m.name;
    if (Array.isArray(m.inputs) && m.inputs[0]) info["inputShape"] = m.inputs[0].shape;
    if (typeof m.countParams === "function") {
      try {
        info["params"] = m.countParams();
      } catch {
        /* not built yet */
      }
    }
  }
  const meta = src.meta;
  if (meta && typeof meta === "object") {
    info["export"] = { format: meta.format, version: meta.version, createdAt: meta.createdAt, loss: meta.loss };
  }
  return info;
}
