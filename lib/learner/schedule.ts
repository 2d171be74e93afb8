/**
 * Hyper-parameter schedules (fastai's `SchedCos`, `combined_cos`, ...), the `ParamScheduler`
 * callback that applies them per batch, and the learning-rate finder's suggestion rules.
 */
import type { Callback } from "./callback";
import type { Hypers } from "./optimizer";
import type { Learner } from "./learner";

/** A schedule: the value at position `pos` in [0, 1]; per-group values when an array. */
export type Sched = (pos: number) => number | number[];

type Num = number | number[];

function lift(start: Num, end: Num, f: (s: number, e: number) => number): number | number[] {
  if (typeof start === "number" && typeof end === "number") return f(start, end);
  const n = Math.max(typeof start === "number" ? 1 : start.length, typeof end === "number" ? 1 : end.length);
  const at = (v: Num, i: number) => (typeof v === "number" ? v : v[i]!);
  return Array.from({ length: n }, (_, i) => f(at(start, i), at(end, i)));
}

/** Linear from `start` to `end`. */
export function schedLin(start: Num, end: Num): Sched {
  return (pos) => lift(start, end, (s, e) => s + pos * (e - s));
}

/** Cosine from `start` to `end`: start + (1 + cos(π(1 − pos)))·(end − start)/2. */
export function schedCos(start: Num, end: Num): Sched {
  return (pos) => lift(start, end, (s, e) => s + ((1 + Math.cos(Math.PI * (1 - pos))) * (e - s)) / 2);
}

/** Constant `start`. */
export function schedNo(start: Num): Sched {
  return () => start;
}

/** Exponential from `start` to `end`: start·(end/start)^pos. */
export function schedExp(start: Num, end: Num): Sched {
  return (pos) => lift(start, end, (s, e) => s * Math.pow(e / s, pos));
}

/**
 * Chain schedules: `pcts[i]` is the fraction of training spent in `scheds[i]` (fastai's
 * `combine_scheds`): pos → the phase it falls in, then the position within that phase.
 */
export function combineScheds(pcts: number[], scheds: Sched[]): Sched {
  if (pcts.length !== scheds.length) throw new Error("combineScheds: pcts and scheds differ in length");
  const total = pcts.reduce((a, b) => a + b, 0);
  if (Math.abs(total - 1) > 1e-6) throw new Error(`combineScheds: pcts must sum to 1, got ${total}`);
  const bounds = [0];
  for (const p of pcts) bounds.push(bounds[bounds.length - 1]! + p);
  return (pos) => {
    // 1. the last phase whose start is ≤ pos (pos = 1 stays in the last phase)
    let idx = 0;
    for (let i = 0; i < bounds.length; i++) if (pos >= bounds[i]!) idx = i;
    if (idx >= scheds.length) idx = scheds.length - 1;
    // 2. position inside it
    const width = bounds[idx + 1]! - bounds[idx]!;
    const inner = width > 0 ? (pos - bounds[idx]!) / width : 1;
    return scheds[idx]!(inner);
  };
}

/** Two cosine phases `start→middle` (fraction `pct`) then `middle→end` (fastai's `combined_cos`). */
export function combinedCos(pct: number, start: Num, middle: Num, end: Num): Sched {
  return combineScheds([pct, 1 - pct], [schedCos(start, middle), schedCos(middle, end)]);
}

/**
 * Sets optimizer hyper-parameters from schedules before every training batch, at position
 * `trainIter / (nEpoch · batchesPerEpoch)`; records them in the recorder's `hps`.
 */
export class ParamScheduler implements Callback {
  order = 60;
  runValid = false;
  name = "ParamScheduler";
  readonly scheds: Partial<Record<keyof Hypers, Sched>>;
  /** Values set per batch, by hyper-parameter name (last group's value). */
  hps: Partial<Record<keyof Hypers, number[]>> = {};
  constructor(scheds: Partial<Record<keyof Hypers, Sched>>) {
    this.scheds = scheds;
  }
  beforeFit(): void {
    this.hps = {};
  }
  beforeBatch(learn: Learner): void {
    if (!learn.training) return;
    this.setAt(learn, learn.pctTrain);
  }
  protected setAt(learn: Learner, pos: number): void {
    for (const [k, f] of Object.entries(this.scheds) as [keyof Hypers, Sched][]) {
      learn.opt!.setHyper(k, f(pos));
    }
  }
  afterBatch(learn: Learner): void {
    if (!learn.training) return;
    const last = learn.opt!.hypers[learn.opt!.hypers.length - 1]!;
    for (const k of Object.keys(this.scheds) as (keyof Hypers)[]) (this.hps[k] ??= []).push(last[k]);
  }
}

/** One suggestion: the learning rate and the point to mark on the plot. */
export interface Suggestion {
  lr: number;
  point: [number, number];
}

/** A suggestion rule over the finder's (trimmed) learning rates and smoothed losses. */
export type SuggestFunc = ((lrs: number[], losses: number[], numIt: number) => Suggestion) & { suggestName?: string };

function named(f: (lrs: number[], losses: number[], numIt: number) => Suggestion, name: string): SuggestFunc {
  return Object.assign(f, { suggestName: name });
}

/**
 * fastai's `valley`: the longest run of decreasing losses (longest decreasing subsequence ending
 * at each index), then the point 1/3 + 1/6 of the way into it.
 */
export const valley: SuggestFunc = named((lrs, losses) => {
  const n = losses.length;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && lds[i]! < lds[j]! + 1) lds[i] = lds[j]! + 1;
      if (lds[maxEnd]! < lds[i]!) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd]!;
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  const idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  return { lr: lrs[idx]!, point: [lrs[idx]!, losses[idx]!] };
}, "valley");

/** numpy's `gradient` with unit spacing: central differences inside, one-sided at the ends. */
export function npGradient(y: number[]): number[] {
  const n = y.length;
  if (n < 2) return y.map(() => 0);
  return y.map((_, i) => {
    if (i === 0) return y[1]! - y[0]!;
    if (i === n - 1) return y[n - 1]! - y[n - 2]!;
    return (y[i + 1]! - y[i - 1]!) / 2;
  });
}

function interp(x: number, xs: number[], ys: number[]): number {
  // numpy.interp: xs increasing; clamp outside.
  if (x <= xs[0]!) return ys[0]!;
  if (x >= xs[xs.length - 1]!) return ys[ys.length - 1]!;
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]!) {
      const t = (x - xs[i - 1]!) / (xs[i]! - xs[i - 1]!);
      return ys[i - 1]! + t * (ys[i]! - ys[i - 1]!);
    }
  }
  return ys[ys.length - 1]!;
}

/** Options of `slideWith`. */
export interface SlideOptions {
  /** Width of the sliding interval in points (default 15). */
  lrDiff?: number;
  /** Stop when the loss gradients at both ends differ by at most this (default 0.005). */
  thresh?: number;
  /** Multiply the found learning rate by this (default 1). */
  adjustValue?: number;
}

/** fastai's `slide` with custom options. */
export function slideWith(opts: SlideOptions = {}): SuggestFunc {
  const lrDiff = opts.lrDiff ?? 15;
  const thresh = opts.thresh ?? 0.005;
  const adjust = opts.adjustValue ?? 1;
  return named((lrs, losses) => {
    const n = losses.length;
    const g = npGradient(losses);
    const at = <T>(a: T[], i: number) => a[i < 0 ? a.length + i : i]!;
    // 1. slide an interval [l, r] (negative indices from the end) leftwards
    let r = -1;
    // fastai indexes out of range on curves shorter than lrDiff + 1 points; start at the first point instead
    let l = Math.max(r - lrDiff, -n);
    let localMin = at(lrs, l);
    // 2. until the gradient at both ends is about equal (a flat stretch)
    while (l >= -n && Math.abs(at(g, r) - at(g, l)) > thresh) {
      localMin = at(lrs, l);
      r -= 1;
      l -= 1;
    }
    const lr = localMin * adjust;
    const y = interp(Math.log10(lr), lrs.map(Math.log10), losses);
    return { lr, point: [lr, y] };
  }, "slide");
}

/** fastai's `slide`: the left end of the first 15-point interval (from the right) whose loss slopes match. */
export const slide: SuggestFunc = slideWith();

/** fastai's `minimum`: one tenth of the learning rate at the minimum loss. */
export const minimum: SuggestFunc = named((lrs, losses) => {
  let best = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i]! < losses[best]!) best = i;
  const lrMin = lrs[best]!;
  return { lr: lrMin / 10, point: [lrMin, losses[best]!] };
}, "minimum");

/** fastai's `steep`: the learning rate where loss falls fastest against log(lr). */
export const steep: SuggestFunc = named((lrs, losses) => {
  let best = 0;
  let bestG = Infinity;
  for (let i = 0; i + 1 < losses.length; i++) {
    const g = (losses[i + 1]! - losses[i]!) / (Math.log(lrs[i + 1]!) - Math.log(lrs[i]!));
    if (g < bestG) {
      bestG = g;
      best = i;
    }
  }
  const lr = lrs[best]!;
  return { lr, point: [lr, losses[best]!] };
}, "steep");

/** The name a suggestion is reported under. */
export function suggestName(f: SuggestFunc, i: number): string {
  return f.suggestName ?? (f.name || `suggestion${i}`);
}
