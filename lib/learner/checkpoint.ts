/**
 * `learn.save`/`learn.load` checkpoints: all weights (incl. batch-norm statistics) and the
 * optimizer state in one file, `<path>/models/<name>.tsfast`, written atomically (temp + rename).
 *
 * Layout: "TSFASTCK" (8 bytes), the header's length (u32 LE), the JSON header (tensor names,
 * shapes, dtypes and byte ranges; optimizer kind, hypers and per-parameter step), then the raw
 * little-endian tensor bytes the header points into.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import type { Optimizer, OptimizerState } from "./optimizer";
import { disposeState } from "./optimizer";

const CKPT_MAGIC = "TSFASTCK";
const CKPT_VERSION = 1;

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
  if (model.weights.length !== header.weights.length) {
    throw new Error(`load: ${file} holds ${header.weights.length} weights but the model has ${model.weights.length}; it was saved from a different architecture`);
  }
  const ws = inFileOrder(model.weights, header.weights);
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

/**
 * The model's weights in the file's order, matched by name. `model.weights` lists the trainable
 * weights first, so its order changes with `freeze`/`unfreeze`: a file saved after `fineTune`
 * (unfrozen) and loaded into a new `visionLearner` (frozen) must not be matched by position. Names
 * that repeat or are missing (a file from another model) fall back to the position.
 */
function inFileOrder(ws: tf.LayerVariable[], entries: { name: string }[]): tf.LayerVariable[] {
  const byName = new Map(ws.map((w) => [w.originalName, w]));
  const names = new Set(entries.map((e) => e.name));
  if (byName.size !== ws.length || names.size !== entries.length || !entries.every((e) => byName.has(e.name))) return ws;
  return entries.map((e) => byName.get(e.name)!);
}
