/**
 * `runBatchTfms`: batch transforms in a worker thread (one, shared by every loader), falling back
 * to the main thread when workers are off (`TSFAST_DATA_WORKERS=0`) or cannot start. The result
 * is the same either way: the transforms draw from a generator seeded by `seed`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { applyBatchTfms, type BatchResult, type BatchTfm } from "./augment";
import type { RawImage } from "./pixels";
import { Rng } from "./random";

type Pending = { resolve: (r: BatchResult) => void; reject: (e: Error) => void };

let worker: Worker | null | undefined;
const pending = new Map<number, Pending>();
let nextId = 0;

function workersEnabled(): boolean {
  return process.env["TSFAST_DATA_WORKERS"] !== "0";
}

function getWorker(): Worker | null {
  if (worker !== undefined) return worker;
  const file = path.join(__dirname, "augment-worker.js");
  if (!fs.existsSync(file)) return (worker = null);
  try {
    const w = new Worker(file);
    w.on("message", (msg: { id: number; data?: Float32Array; shape?: BatchResult["shape"]; error?: string }) => {
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (pending.size === 0) w.unref();
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve({ data: msg.data!, shape: msg.shape! });
    });
    const fail = (e: Error): void => {
      worker = undefined; // a later batch starts a new one
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    };
    w.on("error", fail);
    w.on("exit", (code) => {
      if (pending.size) fail(new Error(`the data worker exited with code ${code}`));
      worker = undefined;
    });
    w.unref();
    worker = w;
  } catch {
    worker = null;
  }
  return worker;
}

/** Apply `tfms` to a batch of decoded images (seeded by `seed`), in the data worker when possible. */
export function runBatchTfms(images: RawImage[], tfms: readonly BatchTfm[], train: boolean, seed: number): Promise<BatchResult> {
  const w = workersEnabled() ? getWorker() : null;
  if (!w) {
    try {
      return Promise.resolve(applyBatchTfms(images, tfms, train, new Rng(seed)));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  const id = nextId++;
  return new Promise<BatchResult>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    // Images are copied (structured clone): their buffers may be shared with a cache.
    w.postMessage({ id, images, tfms, train, seed });
  });
}
