/**
 * `validateExport`: everything `loadLearner` checks before it trusts an export folder, so a model
 * that cannot be right is refused with a sentence saying what is wrong, never loaded to predict
 * nonsense. In order:
 *   1. the path is a folder holding `tsfast.json`, `model.json` and `weights.bin`;
 *   2. `tsfast.json` has every required field, of the right type (format, version, vocab,
 *      isMultiLabel, inferenceSpec, loss, layerClasses, files);
 *   3. every file matches the sha256 recorded in `tsfast.json` (`files`), so an edited
 *      `model.json` (e.g. swapped weight names) is caught as well as a corrupted `weights.bin`;
 *   4. `model.json` has a topology and one weights manifest whose byte count is `weights.bin`'s;
 *   5. the architecture, built from the topology, has exactly the manifest's weights (names and
 *      shapes), and its output size is the vocab's length.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../engine/tf";

/** The sha256 (hex) of `data`, as `tsfast.json`'s `files` records it. */
export function sha256Hex(data: Buffer | string): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

const ACTIVATIONS = ["softmax", "sigmoid", "none"];
const BYTES_PER = { float32: 4, int32: 4, bool: 1 } as Record<string, number>;

/**
 * Check the export folder `dir` written by `learn.export` (format `format`, versions up to
 * `version`); throws an `Error` naming the file and the field to fix. Resolves when it is sound.
 */
export async function validateExport(dir: string, format: string, version: number): Promise<void> {
  const fail = (msg: string): never => {
    throw new Error(`loadLearner: ${msg}`);
  };
  // 1. a folder with the three files
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    fail(`${path.join(dir, "tsfast.json")} is missing — this folder is not a tsfast export (learn.export writes it); ${dir} does not exist`);
  }
  if (!st!.isDirectory()) fail(`${dir} is a file, not an export folder; pass the folder learn.export(dir) wrote (it holds tsfast.json, model.json, weights.bin)`);
  const file = (name: string) => path.join(dir, name);
  const read = (name: string): Buffer => {
    try {
      return fs.readFileSync(file(name));
    } catch {
      return fail(`${file(name)} is missing — ${name === "tsfast.json" ? "this folder is not a tsfast export (learn.export writes it)" : "the export is incomplete"}`);
    }
  };
  const json = (name: string, bytes: Buffer): Record<string, unknown> => {
    let v: unknown;
    try {
      v = JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      fail(`${file(name)} is not valid JSON (${(e as Error).message}); the export is truncated or corrupted`);
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) fail(`${file(name)} should hold a JSON object`);
    return v as Record<string, unknown>;
  };

  // 2. required fields of tsfast.json
  const meta = json("tsfast.json", read("tsfast.json"));
  const field = (key: string, ok: (v: unknown) => boolean, want: string): unknown => {
    if (!(key in meta)) fail(`${file("tsfast.json")} has no "${key}" (${want}); export the learner again`);
    if (!ok(meta[key])) fail(`${file("tsfast.json")}: "${key}" should be ${want}, got ${JSON.stringify(meta[key])?.slice(0, 80)}`);
    return meta[key];
  };
  if (meta["format"] !== format) fail(`${dir} holds format "${String(meta["format"])}", not "${format}"; it was not written by learn.export`);
  const v = field("version", (x) => typeof x === "number", "a number");
  if ((v as number) > version) fail(`${dir} is ${format} version ${String(v)}, newer than this tsfast reads (${version}); upgrade tsfast`);
  const isStrings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === "string");
  const vocab = field("vocab", isStrings, "the list of class names") as string[];
  // a language model's vocab is its tokens, padded with repeated "xxfake" as fastai's make_vocab pads it
  const lmSpec = meta["inferenceSpec"] as { kind?: unknown; isLm?: unknown } | null | undefined;
  const named = lmSpec?.kind === "text" && lmSpec.isLm === true ? vocab.filter((t) => t !== "xxfake") : vocab;
  if (new Set(named).size !== named.length) fail(`${file("tsfast.json")}: "vocab" names a class twice`);
  field("isMultiLabel", (x) => typeof x === "boolean", "true or false");
  field("inferenceSpec", (x) => x === null || (typeof x === "object" && !Array.isArray(x)), "the preprocessing spec object (or null)");
  const loss = field(
    "loss",
    (x) => !!x && typeof x === "object" && ACTIVATIONS.includes((x as { activation?: string }).activation ?? "") && typeof (x as { thresh?: unknown }).thresh === "number",
    `{ name, activation: ${ACTIVATIONS.map((a) => `"${a}"`).join(" | ")}, thresh }`,
  ) as { activation: string };
  field("layerClasses", isStrings, "the list of layer class names");
  const files = field(
    "files",
    (x) => !!x && typeof x === "object" && Object.values(x as object).every((h) => typeof h === "string"),
    'the sha256 of every file, e.g. { "model.json": "…", "weights.bin": "…" } (exports written before tsfast checked every file lack it: export again)',
  ) as Record<string, string>;

  // 3. checksums over every file
  const bytes: Record<string, Buffer> = {};
  for (const name of ["model.json", "weights.bin"]) {
    if (!(name in files)) fail(`${file("tsfast.json")}: "files" records no sha256 for ${name}; export the learner again`);
  }
  for (const [name, hash] of Object.entries(files)) {
    if (name.includes("/") || name.includes("\\") || name.startsWith(".")) fail(`${file("tsfast.json")}: "files" names ${JSON.stringify(name)}, not a file of this folder`);
    bytes[name] = read(name);
    const recorded = meta["weightsBytes"];
    if (name === "weights.bin" && typeof recorded === "number" && bytes[name]!.length !== recorded) {
      fail(`${file(name)} has ${bytes[name]!.length} bytes but the export recorded ${recorded}; the file is truncated or corrupted`);
    }
    if (sha256Hex(bytes[name]!) !== hash.toLowerCase()) {
      fail(`${file(name)} does not match the sha256 recorded in tsfast.json; the file was changed or corrupted after export`);
    }
  }

  // 4. model.json: topology + one manifest of weights.bin, whose sizes add up to its bytes
  const model = json("model.json", bytes["model.json"]!);
  const topology = model["modelTopology"];
  if (!topology || typeof topology !== "object") fail(`${file("model.json")} has no "modelTopology" (the architecture); the export is incomplete`);
  const manifest = model["weightsManifest"];
  const groups = Array.isArray(manifest) ? (manifest as { paths?: unknown; weights?: unknown }[]) : [];
  if (groups.length !== 1 || !Array.isArray(groups[0]!.weights) || JSON.stringify(groups[0]!.paths) !== '["weights.bin"]') {
    fail(`${file("model.json")} should have one "weightsManifest" entry for weights.bin`);
  }
  const specs = groups[0]!.weights as { name?: unknown; shape?: unknown; dtype?: unknown }[];
  let total = 0;
  const byName = new Map<string, number[]>();
  for (const s of specs) {
    const shape = s.shape;
    if (typeof s.name !== "string" || !Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) || !Object.hasOwn(BYTES_PER, String(s.dtype ?? "float32"))) {
      fail(`${file("model.json")}: weight entry ${JSON.stringify(s).slice(0, 120)} needs a name, a shape and a dtype`);
    }
    if (byName.has(s.name as string)) fail(`${file("model.json")}: weight "${String(s.name)}" is listed twice`);
    byName.set(s.name as string, shape as number[]);
    total += (shape as number[]).reduce((a, b) => a * b, 1) * BYTES_PER[String(s.dtype ?? "float32")]!;
  }
  const wlen = bytes["weights.bin"]!.length;
  if (total !== wlen) fail(`${file("weights.bin")} has ${wlen} bytes but model.json's weights need ${total}; the export is inconsistent`);

  // 5. the architecture: its weights are the manifest's, its output size is the vocab's
  const registry = tf.serialization.SerializationMap.getMap().classNameMap;
  const missing = (meta["layerClasses"] as string[]).filter((c) => !(c in registry));
  if (missing.length) {
    fail(`the model uses layer class(es) ${missing.join(", ")} that are not registered; import the module that defines them (it calls tf.serialization.registerClass) before loadLearner`);
  }
  let arch: tf.LayersModel | undefined;
  try {
    arch = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
  } catch (e) {
    fail(`${file("model.json")}: its "modelTopology" does not build a model (${(e as Error).message})`);
  }
  try {
    const ws = arch!.weights;
    if (ws.length !== byName.size) fail(`${file("model.json")} lists ${byName.size} weights but its architecture has ${ws.length}`);
    for (const w of ws) {
      const shape = byName.get(w.originalName);
      if (!shape) fail(`${file("model.json")} has no weight "${w.originalName}" that its architecture needs`);
      if (!tf.util.arraysEqual(shape!, w.shape as number[])) {
        fail(`${file("model.json")}: weight "${w.originalName}" has shape [${shape!.join(", ")}] but the architecture needs [${w.shape.join(", ")}]`);
      }
    }
    const out = arch!.outputs[0]?.shape;
    const units = out ? out[out.length - 1] : undefined;
    if (typeof units === "number" && (loss.activation !== "none" || vocab.length > 0) && units !== vocab.length) {
      fail(`${file("tsfast.json")}: "vocab" has ${vocab.length} classes but the model outputs ${units}; the labels would not match the outputs`);
    }
  } finally {
    arch!.dispose();
  }
}
