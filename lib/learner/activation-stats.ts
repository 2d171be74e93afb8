/**
 * fastai's `ActivationStats` callback: hooks layers during a fit and records, for every training
 * batch, each layer's activation mean, standard deviation, share of near-zero values and a
 * histogram — the book's "activation statistics" and its colourful dimension plot (`colorDim`),
 * which show whether activations grow, collapse or die as training goes.
 */
import type { Callback } from "./callback";
import type { Learner } from "./learner";
import { Hooks, hookOutputs } from "./hooks";
import { showPlot, type Figure } from "../display/plot";

/** Options of `ActivationStats` (fastai's defaults). */
export interface ActivationStatsOptions {
  /** Names of the layers to watch (default: every layer with weights). */
  layers?: string[];
  /** Record every `every`-th training batch (default 1). */
  every?: number;
  /** Bins of the histogram over [histMin, histMax] (default 40, over [0, 10], as fastai). */
  bins?: number;
  histMin?: number;
  histMax?: number;
  /** A value counts as near zero when its absolute value is at most this (default 0.05). */
  nearZero?: number;
}

/** What `ActivationStats` records for one layer: one entry per recorded batch. */
export interface LayerStats {
  name: string;
  mean: number[];
  std: number[];
  /** Share of values with |x| ≤ `nearZero`. */
  nearZero: number[];
  /** Counts per histogram bin. */
  hist: number[][];
}

export const activationStatsDefaults = { every: 1, bins: 40, histMin: 0, histMax: 10, nearZero: 0.05 } as const;

/** fastai's `ActivationStats`: per-layer activation statistics for every training batch of a fit. */
export class ActivationStats implements Callback {
  readonly name = "ActivationStats";
  /** After the Recorder (0) so a cancelled batch is not recorded twice. */
  readonly order = 10;
  runValid = false;
  learn?: Learner;
  /** One record per watched layer, in layer order (kept after the fit). */
  stats: LayerStats[] = [];
  private hooks?: Hooks;
  private batch = 0;
  private readonly o: Required<Omit<ActivationStatsOptions, "layers">> & { layers?: string[] };

  constructor(opts: ActivationStatsOptions = {}) {
    this.o = { ...activationStatsDefaults, ...opts };
    if (!Number.isInteger(this.o.every) || this.o.every < 1) throw new Error(`ActivationStats: every must be a positive integer, got ${this.o.every}`);
    if (!Number.isInteger(this.o.bins) || this.o.bins < 1) throw new Error(`ActivationStats: bins must be a positive integer, got ${this.o.bins}`);
    if (!(this.o.histMax > this.o.histMin)) throw new Error(`ActivationStats: histMax (${this.o.histMax}) must be above histMin (${this.o.histMin})`);
  }

  beforeFit(learn: Learner): void {
    this.hooks = hookOutputs(learn.model, this.o.layers);
    this.stats = this.hooks.names.map((name) => ({ name, mean: [], std: [], nearZero: [], hist: [] }));
    this.batch = 0;
  }

  afterBatch(): void {
    if (!this.hooks) return;
    if (this.batch++ % this.o.every === 0) {
      this.hooks.stored.forEach((t, i) => {
        if (t) this.record(this.stats[i]!, t.dataSync());
      });
    }
    this.hooks.clear();
  }

  afterFit(): void {
    this.hooks?.remove();
    this.hooks = undefined;
  }

  private record(s: LayerStats, d: ArrayLike<number>): void {
    const { bins, histMin, histMax, nearZero } = this.o;
    const hist = new Array<number>(bins).fill(0);
    const width = (histMax - histMin) / bins;
    let sum = 0, sum2 = 0, near = 0;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      sum += v;
      sum2 += v * v;
      if (Math.abs(v) <= nearZero) near++;
      if (v >= histMin && v <= histMax) hist[Math.min(bins - 1, Math.floor((v - histMin) / width))]! += 1;
    }
    const mean = sum / d.length;
    s.mean.push(mean);
    s.std.push(Math.sqrt(Math.max(0, sum2 / d.length - mean * mean)));
    s.nearZero.push(near / d.length);
    s.hist.push(hist);
  }

  private layer(idx: number | string): LayerStats {
    const s = typeof idx === "number" ? this.stats.at(idx) : this.stats.find((x) => x.name === idx);
    if (!s) throw new Error(`ActivationStats has no layer ${JSON.stringify(idx)}; it watched ${this.stats.map((x) => x.name).join(", ") || "nothing yet (fit first)"}`);
    return s;
  }

  /** The figure `plotLayerStats` draws: mean, std and % near zero of one layer per batch. */
  layerStatsFigure(idx: number | string): Figure {
    const s = this.layer(idx);
    const x = s.mean.map((_, i) => i * this.o.every);
    const axes = ["x", "x2", "x3"];
    const traces = [
      { y: s.mean, name: "mean" },
      { y: s.std, name: "std" },
      { y: s.nearZero.map((v) => v * 100), name: "% near zero" },
    ].map((t, i) => ({ type: "scatter", mode: "lines", x, y: t.y, name: t.name, xaxis: axes[i], yaxis: `y${i ? i + 1 : ""}` }));
    return {
      data: traces,
      layout: {
        title: { text: `Activations of ${s.name}` },
        grid: { rows: 1, columns: 3, pattern: "independent" },
        xaxis: { title: { text: "batch" } },
        xaxis2: { title: { text: "batch" } },
        xaxis3: { title: { text: "batch" } },
        showlegend: true,
        width: 900,
        height: 320,
      },
    };
  }

  /** fastai's `plot_layer_stats`: mean, std and % near zero of one layer (index or name) over the batches. */
  plotLayerStats(idx: number | string): void {
    showPlot(this.layerStatsFigure(idx));
  }

  /** The figure `colorDim` draws: log(1 + count) per histogram bin (y) and batch (x). */
  colorDimFigure(idx: number | string): Figure {
    const s = this.layer(idx);
    const { bins, histMin, histMax } = this.o;
    const width = (histMax - histMin) / bins;
    const z = Array.from({ length: bins }, (_, b) => s.hist.map((h) => Math.log1p(h[b]!)));
    return {
      data: [{ type: "heatmap", z, x: s.hist.map((_, i) => i * this.o.every), y: z.map((_, b) => histMin + (b + 0.5) * width), colorscale: "Viridis", showscale: false }],
      layout: { title: { text: `Histogram of ${s.name}'s activations per batch (log scale)` }, xaxis: { title: { text: "batch" } }, yaxis: { title: { text: "activation" } }, width: 700, height: 320 },
    };
  }

  /** fastai's `color_dim`: the book's colourful dimension plot of one layer (index or name). */
  colorDim(idx: number | string): void {
    showPlot(this.colorDimFigure(idx));
  }
}
