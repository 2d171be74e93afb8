/**
 * fastai's tabular procs (`tabular/core.py`): `FillMissing`, `Categorify`, `Normalize`. Each is set
 * up on the training rows only, then applied to every row (training, validation, and rows given to
 * `predict` later), and its state is plain JSON so an export carries it.
 *
 * They run in fastai's order whatever order they are given in (fastai sorts procs by `order`):
 *   1. `FillMissing` (order 0): a missing continuous value becomes the training median; a column
 *      with missing training values gains a boolean `<name>_na` column, added to the categoricals;
 *   2. `Categorify` (order 1): each categorical (the `_na` columns too) becomes its index in a
 *      `ColumnVocab` of the training values, `#na#` = 0 for missing and unseen values;
 *   3. `Normalize` (order 99): (x − mean) / (std + 1e-7), training mean and population std (ddof 0).
 *
 * One difference from fastai: a continuous column with no missing training value still gets a
 * median, so a missing value there at `predict` time is filled instead of reaching the model as NaN.
 */
import { ColumnVocab } from "./categorify";
import { isMissing, type Cell } from "./frame";
import { Normalize as ImageNormalize } from "../data/augment";

/** The working table the procs read and write: columns by name, and which are categorical / continuous. */
export interface ProcTable {
  cols: Record<string, Cell[]>;
  catNames: string[];
  contNames: string[];
}

/** A proc's state as saved in an export. */
export type ProcState =
  | { name: "FillMissing"; medians: Record<string, number>; naCols: string[] }
  | { name: "Categorify"; vocabs: Record<string, Cell[]> }
  | { name: "Normalize"; means: Record<string, number>; stds: Record<string, number> };

/** A tabular proc: `setup` learns from the training rows, `apply` transforms a table in place. */
export interface TabularProc {
  readonly name: ProcState["name"];
  /** fastai's `order`: procs run sorted by it. */
  readonly order: number;
  setup(t: ProcTable, trainIdx: readonly number[]): void;
  apply(t: ProcTable): void;
  toJSON(): ProcState;
}

/** The suffix of the boolean column `FillMissing` adds for a column with missing values. */
export const NA_SUFFIX = "_na";

function trainValues(t: ProcTable, name: string, trainIdx: readonly number[]): Cell[] {
  const col = t.cols[name]!;
  return trainIdx.map((i) => col[i]!);
}

/** pandas' median: the middle value, or the mean of the two middle values (missing values skipped). */
export function median(values: readonly Cell[]): number {
  const xs = values.filter((v) => !isMissing(v)).map(Number).sort((a, b) => a - b);
  if (xs.length === 0) return NaN;
  const m = xs.length >> 1;
  return xs.length % 2 ? xs[m]! : (xs[m - 1]! + xs[m]!) / 2;
}

/** fastai's `FillMissing(fill_strategy=median, add_col=True)`; see the module note. */
export class FillMissing implements TabularProc {
  readonly name = "FillMissing" as const;
  readonly order = 0;
  medians: Record<string, number> = {};
  naCols: string[] = [];

  static fromJSON(s: Extract<ProcState, { name: "FillMissing" }>): FillMissing {
    const p = new FillMissing();
    p.medians = { ...s.medians };
    p.naCols = [...s.naCols];
    return p;
  }

  setup(t: ProcTable, trainIdx: readonly number[]): void {
    this.medians = {};
    this.naCols = [];
    for (const c of t.contNames) {
      const vals = trainValues(t, c, trainIdx);
      const m = median(vals);
      if (Number.isNaN(m)) throw new Error(`FillMissing: the continuous column "${c}" has no value in the training rows; drop it or fill it first`);
      this.medians[c] = m;
      if (vals.some(isMissing)) this.naCols.push(c);
    }
  }

  apply(t: ProcTable): void {
    for (const c of t.contNames) {
      const col = t.cols[c]!;
      const m = this.medians[c];
      if (m === undefined) throw new Error(`FillMissing was set up without the column "${c}"`);
      if (this.naCols.includes(c)) {
        const na = `${c}${NA_SUFFIX}`;
        t.cols[na] = col.map((v) => isMissing(v));
        if (!t.catNames.includes(na)) t.catNames.push(na);
      }
      t.cols[c] = col.map((v) => (isMissing(v) ? m : v));
    }
  }

  toJSON(): ProcState {
    return { name: this.name, medians: { ...this.medians }, naCols: [...this.naCols] };
  }
}

/** fastai's `Categorify`: each categorical column becomes indices into its training vocabulary. */
export class Categorify implements TabularProc {
  readonly name = "Categorify" as const;
  readonly order = 1;
  vocabs: Record<string, ColumnVocab> = {};

  static fromJSON(s: Extract<ProcState, { name: "Categorify" }>): Categorify {
    const p = new Categorify();
    for (const [k, items] of Object.entries(s.vocabs)) p.vocabs[k] = ColumnVocab.fromItems(items);
    return p;
  }

  setup(t: ProcTable, trainIdx: readonly number[]): void {
    this.vocabs = {};
    for (const c of t.catNames) this.vocabs[c] = ColumnVocab.fromValues(trainValues(t, c, trainIdx));
  }

  apply(t: ProcTable): void {
    for (const c of t.catNames) {
      const v = this.vocabs[c];
      if (!v) throw new Error(`Categorify was set up without the column "${c}"`);
      t.cols[c] = t.cols[c]!.map((x) => v.encode(x));
    }
  }

  toJSON(): ProcState {
    const vocabs: Record<string, Cell[]> = {};
    for (const [k, v] of Object.entries(this.vocabs)) vocabs[k] = v.toJSON();
    return { name: this.name, vocabs };
  }
}

/** fastai's tabular `Normalize`: training mean and population std (+1e-7) of each continuous column. */
export class Normalize implements TabularProc {
  readonly name = "Normalize" as const;
  readonly order = 99;
  means: Record<string, number> = {};
  stds: Record<string, number> = {};

  static fromJSON(s: Extract<ProcState, { name: "Normalize" }>): Normalize {
    const p = new Normalize();
    p.means = { ...s.means };
    p.stds = { ...s.stds };
    return p;
  }

  setup(t: ProcTable, trainIdx: readonly number[]): void {
    this.means = {};
    this.stds = {};
    for (const c of t.contNames) {
      const xs = trainValues(t, c, trainIdx).map(Number);
      if (xs.some((x) => Number.isNaN(x))) throw new Error(`Normalize: the continuous column "${c}" has missing values; put FillMissing before Normalize in procs`);
      // 1. mean; 2. population variance (ddof 0, as fastai); 3. std + 1e-7 so a constant column divides safely
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
      this.means[c] = mean;
      this.stds[c] = Math.sqrt(variance) + 1e-7;
    }
  }

  apply(t: ProcTable): void {
    for (const c of t.contNames) {
      const m = this.means[c];
      const s = this.stds[c];
      if (m === undefined || s === undefined) throw new Error(`Normalize was set up without the column "${c}"`);
      t.cols[c] = t.cols[c]!.map((v) => (isMissing(v) ? v : (Number(v) - m) / s));
    }
  }

  /**
   * The raw value of a normalised one (for `showBatch` and `predict`'s row). The normalised value was
   * stored as float32, so the result is rounded to float32's 7 significant digits: 36 comes back as
   * 36, not 35.99999943.
   */
  decode(c: string, v: number): number {
    return Number((v * this.stds[c]! + this.means[c]!).toPrecision(7));
  }

  toJSON(): ProcState {
    return { name: this.name, means: { ...this.means }, stds: { ...this.stds } };
  }
}

/**
 * What `procs` accepts: the classes (as in fastai, `[Categorify, FillMissing, Normalize]`) or
 * instances. tsfast's image `Normalize` is accepted too and means this one, as fastai's one
 * `Normalize` serves both.
 */
export type ProcLike = TabularProc | (new () => TabularProc) | typeof ImageNormalize;

/** Instances of `procs`, sorted by fastai's `order`. */
export function makeProcs(procs: readonly ProcLike[]): TabularProc[] {
  const made = procs.map((p, i) => {
    const inst = p === ImageNormalize ? new Normalize() : typeof p === "function" ? new p() : (p as TabularProc);
    if (!inst || typeof inst.setup !== "function" || typeof inst.apply !== "function") {
      throw new Error(`procs[${i}] is not a tabular proc; use Categorify, FillMissing or Normalize`);
    }
    return inst;
  });
  const names = made.map((p) => p.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`procs lists ${twice} twice`);
  return made.sort((a, b) => a.order - b.order);
}

/** Procs rebuilt from their exported states. */
export function procsFromJSON(states: readonly ProcState[]): TabularProc[] {
  return states.map((s) => {
    switch (s.name) {
      case "FillMissing":
        return FillMissing.fromJSON(s);
      case "Categorify":
        return Categorify.fromJSON(s);
      case "Normalize":
        return Normalize.fromJSON(s);
      default:
        throw new Error(`unknown tabular proc ${JSON.stringify((s as { name?: unknown }).name)} in the export`);
    }
  });
}
