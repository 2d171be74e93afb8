/**
 * `ProgressCallback`: in a tslab kernel, a live HTML progress bar with the metrics table and a live
 * loss chart, updated in place; in a terminal, one plain text line per epoch.
 */
import type { Callback } from "./callback";
import type { Learner } from "./learner";
import { lossFigure } from "../display/charts";
import { escapeHtml } from "../display/display";
import { showPlot } from "../display/plot";
import { inKernel, newLiveDisplay, type LiveDisplay } from "../display/display";
import type { Figure } from "../display/plot";

/** Options of `ProgressCallback`. */
export interface ProgressOptions {
  /** Redraw the bar every this many batches (default 5). */
  every?: number;
  /** Show the live loss chart under the table (default true). */
  plot?: boolean;
  /** Print the table header and rows in a terminal (default true). */
  print?: boolean;
}

function fmt(v: string | number): string {
  if (typeof v === "string") return v;
  if (Number.isInteger(v)) return String(v);
  return Number.isFinite(v) ? v.toFixed(6) : String(v);
}

/** Shortest time between two live table updates, and between two chart redraws (ms). */
const RENDER_MS = 1000;
const CHART_MS = 5000;

/** Shows training progress: a live bar + table + loss chart in a kernel, a text line per epoch elsewhere. */
export class ProgressCallback implements Callback {
  order = 70;
  name = "ProgressCallback";
  private readonly every: number;
  private readonly plot: boolean;
  private readonly print: boolean;
  private rows: (string | number)[][] = [];
  private table?: LiveDisplay;
  private chart?: LiveDisplay;
  private started = 0;
  private lastRender = 0;
  private lastChart = 0;

  constructor(opts: ProgressOptions = {}) {
    this.every = opts.every ?? 5;
    this.plot = opts.plot ?? true;
    this.print = opts.print ?? true;
  }

  private widths: number[] = [];

  beforeFit(learn: Learner): void {
    this.rows = [];
    // a live display in a kernel; none in a terminal (text lines are printed instead)
    this.table = inKernel() ? newLiveDisplay() : undefined;
    this.chart = this.table && this.plot ? newLiveDisplay() : undefined;
    // each column as wide as its name and a space, at least 12 (a long metric name stays apart from the next)
    this.widths = learn.recorder.metricNames.map((n) => Math.max(12, n.length + 2));
    if (!this.table && this.print) console.log(learn.recorder.metricNames.map((n, k) => n.padEnd(this.widths[k]!)).join(""));
  }
  beforeEpoch(): void {
    this.started = Date.now();
  }
  afterBatch(learn: Learner): void {
    if (!this.table) return;
    const last = learn.iter + 1 === learn.nIter;
    if ((learn.iter + 1) % this.every !== 0 && !last) return;
    // Fast batches (a few ms each, e.g. collaborative filtering) would send updates faster than
    // tslab's socket drains them, and tslab then fails the cell ("Socket is busy writing"): at most
    // one table update per RENDER_MS and one chart per CHART_MS.
    const now = Date.now();
    if (now - this.lastRender < RENDER_MS && !last) return;
    this.lastRender = now;
    this.render(learn);
    if (learn.training && this.chart && (learn.iter + 1) % (this.every * 4) === 0 && now - this.lastChart >= CHART_MS) {
      this.lastChart = now;
      this.drawChart(learn);
    }
  }
  afterEpoch(learn: Learner): void {
    this.rows.push(learn.recorder.log);
    if (this.table) {
      this.render(learn);
      if (this.chart) this.drawChart(learn);
    } else if (this.print) {
      console.log(learn.recorder.log.map((v, k) => fmt(v).padEnd(this.widths[k] ?? 12)).join(""));
    }
  }
  afterFit(learn: Learner): void {
    if (this.table) this.render(learn, true);
  }

  private render(learn: Learner, done = false): void {
    const names = learn.recorder.metricNames;
    const total = learn.nIter || 1;
    const pct = done ? 100 : Math.round((100 * (learn.iter + 1)) / total);
    const secs = (Date.now() - this.started) / 1000;
    const phase = learn.training ? "train" : "valid";
    const bar = done
      ? ""
      : `<div><progress value="${pct}" max="100" style="width:300px;height:20px"></progress> ` +
        `epoch ${learn.epoch + 1}/${learn.nEpoch} · ${phase} ${learn.iter + 1}/${total} [${secs.toFixed(0)}s]` +
        (learn.training && learn.recorder.losses.length ? ` · loss ${learn.recorder.losses[learn.recorder.losses.length - 1]!.toFixed(4)}` : "") +
        `</div>`;
    const head = `<tr>${names.map((n) => `<th style="text-align:left">${escapeHtml(n)}</th>`).join("")}</tr>`;
    const body = this.rows.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(fmt(v))}</td>`).join("")}</tr>`).join("");
    const html = `${bar}<table border="1" class="dataframe"><thead>${head}</thead><tbody>${body}</tbody></table>`;
    const text = [names.join("\t"), ...this.rows.map((r) => r.map(fmt).join("\t"))].join("\n");
    this.table!.update({ "text/html": html, "text/plain": text });
  }

  private drawChart(learn: Learner): void {
    const fig: Figure = lossFigure(learn.recorder, { skipStart: 0 });
    fig.layout = { ...fig.layout, width: 500, height: 300 };
    showPlot(fig, { live: this.chart! });
  }
}
