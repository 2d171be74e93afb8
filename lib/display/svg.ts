/**
 * A small static SVG renderer for the plotly figures tsfast draws (lines/markers with linear or
 * log axes, heatmaps with cell text, bars). It is the fallback shown where scripts do not run
 * (untrusted notebooks, GitHub previews), so it aims to be legible, not pixel-identical.
 */
import { escapeHtml } from "./display";
import type { Figure, Trace } from "./plot";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

/** Evenly spaced "nice" ticks between lo and hi. */
function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function numbers(a: unknown): number[] {
  return Array.isArray(a) ? a.map((v) => (typeof v === "number" ? v : Number(v))) : [];
}

function axisTitle(layout: Figure["layout"], axis: "xaxis" | "yaxis"): string {
  const t = layout?.[axis]?.title;
  return typeof t === "string" ? t : (t?.text ?? "");
}

/** Axis layout entry for a trace's axis reference ("x", "x2", ...). */
function axisOf(layout: Figure["layout"], ref: unknown, kind: "x" | "y"): Record<string, unknown> {
  const suffix = typeof ref === "string" ? ref.slice(1) : "";
  return ((layout ?? {})[`${kind}axis${suffix}`] ?? {}) as Record<string, unknown>;
}

/**
 * Lines/markers, one panel per x/y axis pair: panels sit where their axes' `domain`s put them,
 * and a y axis `overlaying` another shares its panel with its own scale, ticked on the right.
 */
function scatterPanelsSvg(fig: Figure, box: Box): string[] {
  const groups = new Map<string, Trace[]>();
  for (const t of fig.data) {
    const key = `${t["xaxis"] ?? "x"}|${t["yaxis"] ?? "y"}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const out: string[] = [];
  let k = 0;
  for (const [key, traces] of groups) {
    const [xr, yr] = key.split("|");
    const xa = axisOf(fig.layout, xr, "x");
    const ya = axisOf(fig.layout, yr, "y");
    const [d0, d1] = (Array.isArray(xa["domain"]) ? xa["domain"] : [0, 1]) as number[];
    const sub: Box = { ...box, left: box.left + (d0 ?? 0) * box.width, width: ((d1 ?? 1) - (d0 ?? 0)) * box.width };
    const overlay = typeof ya["overlaying"] === "string";
    const logX = xa["type"] === "log";
    const logY = ya["type"] === "log";
    out.push(...scatterSvg(traces, sub, { logX, logY, right: overlay, frame: !overlay, colorOffset: k }));
    const title = (t: unknown) => (typeof t === "string" ? t : ((t as { text?: string } | undefined)?.text ?? ""));
    if (groups.size > 1 && title(ya["title"])) {
      const x = overlay ? sub.left + sub.width + 40 : sub.left - 42;
      out.push(`<text transform="translate(${x},${sub.top + sub.height / 2}) rotate(-90)" font-size="11" text-anchor="middle">${escapeHtml(title(ya["title"]))}</text>`);
    }
    k += traces.length;
  }
  return out;
}

function scatterSvg(
  traces: Trace[],
  box: Box,
  o: { logX: boolean; logY: boolean; right?: boolean; frame?: boolean; colorOffset?: number },
): string[] {
  const { logX, logY } = o;
  const tx = (v: number) => (logX ? Math.log10(v) : v);
  const ty = (v: number) => (logY ? Math.log10(v) : v);
  const pts = traces.map((t) => {
    const ys = numbers(t.y);
    const xs = t.x === undefined ? ys.map((_, i) => i) : numbers(t.x);
    return xs.map((x, i) => [tx(x), ty(ys[i] ?? NaN)] as [number, number]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  });
  const all = pts.flat();
  if (all.length === 0) return [];
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number) => box.left + ((x - x0) / (x1 - x0)) * box.width;
  const sy = (y: number) => box.top + box.height - ((y - y0) / (y1 - y0)) * box.height;
  const out: string[] = [];
  if (o.frame !== false) {
    out.push(`<rect x="${box.left}" y="${box.top}" width="${box.width}" height="${box.height}" fill="#fafafa" stroke="#ccc"/>`);
  }
  for (const t of o.right ? [] : ticks(x0, x1)) {
    out.push(`<text x="${sx(t).toFixed(1)}" y="${box.top + box.height + 14}" font-size="10" text-anchor="middle">${fmt(logX ? 10 ** t : t)}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    if (o.right) {
      out.push(`<text x="${box.left + box.width + 4}" y="${(sy(t) + 3).toFixed(1)}" font-size="10">${fmt(logY ? 10 ** t : t)}</text>`);
      continue;
    }
    out.push(`<line x1="${box.left}" x2="${box.left + box.width}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${box.left - 4}" y="${(sy(t) + 3).toFixed(1)}" font-size="10" text-anchor="end">${fmt(logY ? 10 ** t : t)}</text>`);
  }
  traces.forEach((trace, i) => {
    const k = i + (o.colorOffset ?? 0);
    const color = trace.line?.color ?? trace.marker?.color ?? PALETTE[k % PALETTE.length];
    const p = pts[i] ?? [];
    const mode = trace.mode ?? "lines";
    if (mode.includes("lines") && p.length > 1) {
      const d = p.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    }
    if (mode.includes("markers")) {
      for (const [x, y] of p) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    if (trace.name) {
      out.push(`<text x="${box.left + box.width - 4}" y="${box.top + 14 + 13 * k}" font-size="11" text-anchor="end" fill="${color}">${escapeHtml(trace.name)}</text>`);
    }
  });
  return out;
}

function heatmapSvg(trace: Trace, box: Box): string[] {
  const z = (trace.z ?? []) as number[][];
  const rows = z.length;
  const cols = Math.max(0, ...z.map((r) => r.length));
  if (rows === 0 || cols === 0) return [];
  const flat = z.flat().filter(Number.isFinite);
  const zmax = Math.max(...flat, 1e-12);
  const zmin = Math.min(...flat, 0);
  const cw = box.width / cols;
  const ch = box.height / rows;
  const text = trace.text as (string | number)[][] | undefined;
  const xs = (trace.x ?? []) as (string | number)[];
  const ys = (trace.y ?? []) as (string | number)[];
  const font = Math.max(6, Math.min(12, Math.floor(Math.min(cw, ch) / 2.5)));
  const out: string[] = [];
  // Plotly draws row 0 at the bottom unless the y axis is reversed; tsfast's charts reverse it.
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = z[r]?.[c] ?? 0;
      const f = (v - zmin) / (zmax - zmin || 1);
      const shade = Math.round(255 - f * 200);
      const x = box.left + c * cw;
      const y = box.top + r * ch;
      out.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${cw.toFixed(1)}" height="${ch.toFixed(1)}" fill="rgb(${shade},${shade},255)"/>`);
      const label = text?.[r]?.[c] ?? "";
      if (label !== "" && font >= 7) {
        out.push(`<text x="${(x + cw / 2).toFixed(1)}" y="${(y + ch / 2 + font / 3).toFixed(1)}" font-size="${font}" text-anchor="middle" fill="${f > 0.6 ? "white" : "black"}">${escapeHtml(String(label))}</text>`);
      }
    }
  }
  xs.forEach((lab, c) => {
    const x = box.left + (c + 0.5) * cw;
    const y = box.top + box.height + 6;
    out.push(`<text transform="translate(${x.toFixed(1)},${y}) rotate(45)" font-size="${font}">${escapeHtml(String(lab))}</text>`);
  });
  ys.forEach((lab, r) => {
    out.push(`<text x="${box.left - 4}" y="${(box.top + (r + 0.5) * ch + font / 3).toFixed(1)}" font-size="${font}" text-anchor="end">${escapeHtml(String(lab))}</text>`);
  });
  return out;
}

function barSvg(trace: Trace, box: Box): string[] {
  const ys = numbers(trace.y);
  const xs = (trace.x ?? ys.map((_, i) => i)) as (string | number)[];
  const ymax = Math.max(...ys, 0);
  const ymin = Math.min(...ys, 0);
  const bw = box.width / Math.max(1, ys.length);
  const sy = (y: number) => box.top + box.height - ((y - ymin) / (ymax - ymin || 1)) * box.height;
  const out: string[] = [];
  ys.forEach((y, i) => {
    const top = Math.min(sy(y), sy(0));
    out.push(`<rect x="${(box.left + i * bw + bw * 0.1).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${Math.abs(sy(y) - sy(0)).toFixed(1)}" fill="${trace.marker?.color ?? PALETTE[0]}"/>`);
    out.push(`<text x="${(box.left + (i + 0.5) * bw).toFixed(1)}" y="${box.top + box.height + 14}" font-size="10" text-anchor="middle">${escapeHtml(String(xs[i] ?? i))}</text>`);
  });
  return out;
}

/** Render `fig` as a standalone SVG string of `width`×`height` pixels. */
export function figureToSvg(fig: Figure, width = 640, height = 400): string {
  const layout = fig.layout ?? {};
  const isHeat = fig.data.some((t) => t.type === "heatmap");
  const hasRightAxis = Object.values(layout).some((a) => typeof a === "object" && a !== null && "overlaying" in a);
  const margin = isHeat ? { l: 110, r: 20, t: 40, b: 100 } : { l: 60, r: hasRightAxis ? 60 : 20, t: 40, b: 50 };
  const box: Box = { left: margin.l, top: margin.t, width: width - margin.l - margin.r, height: height - margin.t - margin.b };
  const parts: string[] = [];
  const title = typeof layout.title === "string" ? layout.title : (layout.title?.text ?? "");
  if (title) parts.push(`<text x="${width / 2}" y="22" font-size="14" text-anchor="middle">${escapeHtml(title)}</text>`);
  if (isHeat) {
    for (const t of fig.data) if (t.type === "heatmap") parts.push(...heatmapSvg(t, box));
  } else if (fig.data.every((t) => t.type === "bar")) {
    for (const t of fig.data) parts.push(...barSvg(t, box));
  } else {
    parts.push(...scatterPanelsSvg(fig, box));
  }
  const xt = axisTitle(layout, "xaxis");
  const yt = axisTitle(layout, "yaxis");
  if (xt) parts.push(`<text x="${box.left + box.width / 2}" y="${height - 6}" font-size="12" text-anchor="middle">${escapeHtml(xt)}</text>`);
  if (yt) parts.push(`<text transform="translate(14,${box.top + box.height / 2}) rotate(-90)" font-size="12" text-anchor="middle">${escapeHtml(yt)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">${parts.join("")}</svg>`;
}
