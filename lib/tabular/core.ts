/**
 * fastai's `TabularPandas`: a data frame, the names of its categorical, continuous and target
 * columns, procs set up on the training split, and the processed rows.
 *
 * The processed inputs are packed in one float32 matrix, one row per table row:
 * `[cat_0 … cat_{k-1}, cont_0 … cont_{m-1}]`, the categories as their vocabulary indices. The
 * `Learner` trains one input tensor, so `TabularModel` splits that matrix back into fastai's
 * `x_cat` and `x_cont`. The targets are class indices (`yBlock: "category"`) or numbers
 * (`"regression"`), one float32 per row and target.
 */
import { column, isMissing, type Cell, type DataFrame } from "./frame";
import { makeProcs, procsFromJSON, Categorify, Normalize, type ProcLike, type ProcState, type ProcTable, type TabularProc } from "./procs";
import { RandomSplitter } from "../data/items";

/** The kind of target: classes or numbers (fastai's `CategoryBlock` / `RegressionBlock`). */
export type TabularYBlock = "category" | "regression";

/** A split: training row indices, validation row indices. */
export type TabularSplits = [readonly number[], readonly number[]];

/** Options of `new TabularPandas` (fastai's arguments, camelCase). */
export interface TabularPandasOptions {
  /** Procs, run in fastai's order (default none; the lesson uses `[Categorify, FillMissing, Normalize]`). */
  procs?: readonly ProcLike[];
  /** Categorical columns (default none). */
  catNames?: readonly string[];
  /** Continuous columns (default none). */
  contNames?: readonly string[];
  /** Target column(s) (default none: a table to predict on). */
  yNames?: string | readonly string[];
  /** "category" or "regression" (default: "regression" when every target value is a number, as fastai). */
  yBlock?: TabularYBlock;
  /** Row indices `[train, valid]`, or a splitter such as `RandomSplitter(0.2)` (default: every row trains, none validates). */
  splits?: TabularSplits | ((items: readonly number[]) => number[][]);
}

/** Everything needed to process new rows as the training rows were (saved in an export). */
export interface TabularState {
  /** Categorical and continuous columns as the user named them (before `FillMissing`'s `_na` columns). */
  catNames: string[];
  contNames: string[];
  procs: ProcState[];
}

/** A row as `predict` takes it: a value per column. */
export type TabularRow = Record<string, Cell | undefined>;

/** The processed table: packed inputs and the final column names (`_na` columns included). */
export interface ProcessedRows {
  n: number;
  /** `n × (catNames.length + contNames.length)`, row-major. */
  xs: Float32Array;
  catNames: string[];
  contNames: string[];
}

/** A continuous value as a number; the error names the column, the row and the value. */
function contValue(name: string, v: Cell | undefined, row: number): Cell {
  if (isMissing(v)) return null;
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  const s = String(v).trim();
  const x = Number(s);
  if (s !== "" && Number.isFinite(x)) return x;
  throw new Error(
    `the column "${name}" is given as continuous (contNames) but row ${row} holds ${JSON.stringify(v)}, not a number; ` +
      `move "${name}" to catNames`,
  );
}

/**
 * Check and process raw columns with procs already set up (or, with `trainIdx`, set them up
 * first on those rows): the packed inputs every later step uses.
 */
export function processColumns(
  raw: Record<string, readonly (Cell | undefined)[]>,
  n: number,
  catNames: readonly string[],
  contNames: readonly string[],
  procs: readonly TabularProc[],
  trainIdx?: readonly number[],
): ProcessedRows {
  const t: ProcTable = { cols: {}, catNames: [...catNames], contNames: [...contNames] };
  for (const c of catNames) t.cols[c] = Array.from(raw[c]!, (v) => (v === undefined ? null : v));
  for (const c of contNames) t.cols[c] = Array.from(raw[c]!, (v, i) => contValue(c, v, i));
  for (const p of procs) {
    if (trainIdx) p.setup(t, trainIdx);
    p.apply(t);
  }
  const cat = t.catNames.map((c) => t.cols[c]!);
  const cont = t.contNames.map((c) => t.cols[c]!);
  if (!procs.some((p) => p instanceof Categorify) && cat.length) {
    throw new Error(`catNames (${t.catNames.join(", ")}) need the Categorify proc to become indices; add Categorify to procs`);
  }
  const w = cat.length + cont.length;
  const xs = new Float32Array(n * w);
  for (let i = 0; i < n; i++) {
    cat.forEach((col, j) => (xs[i * w + j] = col[i] as number));
    cont.forEach((col, j) => {
      const v = col[i];
      if (isMissing(v)) {
        throw new Error(`the continuous column "${t.contNames[j]}" is missing in row ${i}; add FillMissing to procs (or fill it yourself)`);
      }
      xs[i * w + cat.length + j] = v as number;
    });
  }
  return { n, xs, catNames: t.catNames, contNames: t.contNames };
}

/** Process new rows (`predict`, the server) exactly as the training rows were. */
export function processRows(state: TabularState, rows: readonly TabularRow[]): ProcessedRows {
  if (rows.length === 0) throw new Error("predict: no rows given");
  const need = [...state.catNames, ...state.contNames];
  const raw: Record<string, (Cell | undefined)[]> = {};
  rows.forEach((r, i) => {
    if (r === null || typeof r !== "object" || Array.isArray(r)) throw new Error(`predict: row ${i} must be an object of column values, e.g. { "${need[0]}": ... }`);
    const absent = need.filter((c) => !(c in r));
    if (absent.length) {
      throw new Error(`predict: row ${i} has no column ${absent.map((c) => `"${c}"`).join(", ")}; the model needs ${need.join(", ")} (null for a missing value)`);
    }
  });
  for (const c of need) raw[c] = rows.map((r) => r[c]);
  return processColumns(raw, rows.length, state.catNames, state.contNames, procsFromJSON(state.procs));
}

/** fastai's `TabularPandas`; see the module note. */
export class TabularPandas {
  readonly n: number;
  /** Categorical columns after the procs (`FillMissing`'s `_na` columns appended). */
  readonly catNames: string[];
  readonly contNames: string[];
  readonly yNames: string[];
  readonly yBlock: TabularYBlock;
  /** Class names (category targets), sorted; empty for regression. */
  readonly vocab: string[];
  readonly procs: TabularProc[];
  /** Training and validation row indices. */
  readonly splits: [number[], number[]];
  /** Packed inputs, `n × (catNames + contNames)`. */
  readonly xs: Float32Array;
  /** Targets, `n × yNames.length` (class indices or numbers). */
  readonly ys: Float32Array;
  private readonly state: TabularState;

  constructor(
    readonly df: DataFrame,
    opts: TabularPandasOptions = {},
  ) {
    const catNames = [...(opts.catNames ?? [])];
    const contNames = [...(opts.contNames ?? [])];
    this.yNames = opts.yNames === undefined ? [] : typeof opts.yNames === "string" ? [opts.yNames] : [...opts.yNames];
    const both = catNames.find((c) => contNames.includes(c));
    if (both) throw new Error(`the column "${both}" is in both catNames and contNames; pick one`);
    const asY = [...catNames, ...contNames].find((c) => this.yNames.includes(c));
    if (asY) throw new Error(`the target column "${asY}" is also an input (catNames/contNames); remove it from the inputs`);
    const raw: Record<string, Cell[]> = {};
    for (const c of [...catNames, ...contNames, ...this.yNames]) raw[c] = column(df, c);
    this.n = df.numRows();
    this.splits = resolveSplits(opts.splits, this.n);
    if (this.splits[0].length === 0) {
      throw new Error(`the training split is empty (${this.n} rows, ${this.splits[1].length} in validation); give splits with training rows, or a smaller validPct`);
    }
    this.procs = makeProcs(opts.procs ?? []);
    const done = processColumns(raw, this.n, catNames, contNames, this.procs, this.splits[0]);
    this.catNames = done.catNames;
    this.contNames = done.contNames;
    this.xs = done.xs;
    this.state = { catNames, contNames, procs: this.procs.map((p) => p.toJSON()) };
    const y = encodeTargets(this.yNames, raw, this.splits[0], opts.yBlock);
    this.yBlock = y.block;
    this.vocab = y.vocab;
    this.ys = y.ys;
  }

  /** Inputs per row: `catNames.length + contNames.length`. */
  get width(): number {
    return this.catNames.length + this.contNames.length;
  }

  /** Vocabulary sizes of the categorical columns (`#na#` included), for the embeddings. */
  get cardinalities(): number[] {
    const cat = this.procs.find((p): p is Categorify => p instanceof Categorify);
    return this.catNames.map((c) => cat!.vocabs[c]!.size);
  }

  /**
   * The rows of a split as plain arrays, for libraries outside tfjs (mljs' trees): `xs` one array of
   * `catNames` indices then `contNames` values per row, `ys` the targets (class indices or the first target).
   */
  arrays(split: "train" | "valid"): { xs: number[][]; ys: number[] } {
    const idx = this.splits[split === "train" ? 0 : 1];
    const w = this.width;
    const ny = Math.max(1, this.yNames.length);
    return { xs: idx.map((i) => Array.from(this.xs.subarray(i * w, (i + 1) * w))), ys: idx.map((i) => this.ys[i * ny] ?? NaN) };
  }

  /** What new rows need to be processed as these were (`predict`, export). */
  tabularState(): TabularState {
    return structuredClone(this.state);
  }

  /** Row `i` decoded back to values: categories from their vocabularies, continuous values un-normalised, the target. */
  decodeRow(i: number, xs: ArrayLike<number> = this.xs.subarray(i * this.width, (i + 1) * this.width), y?: ArrayLike<number>): Record<string, Cell> {
    const cat = this.procs.find((p): p is Categorify => p instanceof Categorify);
    const norm = this.procs.find((p): p is Normalize => p instanceof Normalize);
    const out: Record<string, Cell> = {};
    this.catNames.forEach((c, j) => (out[c] = cat!.vocabs[c]!.decode(xs[j]!)));
    this.contNames.forEach((c, j) => {
      const v = xs[this.catNames.length + j]!;
      out[c] = norm ? norm.decode(c, v) : v;
    });
    const ys = y ?? this.ys.subarray(i * this.yNames.length, (i + 1) * this.yNames.length);
    if (ys.length === this.yNames.length) this.yNames.forEach((c, j) => (out[c] = this.yBlock === "category" ? this.vocab[ys[j]!]! : ys[j]!));
    return out;
  }
}

function resolveSplits(splits: TabularPandasOptions["splits"], n: number): [number[], number[]] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (splits === undefined) return [all, []];
  const got = typeof splits === "function" ? splits(all) : splits;
  if (!Array.isArray(got) || got.length !== 2) throw new Error("splits must be [trainIdx, validIdx] (two lists of row indices) or a splitter such as RandomSplitter(0.2)");
  const [train, valid] = got.map((s) => [...s]) as [number[], number[]];
  const bad = [...train, ...valid].find((i) => !Number.isInteger(i) || i < 0 || i >= n);
  if (bad !== undefined) throw new Error(`splits hold the row index ${bad}, but the table has rows 0 to ${n - 1}`);
  return [train, valid];
}

/** Targets as numbers: class indices of the sorted training classes, or the values themselves. */
function encodeTargets(
  yNames: readonly string[],
  raw: Record<string, Cell[]>,
  trainIdx: readonly number[],
  yBlock: TabularYBlock | undefined,
): { block: TabularYBlock; vocab: string[]; ys: Float32Array } {
  const cols = yNames.map((c) => raw[c]!);
  cols.forEach((col, j) => {
    const miss = col.findIndex(isMissing);
    if (miss >= 0) {
      const count = col.filter(isMissing).length;
      throw new Error(`the target column "${yNames[j]}" has ${count} missing value(s), the first in row ${miss}; drop those rows before training`);
    }
  });
  const numeric = cols.every((col) => col.every((v) => typeof v === "number"));
  const block = yBlock ?? (numeric ? "regression" : "category");
  if (block !== "category" && block !== "regression") throw new Error(`yBlock must be "category" or "regression", got ${JSON.stringify(yBlock)}`);
  const n = cols[0]?.length ?? 0;
  const ys = new Float32Array(n * yNames.length);
  if (block === "regression") {
    cols.forEach((col, j) =>
      col.forEach((v, i) => {
        if (typeof v !== "number") throw new Error(`the target column "${yNames[j]}" is regression but row ${i} holds ${JSON.stringify(v)}; use yBlock: "category"`);
        ys[i * yNames.length + j] = v;
      }),
    );
    return { block, vocab: [], ys };
  }
  if (yNames.length > 1) throw new Error(`a category target is one column; yNames has ${yNames.length} (${yNames.join(", ")})`);
  const col = cols[0] ?? [];
  const seen = [...new Map(trainIdx.map((i) => [String(col[i]), col[i]!])).values()];
  const allNumbers = seen.every((v) => typeof v === "number");
  const vocab = seen.sort(allNumbers ? (a, b) => (a as number) - (b as number) : undefined).map(String);
  if (!allNumbers) vocab.sort();
  const index = new Map(vocab.map((v, i) => [v, i]));
  col.forEach((v, i) => {
    const k = index.get(String(v));
    if (k === undefined) {
      throw new Error(`the target column "${yNames[0]}" holds ${JSON.stringify(v)} in row ${i}, a class absent from the training rows (${vocab.join(", ")}); change the split`);
    }
    ys[i] = k;
  });
  return { block, vocab, ys };
}

export { RandomSplitter };
