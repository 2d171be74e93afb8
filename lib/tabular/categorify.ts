/**
 * fastai's `Categorify` for one column: the vocabulary comes from the training rows only, `#na#`
 * is index 0, and a missing or unseen value maps to 0. Shared by tables and by collaborative
 * filtering (users and items are categorical columns).
 */
import { isMissing, type Cell } from "./frame";

export const NA_TOKEN = "#na#";

/** The key a value is counted under: numbers and strings that print the same are one category. */
function keyOf(v: Cell): string {
  return String(v);
}

export class ColumnVocab {
  /** `#na#` then the categories, sorted (numerically when all are numbers, as fastai's CategoryMap). */
  readonly items: readonly Cell[];
  private readonly index = new Map<string, number>();

  private constructor(items: Cell[]) {
    this.items = items;
    items.forEach((v, i) => {
      if (i > 0) this.index.set(keyOf(v), i);
    });
  }

  /** Build from the training values of the column (missing values are not categories). */
  static fromValues(values: readonly Cell[]): ColumnVocab {
    const seen = new Map<string, Cell>();
    for (const v of values) if (!isMissing(v) && !seen.has(keyOf(v))) seen.set(keyOf(v), v);
    const cats = [...seen.values()];
    const allNumbers = cats.every((v) => typeof v === "number");
    cats.sort(allNumbers ? (a, b) => (a as number) - (b as number) : (a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
    return new ColumnVocab([NA_TOKEN, ...cats]);
  }

  /** Rebuild from an exported list (`toJSON`); the first item must be `#na#`. */
  static fromItems(items: readonly Cell[]): ColumnVocab {
    if (items[0] !== NA_TOKEN) throw new Error(`a category vocabulary starts with "${NA_TOKEN}"; this one starts with ${JSON.stringify(items[0])}`);
    return new ColumnVocab([...items]);
  }

  get size(): number {
    return this.items.length;
  }

  /** Index of a value: 0 for missing or unseen values. */
  encode(v: Cell | undefined): number {
    if (v === undefined || isMissing(v)) return 0;
    return this.index.get(keyOf(v)) ?? 0;
  }

  /** True when `v` is one of the categories (not missing, not unseen). */
  has(v: Cell | undefined): boolean {
    return v !== undefined && !isMissing(v) && this.index.has(keyOf(v));
  }

  decode(i: number): Cell {
    const v = this.items[i];
    if (v === undefined) throw new Error(`category index ${i} is outside the vocabulary (size ${this.items.length})`);
    return v;
  }

  toJSON(): Cell[] {
    return [...this.items];
  }
}
