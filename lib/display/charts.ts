/**
 * Pure builders of plotly.js figures for training charts: the loss curve, the hyper-parameter
 * schedule and the learning-rate finder (fastai's `plot_loss`, `plot_sched`, `plot_lr_find`).
 * They only compute JSON from plain numbers (a `Recorder` fits `LossData` as it is), so the
 * learner can draw with them without importing plotly; `showPlot` draws them.
 */
import type { Figure, Trace } from "./plot";

/** What `lossFigure` reads from a recorder (fastai's `Recorder` fields). */
export interface LossData {
  /** Training loss after every batch. */
  losses: readonly number[];
  /** One row per epoch, fastai's layout `[trainLoss, validLoss, ...metrics]`. Default none. */
  values?: readonly (readonly number[])[];
  /** Batch count at the end of each epoch; default: epochs spread evenly over `losses`. */
  iters?: readonly number[];
}

/** Options of `lossFigure`. */
export interface LossFigureOptions {
  /** Batches to leave out at the start (their loss is noisy). Default `5` (fastai's). */
  skipStart?: number;
  /** Draw the validation loss too. Default `true`. */
  withValid?: boolean;
  /** Column of `values` that holds the validation loss. Default `1`. */
  validCol?: number;
  /** Chart title. Default none. */
  title?: string;
}

/** The training loss per batch and the validation loss per epoch against the batch count (fastai's `plot_loss`). */
export function lossFigure(rec: LossData, opts: LossFigureOptions = {}): Figure {
  const { skipStart = 5, withValid = true, validCol = 1, title } = opts;
  const start = Math.min(skipStart, Math.max(0, rec.losses.length - 1));
  const xs = rec.losses.map((_, i) => i).slice(start);
  const data: Trace[] = [
    { type: "scatter", mode: "lines", name: "train", x: xs, y: rec.losses.slice(start) },
  ];
  const values = rec.values ?? [];
  if (withValid && values.length > 0) {
    const iters = rec.iters ?? values.map((_, e) => Math.round(((e + 1) * rec.losses.length) / values.length));
    const vx: number[] = [];
    const vy: number[] = [];
    values.forEach((row, e) => {
      const it = iters[e];
      const v = row[validCol];
      if (it !== undefined && it >= start && v !== undefined && Number.isFinite(v)) {
        vx.push(it);
        vy.push(v);
      }
    });
    data.push({ type: "scatter", mode: "lines+markers", name: "valid", x: vx, y: vy });
  }
  return {
    data,
    layout: {
      ...(title ? { title: { text: title } } : {}),
      xaxis: { title: { text: "batch" } },
      yaxis: { title: { text: "loss" } },
      width: 640,
      height: 400,
    },
  };
}

/**
 * Each hyper-parameter schedule against the batch count, one panel per entry side by side
 * (fastai's `plot_sched`), e.g. `schedFigure({ lr: recorder.lrs, mom: recorder.moms })`.
 */
export function schedFigure(hps: Record<string, readonly number[]>): Figure {
  const names = Object.keys(hps);
  if (names.length === 0) throw new Error("schedFigure needs at least one schedule, e.g. { lr: recorder.lrs }");
  const gap = 0.08;
  const w = (1 - gap * (names.length - 1)) / names.length;
  const layout: Record<string, unknown> = { width: 320 * names.length + 80, height: 360, showlegend: false };
  const data: Trace[] = names.map((name, k) => {
    const suffix = k === 0 ? "" : String(k + 1);
    layout[`xaxis${suffix}`] = { domain: [k * (w + gap), k * (w + gap) + w], title: { text: "batch" }, anchor: `y${suffix}` };
    layout[`yaxis${suffix}`] = { title: { text: name }, anchor: `x${suffix}`, exponentformat: "e" };
    const ys = hps[name] ?? [];
    return { type: "scatter", mode: "lines", name, x: ys.map((_, i) => i), y: ys.slice(), xaxis: `x${suffix}`, yaxis: `y${suffix}` };
  });
  return { data, layout };
}

/** A suggested learning rate to mark on the `lrFind` curve. */
export interface LrSuggestion {
  /** Name shown in the legend, e.g. `"valley"`. */
  name: string;
  lr: number;
  /** Loss at `lr`; default: read off the curve (interpolated in log-lr). */
  loss?: number;
}

/** Options of `lrFindFigure`. */
export interface LrFindFigureOptions {
  /** Points to leave out at the end (where the loss blows up). Default `5` (fastai's). */
  skipEnd?: number;
  /** Chart title. Default none. */
  title?: string;
}

/** Loss at `lr` on the curve `(lrs, losses)`, interpolated linearly in log10(lr). */
export function lossAt(lrs: readonly number[], losses: readonly number[], lr: number): number {
  if (lrs.length === 0) return NaN;
  if (lr <= lrs[0]!) return losses[0]!;
  for (let i = 1; i < lrs.length; i++) {
    const a = lrs[i - 1]!;
    const b = lrs[i]!;
    if (lr <= b) {
      const t = (Math.log10(lr) - Math.log10(a)) / (Math.log10(b) - Math.log10(a) || 1);
      return losses[i - 1]! + t * (losses[i]! - losses[i - 1]!);
    }
  }
  return losses[losses.length - 1]!;
}

/**
 * The loss against the learning rate on a log x-axis, with each suggestion marked as a point
 * named in the legend (fastai's `plot_lr_find`); `suggestions` may be a list or `{ valley: 1e-3 }`.
 */
export function lrFindFigure(
  lrs: readonly number[],
  losses: readonly number[],
  suggestions: readonly LrSuggestion[] | Record<string, number> = [],
  opts: LrFindFigureOptions = {},
): Figure {
  const { skipEnd = 5, title } = opts;
  if (lrs.length !== losses.length) {
    throw new Error(`lrFindFigure: ${lrs.length} learning rates but ${losses.length} losses`);
  }
  const end = Math.max(1, lrs.length - skipEnd);
  const x = lrs.slice(0, end);
  const y = losses.slice(0, end);
  const list: LrSuggestion[] = Array.isArray(suggestions)
    ? (suggestions as readonly LrSuggestion[]).slice()
    : Object.entries(suggestions as Record<string, number>).map(([name, lr]) => ({ name, lr }));
  const colors = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
  const data: Trace[] = [{ type: "scatter", mode: "lines", name: "loss", x, y }];
  list.forEach((s, k) => {
    data.push({
      type: "scatter",
      mode: "markers",
      name: `${s.name}: ${s.lr.toExponential(2)}`,
      x: [s.lr],
      y: [s.loss ?? lossAt(x, y, s.lr)],
      marker: { size: 11, color: colors[k % colors.length] },
    });
  });
  return {
    data,
    layout: {
      ...(title ? { title: { text: title } } : {}),
      xaxis: { type: "log", title: { text: "learning rate" }, exponentformat: "e" },
      yaxis: { title: { text: "loss" } },
      width: 640,
      height: 400,
    },
  };
}
