/**
 * fastai's `CollabDataLoaders` (collab.py): ratings as (user, item, rating) rows, the users and
 * items made categorical with `ColumnVocab` (fastai's `Categorify`: `#na#` at 0, vocabularies from
 * the training rows only), a seeded random validation split, and batches packed as fastai packs
 * them: x = int32 [bs, 2] (user index, item index), y = float32 [bs, 1] (the rating).
 *
 * A validation row whose user or item never occurs in the training rows gets index 0 (`#na#`),
 * as in fastai; `predict` instead refuses unknown users and items (see `encodeCollabRows`).
 */
import * as path from "node:path";
import * as tf from "../engine/tf";
import { showHtml, escapeHtml } from "../display/display";
import { RandomSplitter } from "../data/items";
import { TensorDataLoader } from "../data/tensors";
import { ColumnVocab } from "../tabular/categorify";
import { column, isMissing, readCsv, type Cell, type DataFrame, type ReadCsvOptions } from "../tabular/frame";

/** Options of `CollabDataLoaders.fromDf` / `fromCsv`, with fastai's defaults. */
export interface CollabOptions {
  /** Column of the user ids (default: the first column). */
  userName?: string;
  /** Column of the items, e.g. "movieId" or "title" (default: the second column). */
  itemName?: string;
  /** Column of the ratings, numbers (default: the third column). */
  ratingName?: string;
  /** Share of the rows held out for validation (default 0.2). */
  validPct?: number;
  /** Seed of the split and of the training shuffle (default 42; fastai's is random). */
  seed?: number;
  /** Batch size (default 64). */
  bs?: number;
}

/** `CollabDataLoaders`' defaults. */
export const collabDefaults = { validPct: 0.2, seed: 42, bs: 64 } as const;

/** What `predict` needs to turn `{ user, item }` into a model input (saved in an export). */
export interface CollabInferenceSpec {
  version: 1;
  kind: "collab";
  userName: string;
  itemName: string;
  /** The user and item vocabularies (`#na#` first). */
  users: Cell[];
  items: Cell[];
  /** One number per input: the predicted rating. */
  target: { kind: "regression"; n: 1 };
  vocab: string[];
  isMultiLabel: false;
}

/** One rating to predict: the user and the item as they appear in the ratings table. */
export interface CollabRow {
  user: Cell;
  item: Cell;
}

export class CollabDataLoaders {
  readonly nInp = 1;
  readonly nTargets = 1;
  readonly targetKind = "regression";
  readonly vocab: string[] = [];
  readonly c = 1;

  private constructor(
    readonly train: TensorDataLoader,
    readonly valid: TensorDataLoader,
    /** fastai's `dls.classes`: the vocabulary of the user and of the item column. */
    readonly users: ColumnVocab,
    readonly items: ColumnVocab,
    readonly userName: string,
    readonly itemName: string,
    readonly ratingName: string,
    /** Folder of the ratings file (the learner's default `path`). */
    readonly path: string,
  ) {}

  /** fastai's `dls.classes`, by column name. */
  get classes(): Record<string, readonly Cell[]> {
    return { [this.userName]: this.users.items, [this.itemName]: this.items.items };
  }

  /** Ratings in a data frame (arquero); see `CollabOptions` for the columns and the split. */
  static fromDf(ratings: DataFrame, opts: CollabOptions = {}, where = "the ratings table"): CollabDataLoaders {
    const names = ratings.columnNames();
    const userName = opts.userName ?? names[0];
    const itemName = opts.itemName ?? names[1];
    const ratingName = opts.ratingName ?? names[2];
    if (userName === undefined || itemName === undefined || ratingName === undefined) {
      throw new Error(`CollabDataLoaders: ${where} has ${names.length} column(s) (${names.join(", ")}); it needs a user, an item and a rating column`);
    }
    const col = (name: string, role: string): Cell[] => {
      try {
        return column(ratings, name);
      } catch (e) {
        throw new Error(`CollabDataLoaders: ${role} column: ${(e as Error).message} (pass { ${role}Name: "..." })`);
      }
    };
    const users = col(userName, "user");
    const items = col(itemName, "item");
    const ratings_ = col(ratingName, "rating");
    // A CSV column with one bad cell is read as text: name that cell, not the first row.
    const asNumber = (v: Cell): number => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN);
    const y = Float32Array.from(ratings_, asNumber);
    const bad = y.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const v = ratings_[bad];
      const shown = isMissing(v) ? "a missing value" : JSON.stringify(v);
      throw new Error(`CollabDataLoaders: the rating column "${ratingName}" of ${where} must hold numbers; data row ${bad + 1} holds ${shown}`);
    }
    if (y.length === 0) throw new Error(`CollabDataLoaders: ${where} has no rows`);
    const validPct = opts.validPct ?? collabDefaults.validPct;
    const seed = opts.seed ?? collabDefaults.seed;
    const bs = opts.bs ?? collabDefaults.bs;
    const [trainIdx, validIdx] = RandomSplitter(validPct, seed)(users);
    // fastai's Categorify: vocabularies from the training rows only
    const userVocab = ColumnVocab.fromValues(trainIdx.map((i) => users[i]!));
    const itemVocab = ColumnVocab.fromValues(trainIdx.map((i) => items[i]!));
    const pack = (idx: number[]): [tf.Tensor, tf.Tensor] => {
      const x = new Int32Array(2 * idx.length);
      const t = new Float32Array(idx.length);
      idx.forEach((r, k) => {
        x[2 * k] = userVocab.encode(users[r]);
        x[2 * k + 1] = itemVocab.encode(items[r]);
        t[k] = y[r]!;
      });
      return [tf.tensor2d(x, [idx.length, 2], "int32"), tf.tensor2d(t, [idx.length, 1], "float32")];
    };
    const [xt, yt] = pack(trainIdx);
    const [xv, yv] = pack(validIdx);
    const dir = where.startsWith("/") ? path.dirname(where) : ".";
    return new CollabDataLoaders(
      new TensorDataLoader(xt, yt, { bs, shuffle: true, seed }),
      new TensorDataLoader(xv, yv, { bs, shuffle: false }),
      userVocab,
      itemVocab,
      userName,
      itemName,
      ratingName,
      dir,
    );
  }

  /** Ratings in a CSV file (read with `readCsv`); see `fromDf`. */
  static fromCsv(file: string, opts: CollabOptions & ReadCsvOptions = {}): CollabDataLoaders {
    const { userName, itemName, ratingName, validPct, seed, bs, ...csv } = opts;
    return CollabDataLoaders.fromDf(readCsv(file, csv), { userName, itemName, ratingName, validPct, seed, bs }, path.resolve(file));
  }

  /** Input rows `{ user, item }` as the model's int32 [n, 2] batch; unknown users or items throw (see `encodeCollabRows`). */
  encode(rows: readonly CollabRow[]): tf.Tensor2D {
    return encodeCollabRows(this.inferenceSpec(), rows);
  }

  /** The user, item and rating of the first `maxN` rows of a training (or, `valid`, validation) batch. */
  async batchRows(opts: { maxN?: number; valid?: boolean } = {}): Promise<{ user: Cell; item: Cell; rating: number }[]> {
    const dl = opts.valid ? this.valid : this.train;
    for await (const { xb, yb } of dl) {
      const n = Math.min(opts.maxN ?? 10, xb.shape[0] ?? 0);
      const x = (await xb.data()) as Int32Array;
      const t = (await yb.data()) as Float32Array;
      tf.dispose([xb, yb]);
      return Array.from({ length: n }, (_, k) => ({ user: this.users.decode(x[2 * k]!), item: this.items.decode(x[2 * k + 1]!), rating: t[k]! }));
    }
    return [];
  }

  /** fastai's `show_batch`: a table of user, item (e.g. the title) and rating. */
  async showBatch(opts: { maxN?: number; valid?: boolean } = {}): Promise<void> {
    const rows = await this.batchRows(opts);
    const head = [this.userName, this.itemName, this.ratingName].map((h) => `<th>${escapeHtml(h)}</th>`).join("");
    const body = rows
      .map((r) => `<tr><td>${escapeHtml(String(r.user))}</td><td>${escapeHtml(String(r.item))}</td><td>${r.rating}</td></tr>`)
      .join("");
    const text = [[this.userName, this.itemName, this.ratingName].join("\t"), ...rows.map((r) => `${r.user}\t${r.item}\t${r.rating}`)].join("\n");
    showHtml(`<table class="dataframe"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`, text);
  }

  /** What `predict` and `export` need (the vocabularies travel with the model). */
  inferenceSpec(): CollabInferenceSpec {
    return {
      version: 1,
      kind: "collab",
      userName: this.userName,
      itemName: this.itemName,
      users: this.users.toJSON(),
      items: this.items.toJSON(),
      target: { kind: "regression", n: 1 },
      vocab: [],
      isMultiLabel: false,
    };
  }
}

/** True when `spec` is a collaborative-filtering inference spec (an export of `collabLearner`). */
export function isCollabSpec(spec: unknown): spec is CollabInferenceSpec {
  return typeof spec === "object" && spec !== null && (spec as { kind?: unknown }).kind === "collab";
}

const vocabCache = new WeakMap<CollabInferenceSpec, { users: ColumnVocab; items: ColumnVocab }>();

/**
 * `{ user, item }` rows → int32 [n, 2] indices. A user or item the model was not trained on has no
 * embedding of its own (fastai would silently use `#na#`'s); here it throws, naming it.
 */
export function encodeCollabRows(spec: CollabInferenceSpec, rows: readonly unknown[]): tf.Tensor2D {
  let v = vocabCache.get(spec);
  if (!v) vocabCache.set(spec, (v = { users: ColumnVocab.fromItems(spec.users), items: ColumnVocab.fromItems(spec.items) }));
  const x = new Int32Array(2 * rows.length);
  rows.forEach((r, k) => {
    if (typeof r !== "object" || r === null || !("user" in r) || !("item" in r)) {
      throw new Error(`predict: a collaborative-filtering model takes { user, item } (a ${spec.userName} and a ${spec.itemName}); got ${JSON.stringify(r)}`);
    }
    const { user, item } = r as CollabRow;
    if (!v.users.has(user)) {
      throw new Error(`predict: unknown user ${JSON.stringify(user)}: not among the ${v.users.size - 1} values of "${spec.userName}" the model was trained on, so it has no embedding`);
    }
    if (!v.items.has(item)) {
      throw new Error(`predict: unknown item ${JSON.stringify(item)}: not among the ${v.items.size - 1} values of "${spec.itemName}" the model was trained on, so it has no embedding`);
    }
    x[2 * k] = v.users.encode(user);
    x[2 * k + 1] = v.items.encode(item);
  });
  return tf.tensor2d(x, [rows.length, 2], "int32");
}
