/**
 * fastai's `TabularDataLoaders` (`from_df`, `from_csv`, `show_batch`) and the inference side of
 * tables: `inferenceSpec()` records the procs' state (vocabularies, medians, means and stds) so an
 * export can process a raw row as the training rows were, and `prepareTabularRows` does it.
 */
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { escapeHtml, showHtml, inKernel } from "../display/display";
import { TensorDataLoader } from "../data/tensors";
import { RandomSplitter } from "../data/items";
import { readCsv, type Cell, type DataFrame, type ReadCsvOptions } from "./frame";
import { processRows, TabularPandas, type TabularPandasOptions, type TabularRow, type TabularState, type TabularYBlock } from "./core";

/** The inference spec of a table (`dls.inferenceSpec()`), saved by `export`. */
export interface TabularInferenceSpec extends TabularState {
  version: 1;
  kind: "tabular";
  yNames: string[];
  vocab: string[];
  isMultiLabel: false;
  /** Regression: the number of targets (classes otherwise). */
  target?: { kind: "regression"; n: number };
}

/** True when an inference spec is a table's. */
export function isTabularSpec(spec: unknown): spec is TabularInferenceSpec {
  return !!spec && typeof spec === "object" && (spec as { kind?: unknown }).kind === "tabular";
}

/** Raw rows → the packed model input `[n, nCat + nCont]` (caller disposes); errors name a missing column or a bad value. */
export async function prepareTabularRows(spec: TabularInferenceSpec, rows: readonly TabularRow[]): Promise<tf.Tensor2D> {
  await ready();
  const done = processRows(spec, rows);
  return tf.tensor2d(done.xs, [done.n, done.catNames.length + done.contNames.length], "float32");
}

/** Options of `TabularDataLoaders.fromDf` / `fromCsv` (fastai's, camelCase). */
export interface TabularDataLoadersOptions extends Omit<TabularPandasOptions, "splits"> {
  /** Validation row indices (default: a random 20 %, `RandomSplitter(0.2, seed)`). */
  validIdx?: readonly number[];
  /** Batch size (default 64). */
  bs?: number;
  /** Seed of the split and of the shuffle (default 42). */
  seed?: number;
  /** Folder for the learner's checkpoints (default "."). */
  path?: string;
}

/** Defaults of `TabularDataLoaders`. */
export const tabularDefaults = { bs: 64, validPct: 0.2, seed: 42 } as const;

/** Options of `showBatch`. */
export interface ShowBatchOptions {
  /** Rows shown (default 10). */
  maxN?: number;
  /** Rows of the validation set instead of a shuffled training batch (default false). */
  valid?: boolean;
}

/** fastai's `TabularDataLoaders`: the training rows shuffled in batches (last partial batch dropped), the validation rows in order. */
export class TabularDataLoaders {
  readonly train: TensorDataLoader;
  readonly valid: TensorDataLoader;
  readonly vocab?: string[];
  readonly c: number;
  readonly targetKind: TabularYBlock;
  readonly path: string;

  constructor(
    readonly to: TabularPandas,
    opts: { bs?: number; seed?: number; path?: string } = {},
  ) {
    const bs = opts.bs ?? tabularDefaults.bs;
    const [trn, val] = to.splits;
    const pick = (idx: readonly number[]) => {
      const x = tf.tensor2d(gatherRows(to.xs, to.width, idx), [idx.length, to.width], "float32");
      const ny = to.yNames.length;
      const y = to.yBlock === "category" ? tf.tensor1d(gatherRows(to.ys, 1, idx), "float32") : tf.tensor2d(gatherRows(to.ys, ny, idx), [idx.length, ny], "float32");
      return [x, y] as const;
    };
    if (to.yNames.length === 0) throw new Error("TabularDataLoaders need a target: give yNames");
    const [xt, yt] = pick(trn);
    const [xv, yv] = pick(val);
    this.train = new TensorDataLoader(xt, yt, { bs, shuffle: true, seed: opts.seed ?? tabularDefaults.seed, dropLast: trn.length > bs });
    this.valid = new TensorDataLoader(xv, yv, { bs, shuffle: false });
    this.targetKind = to.yBlock;
    if (to.yBlock === "category") this.vocab = to.vocab;
    this.c = to.yBlock === "category" ? to.vocab.length : to.yNames.length;
    this.path = opts.path ?? ".";
  }

  /** fastai's `TabularDataLoaders.from_df`: a `TabularPandas` over `df`, then the loaders. */
  static fromDf(df: DataFrame, opts: TabularDataLoadersOptions = {}): TabularDataLoaders {
    const { validIdx, bs, seed, path, ...rest } = opts;
    const s = seed ?? tabularDefaults.seed;
    let splits: TabularPandasOptions["splits"] = RandomSplitter(tabularDefaults.validPct, s);
    if (validIdx) {
      const valid = new Set(validIdx);
      splits = [Array.from({ length: df.numRows() }, (_, i) => i).filter((i) => !valid.has(i)), [...valid]];
    }
    return new TabularDataLoaders(new TabularPandas(df, { ...rest, splits }), { bs, seed: s, path });
  }

  /** fastai's `TabularDataLoaders.from_csv`: `readCsv(csv)`, then `fromDf`. */
  static fromCsv(csv: string, opts: TabularDataLoadersOptions & { csv?: ReadCsvOptions } = {}): TabularDataLoaders {
    const { csv: csvOpts, ...rest } = opts;
    return TabularDataLoaders.fromDf(readCsv(csv, csvOpts), rest);
  }

  /** What export and `predict` need to process raw rows. */
  inferenceSpec(): TabularInferenceSpec {
    const to = this.to;
    return {
      version: 1,
      kind: "tabular",
      ...to.tabularState(),
      yNames: [...to.yNames],
      vocab: [...to.vocab],
      isMultiLabel: false,
      ...(to.yBlock === "regression" ? { target: { kind: "regression" as const, n: to.yNames.length } } : {}),
    };
  }

  /** Decoded rows of one batch: categories as values, continuous columns un-normalised, the target. */
  async oneBatchRows(opts: ShowBatchOptions = {}): Promise<Record<string, Cell>[]> {
    const dl = opts.valid ? this.valid : this.train;
    const maxN = opts.maxN ?? 10;
    for await (const { xb, yb } of dl) {
      const [x, y] = [(await xb.data()) as Float32Array, (await yb.data()) as Float32Array];
      tf.dispose([xb, yb]);
      const n = Math.min(maxN, xb.shape[0]!);
      const w = this.to.width;
      const ny = this.to.yNames.length;
      return Array.from({ length: n }, (_, i) => this.to.decodeRow(-1, x.subarray(i * w, (i + 1) * w), y.subarray(i * ny, (i + 1) * ny)));
    }
    return [];
  }

  /** fastai's `show_batch`: one batch as an HTML table of decoded values (returned too, for use outside a notebook). */
  async showBatch(opts: ShowBatchOptions = {}): Promise<string> {
    const rows = await this.oneBatchRows(opts);
    const names = [...this.to.catNames, ...this.to.contNames, ...this.to.yNames];
    const fmt = (v: Cell) => (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4).replace(/\.?0+$/, "") : String(v));
    const head = names.map((n) => `<th>${escapeHtml(n)}</th>`).join("");
    const body = rows.map((r) => `<tr>${names.map((n) => `<td>${escapeHtml(fmt(r[n]!))}</td>`).join("")}</tr>`).join("\n");
    const html = `<table class="dataframe"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
    if (inKernel()) showHtml(html, rows.map((r) => names.map((n) => fmt(r[n]!)).join("\t")).join("\n"));
    return html;
  }

  /** Free the tensors of both loaders. */
  dispose(): void {
    tf.dispose([this.train.x, this.train.y, this.valid.x, this.valid.y]);
  }
}

function gatherRows(src: Float32Array, w: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * w);
  idx.forEach((r, k) => out.set(src.subarray(r * w, (r + 1) * w), k * w));
  return out;
}
