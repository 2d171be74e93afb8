/**
 * The confusion-matrix chart as a pure plotly.js figure builder: it only computes JSON;
 * `showPlot` (lib/display/plot.ts) draws it, with an SVG fallback. Training charts (loss,
 * schedule, lrFind) live one floor down in lib/display/charts.ts so the learner can use them.
 */
import type { Figure, Trace } from "../display/plot";

/** Options of `confusionMatrixFigure`. */
export interface ConfusionMatrixFigureOptions {
  /** Write fractions of each actual class (rows sum to 1) instead of counts. Default `false`. */
  normalize?: boolean;
  /** Chart title. Default `"Confusion matrix"`. */
  title?: string;
  /** Decimals written in the cells when `normalize` is on. Default `2`. */
  normDec?: number;
  /** Plotly colour scale. Default `"Blues"` (fastai's). */
  colorscale?: string;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * A heatmap of `cm` (rows actual, columns predicted) with the count or fraction written in each
 * cell and the class names on both axes; cell size and fonts shrink as classes grow, so 2 and 40
 * classes both read.
 */
export function confusionMatrixFigure(
  cm: number[][],
  vocab: readonly string[],
  opts: ConfusionMatrixFigureOptions = {},
): Figure {
  const { normalize = false, title = "Confusion matrix", normDec = 2, colorscale = "Blues" } = opts;
  const n = cm.length;
  if (vocab.length !== n) throw new Error(`confusion matrix has ${n} classes but vocab has ${vocab.length}`);
  const z = normalize
    ? cm.map((row) => {
        const s = row.reduce((a, b) => a + b, 0);
        return row.map((v) => (s === 0 ? 0 : v / s));
      })
    : cm.map((row) => row.slice());
  const text = z.map((row) => row.map((v) => (normalize ? v.toFixed(normDec) : String(v))));
  // Layout scales with the class count: ~100 px cells for 2 classes, 60 for 10, 16 for 40.
  const cell = clamp(Math.round(600 / n), 16, 100);
  const cellFont = clamp(Math.round(cell * 0.32), 6, 18);
  const tickFont = clamp(Math.round(cell * 0.4), 8, 14);
  const longest = Math.max(...vocab.map((v) => v.length), 1);
  const label = Math.ceil(longest * tickFont * 0.62) + 40;
  const names = vocab.slice();
  const trace: Trace = {
    type: "heatmap",
    z,
    x: names,
    y: names,
    text,
    texttemplate: "%{text}",
    textfont: { size: cellFont },
    colorscale,
    // Plotly's named scales run dark → light; reversed, few items are white and many dark blue, as in fastai.
    reversescale: true,
    showscale: n > 2,
    hovertemplate: "actual %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
  };
  return {
    data: [trace],
    layout: {
      title: { text: title },
      width: label + n * cell + 120,
      height: label + n * cell + 80,
      margin: { l: label, b: label, t: 60, r: 20 },
      // `type: "category"` keeps class names like "3" from being read as numbers.
      xaxis: { title: { text: "Predicted" }, type: "category", tickangle: n > 6 ? -45 : 0, tickfont: { size: tickFont }, constrain: "domain" },
      yaxis: { title: { text: "Actual" }, type: "category", autorange: "reversed", tickfont: { size: tickFont }, scaleanchor: "x" },
    },
  };
}
