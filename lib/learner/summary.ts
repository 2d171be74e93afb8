/**
 * `modelSummary`: fastai's `learn.summary()` as text — every layer with its output shape, its
 * parameter count, whether it trains now, and its parameter group; then the totals.
 */
import * as tf from "../engine/tf";

/** Options of `modelSummary`. */
export interface SummaryOptions {
  /** Also list layers without parameters (pads, ReLUs, adds) (default false: fewer lines). */
  allLayers?: boolean;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function shapeOf(layer: tf.layers.Layer): string {
  let s: unknown;
  try {
    s = layer.outputShape;
  } catch {
    return "?";
  }
  const one = (x: unknown) => `[${(x as (number | null)[]).map((d) => (d === null ? "bs" : String(d))).join(", ")}]`;
  if (Array.isArray(s) && Array.isArray(s[0])) return (s as unknown[]).map(one).join(" ");
  return one(s);
}

function size(w: tf.LayerVariable): number {
  return w.shape.reduce((x: number, y) => x * (y ?? 1), 1);
}

/** Parameters as PyTorch counts them: BatchNorm running statistics are buffers, not parameters. */
function paramCount(layer: tf.layers.Layer): number {
  return layer.weights.filter((w) => !/moving_(mean|variance)/.test(w.originalName)).reduce((a, w) => a + size(w), 0);
}

/**
 * A text table of `model`'s layers (name, type, output shape, parameters, trainable, group) and
 * totals of trainable and frozen parameters per group; `groups` is the learner's splitter output.
 */
export function modelSummary(model: tf.LayersModel, groups?: tf.layers.Layer[][], opts: SummaryOptions = {}): string {
  const groupOf = new Map<tf.layers.Layer, number>();
  groups?.forEach((g, i) => g.forEach((l) => groupOf.set(l, i)));
  const rows: string[][] = [["Layer", "Type", "Output Shape", "Param #", "Trainable", "Group"]];
  let total = 0;
  let trainable = 0;
  const perGroup = new Map<number, { n: number; t: number }>();
  // a module whose parameters live in holder layers, one per parameter group (models/awd-lstm.ts), is listed by its holders
  const listed = model.layers.flatMap((l) => {
    const h = (l as unknown as { holders?: tf.layers.Layer[] }).holders;
    return Array.isArray(h) && h.length ? h : [l];
  });
  for (const layer of listed) {
    const n = paramCount(layer);
    // a layer trains when it is trainable and has trainable weights (frozen BN stats never train)
    const tn = layer.trainable ? layer.trainableWeights.reduce((a, w) => a + size(w), 0) : 0;
    total += n;
    trainable += tn;
    const g = groupOf.get(layer);
    if (g !== undefined) {
      const pg = perGroup.get(g) ?? { n: 0, t: 0 };
      pg.n += n;
      pg.t += tn;
      perGroup.set(g, pg);
    }
    if (n === 0 && !opts.allLayers) continue;
    rows.push([layer.name, layer.getClassName(), shapeOf(layer), fmt(n), n === 0 ? "" : tn > 0 ? "True" : "False", g === undefined ? "" : String(g)]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((v, c) => (c === 3 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join("  ").trimEnd();
  const rule = "=".repeat(widths.reduce((a, b) => a + b + 2, -2));
  const inShape = model.inputs.map((t) => `[${t.shape.map((d) => (d === null ? "bs" : d)).join(", ")}]`).join(", ");
  const out = [`${model.name} (input shape: ${inShape})`, rule, line(rows[0]!), rule, ...rows.slice(1).map(line), rule];
  out.push(`Total params: ${fmt(total)}`);
  out.push(`Total trainable params: ${fmt(trainable)}`);
  out.push(`Total non-trainable params: ${fmt(total - trainable)}`);
  if (groups) {
    out.push("");
    const frozen: number[] = [];
    groups.forEach((_, i) => {
      const pg = perGroup.get(i) ?? { n: 0, t: 0 };
      const state = pg.n === 0 ? "no parameters" : pg.t === pg.n ? "trainable" : pg.t === 0 ? "frozen" : `frozen except ${fmt(pg.t)} (BatchNorm)`;
      if (pg.n > 0 && pg.t < pg.n) frozen.push(i);
      out.push(`Group ${i}: ${fmt(pg.n)} params, ${state}`);
    });
    out.push(frozen.length ? `Model frozen up to parameter group #${Math.max(...frozen) + 1}` : "Model unfrozen");
  }
  return out.join("\n");
}
