/** A callback timing training batches `warmup + 1` to `last` (the warm-up ones are not timed). */
import type { Callback } from "../lib/learner/callback";

export function batchTimer(warmup: number, last: number): { cb: Callback; seconds: () => number } {
  const timed = { t0: 0n, t1: 0n, k: 0 };
  const cb = {
    name: "BatchTimer",
    afterBatch: (l: { training: boolean }) => {
      if (!l.training) return;
      timed.k += 1;
      if (timed.k === warmup) timed.t0 = process.hrtime.bigint();
      if (timed.k === last) timed.t1 = process.hrtime.bigint();
    },
  } as unknown as Callback;
  return { cb, seconds: () => Number(timed.t1 - timed.t0) / 1e9 };
}
