/**
 * `runBatchTfms`: batch transforms in worker threads (a small pool shared by every loader), so
 * augmentation overlaps decoding and the training step. `TSFAST_DATA_WORKERS` sets the pool size
 * (default: the number of cores, at most 4; `0` computes on the main thread). Results do not
 * depend on where they are computed: the transforms draw from a generator seeded by `seed`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as worker_threads from "node:worker_threads";
import { Worker } from "node:worker_threads";
import { applyBatchTfms, type BatchResult, type BatchTfm } from "./augment";
import type { RawImage } from "./pixels";
import { Rng } from "./random";

type Pending = { resolve: (r: BatchResult) => void; reject: (e: Error) => void };
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

const slots: (Slot | undefined)[] = [];
let unavailable = false;
let nextId = 0;

/** Worker threads used for batch transforms (`TSFAST_DATA_WORKERS`, default min(cores, 4)). */
export function dataWorkers(): number {
  const env = process.env["TSFAST_DATA_WORKERS"];
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) throw new Error(`TSFAST_DATA_WORKERS must be a whole number, got "${env}"`);
    return n;
  }
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(4, cores));
}

function startSlot(k: number): Slot | undefined {
  const file = path.join(__dirname, "augment-worker.js");
  if (unavailable || !fs.existsSync(file)) {
    unavailable = true;
    return undefined;
  }
  let w: Worker;
  try {
    w = new Worker(file);
  } catch {
    unavailable = true;
    return undefined;
  }
  const slot: Slot = { worker: w, pending: new Map() };
  w.on("message", (msg: { id: number; data?: Float32Array; shape?: BatchResult["shape"]; mats?: Float64Array; error?: string }) => {
    const p = slot.pending.get(msg.id);
    if (!p) return;
    slot.pending.delete(msg.id);
    if (slot.pending.size === 0) w.unref(); // an idle pool must not keep the process alive
    if (msg.error !== undefined) p.reject(new Error(msg.error));
    else p.resolve({ data: msg.data!, shape: msg.shape!, mats: msg.mats! });
  });
  const fail = (e: Error): void => {
    if (slots[k] === slot) slots[k] = undefined; // a later batch starts a new one
    for (const p of slot.pending.values()) p.reject(e);
    slot.pending.clear();
  };
  w.on("error", fail);
  w.on("exit", (code) => fail(new Error(`a data worker exited with code ${code}`)));
  w.unref();
  slots[k] = slot;
  return slot;
}

/** The least busy worker, starting one when the pool is not full; undefined when workers are off. */
function pickSlot(): Slot | undefined {
  const n = dataWorkers();
  if (n === 0 || unavailable) return undefined;
  let best: Slot | undefined;
  for (let k = 0; k < n; k++) {
    const s = slots[k] ?? startSlot(k);
    if (!s) return best;
    if (!best || s.pending.size < best.pending.size) best = s;
    if (best.pending.size === 0) break;
  }
  return best;
}

/** Images whose pixel buffers nothing else holds (fresh decodes): moved to the worker, not copied. */
const owned = new WeakSet<Uint8Array>();

/** Mark `img` as a fresh decode whose buffer may be handed to a data worker (and left detached here). */
export function markOwned(img: RawImage): RawImage {
  owned.add(img.data);
  return img;
}

/** Node's check for memory it cannot move between threads (native memory, as sharp's output); Node >= 21. */
const untransferable = (worker_threads as { isMarkedAsUntransferable?: (o: unknown) => boolean }).isMarkedAsUntransferable;

/** The buffers of `images` that can move to a worker: owned, whole, movable, and each named once. */
function transferable(images: readonly RawImage[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const im of images) {
    const d = im.data;
    const buf = d.buffer;
    if (!owned.has(d) || !(buf instanceof ArrayBuffer) || d.byteOffset !== 0 || d.byteLength !== buf.byteLength) continue;
    if (untransferable?.(buf)) continue;
    out.add(buf);
  }
  return [...out];
}

/** Apply `tfms` to a batch of decoded images (seeded by `seed`), in a data worker when possible. */
export function runBatchTfms(images: RawImage[], tfms: readonly BatchTfm[], train: boolean, seed: number): Promise<BatchResult> {
  const slot = pickSlot();
  if (!slot) {
    try {
      return Promise.resolve(applyBatchTfms(images, tfms, train, new Rng(seed)));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  const id = nextId++;
  return new Promise<BatchResult>((resolve, reject) => {
    const job = { id, images, tfms, train, seed };
    try {
      // Fresh decodes move to the worker; the rest (a cache's images) are copied. Node 20 copies a
      // buffer it cannot move; later versions throw (DataCloneError): then everything is copied.
      try {
        slot.worker.postMessage(job, transferable(images));
      } catch {
        slot.worker.postMessage(job);
      }
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    slot.pending.set(id, { resolve, reject });
    slot.worker.ref();
  });
}
