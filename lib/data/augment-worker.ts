/**
 * The worker-thread side of `runBatchTfms`: batch transforms computed off the main thread, so
 * augmentation overlaps the training step instead of delaying it.
 */
import { parentPort } from "node:worker_threads";
import { applyBatchTfms, type BatchTfm } from "./augment";
import type { RawImage } from "./pixels";
import { Rng } from "./random";

interface Job {
  id: number;
  images: RawImage[];
  tfms: BatchTfm[];
  train: boolean;
  seed: number;
}

parentPort?.on("message", (job: Job) => {
  try {
    const res = applyBatchTfms(job.images, job.tfms, job.train, new Rng(job.seed));
    parentPort!.postMessage({ id: job.id, data: res.data, shape: res.shape, mats: res.mats }, [res.data.buffer as ArrayBuffer, res.mats.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) });
  }
});
