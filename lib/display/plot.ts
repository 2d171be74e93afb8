/**
 * Inline plotly.js charts that work offline: the plotly bundle is inlined once per kernel session
 * (in its own output, so charts that are later replaced in place never take it with them), each
 * chart carries an SVG drawing of itself that shows wherever scripts are stripped, and the script
 * swaps it for the interactive chart where they run.
 */
import * as fs from "node:fs";
import { randomBytes } from "node:crypto";
import { escapeHtml, inKernel, showBundle, type LiveDisplay, type MimeBundle } from "./display";
import { figureToSvg } from "./svg";

/** One plotly trace (the subset of fields tsfast's charts and fallbacks understand, plus any other). */
export interface Trace {
  type?: "scatter" | "heatmap" | "bar" | string;
  x?: (number | string)[];
  y?: (number | string)[];
  z?: number[][];
  text?: unknown;
  mode?: string;
  name?: string;
  line?: { color?: string; width?: number; dash?: string };
  marker?: { color?: string; size?: number };
  [key: string]: unknown;
}

/** A plotly layout (title and axes are read by the SVG fallback; everything is passed to plotly). */
export interface Layout {
  title?: string | { text?: string };
  xaxis?: { title?: string | { text?: string }; type?: "log" | "linear" | "category"; [key: string]: unknown };
  yaxis?: { title?: string | { text?: string }; type?: "log" | "linear" | "category"; [key: string]: unknown };
  width?: number;
  height?: number;
  [key: string]: unknown;
}

/** A plotly figure: the JSON that `Plotly.newPlot(div, data, layout)` takes. */
export interface Figure {
  data: Trace[];
  layout?: Layout;
}

/** Options for `showPlot` / `plotBundle`. */
export interface PlotOptions {
  /** Chart width in pixels (default: the layout's, else 640). */
  width?: number;
  /** Chart height in pixels (default: the layout's, else 400). */
  height?: number;
  /** Draw into this live display (replacing what it shows) instead of a new output. */
  live?: LiveDisplay;
}

let bundleSent = false;

/** The plotly.js bundle as an HTML script block that also works under require.js (classic Notebook). */
function plotlyBundleHtml(): string {
  const js = fs.readFileSync(require.resolve("plotly.js-dist-min/plotly.min.js"), "utf8");
  // Under require.js, plotly's UMD header would register an AMD module instead of window.Plotly.
  return (
    `<script>window.__tsfastDefine = window.define; window.define = undefined;</script>` +
    `<script>${js.replace(/<\/script/gi, "<\\/script")}</script>` +
    `<script>window.define = window.__tsfastDefine;</script>`
  );
}

/** Inline the plotly bundle once per kernel session, as an output of its own. */
function ensureBundle(): void {
  if (bundleSent || !inKernel()) return;
  showBundle({ "text/html": plotlyBundleHtml(), "text/plain": "" });
  bundleSent = true;
}

/** A short text description of a figure for terminals and the plain-text slot of a bundle. */
function figureText(fig: Figure): string {
  const t = fig.layout?.title;
  const title = typeof t === "string" ? t : (t?.text ?? "chart");
  const traces = fig.data.map((d) => `${d.name ?? d.type ?? "trace"}(${(d.y ?? d.z ?? []).length})`).join(", ");
  return `[plot] ${title}: ${traces}`;
}

/** plotly.js 3 only takes `{ text }` titles; accept plain strings as earlier versions did. */
function normaliseTitles(layout: Layout): Layout {
  const fix = (t: unknown) => (typeof t === "string" ? { text: t } : t);
  const out: Layout = { ...layout, title: fix(layout.title) as Layout["title"] };
  for (const key of Object.keys(layout)) {
    const axis = layout[key];
    if (/^[xy]axis\d*$/.test(key) && axis && typeof axis === "object") {
      const a = axis as Record<string, unknown>;
      out[key] = { ...a, title: fix(a["title"]) };
    }
  }
  return out;
}

/**
 * The display bundle of a figure: interactive HTML with an inline SVG fallback, the SVG, and text.
 * In a kernel, the first call also emits the plotly bundle (its own output), so a bundle shown
 * through a `LiveDisplay` draws too.
 */
export function plotBundle(fig: Figure, opts: PlotOptions = {}): MimeBundle {
  ensureBundle();
  const width = opts.width ?? fig.layout?.width ?? 640;
  const height = opts.height ?? fig.layout?.height ?? 400;
  const layout = normaliseTitles({ ...fig.layout, width, height });
  const id = `tsfast-plot-${randomBytes(6).toString("hex")}`;
  const svg = figureToSvg(fig, width, height);
  const json = JSON.stringify({ data: fig.data, layout }).replace(/</g, "\\u003c");
  const html =
    `<div class="tsfast-plot" data-plot-id="${id}" style="width:${width}px;height:${height}px">` +
    `<div id="${id}"></div><div id="${id}-fallback">${svg}</div></div>` +
    `<script>(function(){var f=${json};function draw(){var el=document.getElementById("${id}");` +
    `if(!el||!window.Plotly)return false;window.Plotly.newPlot(el,f.data,f.layout,{displaylogo:false});` +
    `var fb=document.getElementById("${id}-fallback");if(fb)fb.remove();return true;}` +
    `if(!draw()){var n=0;var t=setInterval(function(){if(draw()||++n>100)clearInterval(t);},50);}})();</script>`;
  return { "text/html": html, "image/svg+xml": svg, "text/plain": figureText(fig) };
}

/** Show a plotly figure inline (or update `opts.live` in place). */
export function showPlot(fig: Figure, opts: PlotOptions = {}): void {
  const bundle = plotBundle(fig, opts);
  if (opts.live) opts.live.update(bundle);
  else showBundle(bundle);
}

/** Reset the once-per-session bundle flag (tests). */
export function resetPlotlyBundleForTests(): void {
  bundleSent = false;
}

