/**
 * fastai's `TextDataLoaders` (`from_folder`, `from_df`, `from_csv`, `show_batch`) and the classifier's
 * `SortedDL` with `pad_input_chunk`; the inference side of text (`inferenceSpec`, `prepareTextInputs`).
 *
 * Texts are read as UTF-8 (bytes that are not become U+FFFD and are counted in one warning), empty texts are
 * skipped with one warning, tokenized with fastai's rules (`Tokenizer`, cached on disk per corpus), and
 * numericalized over the training texts' vocabulary (or a given one, e.g. the language model's).
 *   - `isLm`: the documents become `LMDataLoader` streams (targets = the next token); `vocab` are the tokens.
 *   - classifier: `SortedDL` batches of similar lengths, padded with `xxpad` (id 1) as `pad_input_chunk`:
 *     whole `seqLen` chunks of padding first, the text, then the remainder (so every text starts on a chunk
 *     boundary, which `AwdLstmClassifierEncoder` relies on). `vocab` are the classes, `textVocab` the tokens.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { escapeHtml, inKernel, showHtml } from "../display/display";
import { sortVocab } from "../data/blocks";
import { getFiles, GrandparentSplitter, parentLabel, RandomSplitter, truthy } from "../data/items";
import { Rng } from "../data/random";
import { column, readCsv, type DataFrame } from "../tabular/frame";
import { PredictInputError } from "../learner/predict";
import { LMDataLoader, lmLoaderDefaults } from "./lm-loader";
import { Numericalize, Tokenizer, type TokenizerOptions, type VocabOptions } from "./tokenize";
import { textRuleRefs, textRulesByRef, type TextRuleRef } from "./rules";

/** `TextDataLoaders`' defaults (fastai's). */
export const textDataDefaults = { bs: 64, seqLen: lmLoaderDefaults.seqLen, seed: 42, padIdx: 1 } as const;

// ---------------------------------------------------------------- reading

/** Bytes → text as UTF-8; bytes that are not UTF-8 become U+FFFD, and `replaced` counts them (a real U+FFFD in the file is not counted). */
export function decodeUtf8(bytes: Uint8Array): { text: string; replaced: number } {
  let text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let inText = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0xfffd) inText++;
  let genuine = 0;
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xef && bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) genuine++;
  return { text, replaced: inText - genuine };
}

/** Indices of the files under `dir/train/` and under `dir/valid/`, at any depth (`train/x.txt` as well as `train/pos/x.txt`). */
function topFolderSplit(dir: string, files: readonly string[], train: string, valid: string): [number[], number[]] {
  const top = files.map((f) => path.relative(dir, f).split(path.sep)[0]);
  const pick = (name: string) => top.flatMap((t, i) => (t === name ? [i] : []));
  return [pick(train), pick(valid)];
}

/** One warning for the texts that had bytes that are not UTF-8. */
function warnReplaced(bad: { name: string; replaced: number }[]): void {
  if (!bad.length) return;
  const total = bad.reduce((s, b) => s + b.replaced, 0);
  console.warn(
    `tsfast: ${bad.length} text${bad.length > 1 ? "s" : ""} had bytes that are not UTF-8 (${total} replaced with U+FFFD), e.g. ${bad[0]!.name}; ` +
      `convert ${bad.length > 1 ? "them" : "it"} to UTF-8 (iconv -f latin1 -t utf-8) to keep those characters`,
  );
}

/** Drop empty (blank) texts with one warning; returns the indices kept. */
function dropEmpty(texts: readonly string[], names: (i: number) => string): number[] {
  const keep: number[] = [];
  const empty: number[] = [];
  texts.forEach((t, i) => (t.trim() === "" ? empty : keep).push(i));
  if (empty.length) {
    const shown = empty.slice(0, 3).map(names).join(", ");
    console.warn(`tsfast: skipped ${empty.length} empty text${empty.length > 1 ? "s" : ""} (${shown}${empty.length > 3 ? ", ..." : ""})`);
  }
  return keep;
}

// ---------------------------------------------------------------- the classifier loader

/** fastai's `pad_input_chunk`: each doc padded to the longest with `padIdx`, whole `seqLen` chunks of it first (`padFirst`), the remainder after. */
export function padInputChunk(docs: readonly Int32Array[], opts: { padIdx?: number; padFirst?: boolean; seqLen?: number } = {}): { data: Int32Array; len: number } {
  const padIdx = opts.padIdx ?? textDataDefaults.padIdx;
  const padFirst = opts.padFirst ?? true;
  const seqLen = opts.seqLen ?? textDataDefaults.seqLen;
  const len = Math.max(...docs.map((d) => d.length));
  const data = new Int32Array(docs.length * len).fill(padIdx);
  docs.forEach((d, r) => {
    const l = len - d.length;
    const chunk = Math.floor(l / seqLen) * seqLen;
    data.set(d, r * len + (padFirst ? chunk : 0));
  });
  return { data, len };
}

/** Options of `SortedDL`. */
export interface SortedDLOptions {
  /** Texts per batch (default 64). */
  bs?: number;
  /** Shuffle as fastai's `SortedDL.shuffle_fn` (default false: longest first). */
  shuffle?: boolean;
  /** Drop the last partial batch (default: with `shuffle`). */
  dropLast?: boolean;
  /** Chunk size of the padding (default 72). */
  seqLen?: number;
  /** Id of `xxpad` (default 1). */
  padIdx?: number;
  /** Seed of the shuffles (default 42). */
  seed?: number;
}

/**
 * fastai's `SortedDL` over numericalized texts and their class indices: batches of similar lengths.
 *   - in order (validation): every text by length, longest first;
 *   - shuffled (training), as `shuffle_fn`: a random permutation with the longest text moved first, sorted by
 *     length (longest first) inside chunks of 50 batches, cut into batches, and all batches but the first (which
 *     holds the longest text, so memory runs out at once if it will) and the last shuffled.
 * Each batch is `padInputChunk`'s [b, longest] int32 `xb` with int32 labels `yb` [b].
 */
export class SortedDL implements AsyncIterable<{ xb: tf.Tensor2D; yb: tf.Tensor1D }> {
  readonly bs: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seqLen: number;
  readonly padIdx: number;
  private readonly rng: Rng;
  private readonly lengths: number[];
  private readonly idxMax: number;

  constructor(readonly docs: readonly Int32Array[], readonly labels: Int32Array, opts: SortedDLOptions = {}) {
    this.bs = opts.bs ?? textDataDefaults.bs;
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? this.shuffle;
    this.seqLen = opts.seqLen ?? textDataDefaults.seqLen;
    this.padIdx = opts.padIdx ?? textDataDefaults.padIdx;
    this.rng = new Rng(opts.seed ?? textDataDefaults.seed);
    this.lengths = docs.map((d) => d.length);
    this.idxMax = this.lengths.reduce((best, l, i) => (l > this.lengths[best]! ? i : best), 0);
  }

  /** Texts. */
  get n(): number {
    return this.docs.length;
  }
  /** Batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.n / this.bs) : Math.ceil(this.n / this.bs);
  }
  /** The items in prediction order (unshuffled: longest first). */
  get items(): readonly Int32Array[] {
    return this.order(false).map((i) => this.docs[i]!);
  }

  private byLength = (a: number, b: number): number => this.lengths[b]! - this.lengths[a]!;

  /** The order of the texts for an epoch (shuffled as fastai's `shuffle_fn` when `shuffle`). */
  order(shuffle = this.shuffle): number[] {
    const all = this.docs.map((_, i) => i);
    if (!shuffle) return all.sort(this.byLength);
    const idxs = this.rng.permutation(this.n);
    const at = idxs.indexOf(this.idxMax);
    [idxs[0], idxs[at]] = [idxs[at]!, idxs[0]!];
    const sz = this.bs * 50;
    const sorted: number[] = [];
    for (let i = 0; i < idxs.length; i += sz) sorted.push(...idxs.slice(i, i + sz).sort(this.byLength));
    const batches: number[][] = [];
    for (let i = 0; i < sorted.length; i += this.bs) batches.push(sorted.slice(i, i + this.bs));
    if (batches.length <= 2) return batches.flat();
    const middle = batches.slice(1, -1);
    const perm = this.rng.permutation(middle.length);
    return [batches[0]!, ...perm.map((k) => middle[k]!), batches[batches.length - 1]!].flat();
  }

  /** One batch of the given texts, padded. */
  batch(idxs: readonly number[]): { xb: tf.Tensor2D; yb: tf.Tensor1D } {
    const { data, len } = padInputChunk(idxs.map((i) => this.docs[i]!), { padIdx: this.padIdx, seqLen: this.seqLen });
    return { xb: tf.tensor2d(data, [idxs.length, len], "int32"), yb: tf.tensor1d(Int32Array.from(idxs, (i) => this.labels[i]!), "int32") };
  }

  /** fastai's `dl.new`: the same texts with other options. */
  new(opts: SortedDLOptions): SortedDL {
    return new SortedDL(this.docs, this.labels, { bs: this.bs, seqLen: this.seqLen, padIdx: this.padIdx, ...opts });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<{ xb: tf.Tensor2D; yb: tf.Tensor1D }> {
    const order = this.order();
    for (let b = 0; b < this.length; b++) yield this.batch(order.slice(b * this.bs, (b + 1) * this.bs));
  }
}

// ---------------------------------------------------------------- TextDataLoaders

/** Options of `TextDataLoaders.fromFolder` / `fromDf` / `fromCsv`. */
export interface TextDataLoadersOptions extends TokenizerOptions, VocabOptions {
  /** Language-model data (streams, targets the next token) instead of a classifier's (default false). */
  isLm?: boolean;
  /** Validation share of a random split (fromFolder: default none, the `valid` folder is the validation set; fromDf: 0.2). */
  validPct?: number;
  /** Batch size (default 64). */
  bs?: number;
  /** Tokens per LM row / padding chunk of the classifier (default 72). */
  seqLen?: number;
  /** Seed of the split and the shuffles (default 42). */
  seed?: number;
  /** The token vocabulary to use (a classifier over a fine-tuned LM: `dlsLm.vocab`); default built from the training texts. */
  textVocab?: readonly string[];
  /** Folder for the learner's checkpoints (default the data folder, or "."). */
  path?: string;
}

/** The inference spec of text data (`dls.inferenceSpec()`), saved by `export`. */
export interface TextInferenceSpec {
  version: 1;
  kind: "text";
  isLm: boolean;
  /** The token vocabulary. */
  textVocab: string[];
  /** The classes (a classifier) or the tokens (a language model). */
  vocab: string[];
  isMultiLabel: false;
  padIdx: number;
  /**
   * The tokenizer's rules and post-rules: name (`registerTextRule`) and a hash of the source; absent in older
   * exports, which used the defaults. `predict` tokenizes with the same rules, found by name and checked.
   */
  rules?: TextRuleRef[];
  postRules?: TextRuleRef[];
  /** A language model: `predict` gives the next token (its distribution over `vocab`). */
  target?: { kind: "next-token" };
}

/** True when an inference spec is text's. */
export function isTextSpec(spec: unknown): spec is TextInferenceSpec {
  return !!spec && typeof spec === "object" && (spec as { kind?: unknown }).kind === "text";
}

/** The tokenizers of the specs a live `TextDataLoaders` handed out (in-session predict uses its own functions, not the registry). */
const liveTokenizers = new WeakMap<object, Tokenizer>();

/**
 * The tokenizer of an inference spec: the data's own for a spec from a live `TextDataLoaders`; for an
 * export, its rules found by name and checked against their recorded source (an error names the rules this
 * process does not know or has other code for).
 */
export function specTokenizer(spec: TextInferenceSpec): Tokenizer {
  return (
    liveTokenizers.get(spec) ??
    new Tokenizer({
      cacheDir: false,
      ...(spec.rules ? { rules: textRulesByRef(spec.rules) } : {}),
      ...(spec.postRules ? { postRules: textRulesByRef(spec.postRules) } : {}),
    })
  );
}

/** Raw texts → int32 ids [n, longest] (padded as the classifier's batches; caller disposes); an empty text is an error. */
export async function prepareTextInputs(spec: TextInferenceSpec, texts: readonly unknown[]): Promise<tf.Tensor2D> {
  await ready();
  const num = new Numericalize(spec.textVocab);
  const tok = specTokenizer(spec);
  const docs = texts.map((t, i) => {
    if (typeof t !== "string") throw new PredictInputError(`predict: a text model takes a string; input ${i} is ${t === null ? "null" : typeof t}`);
    if (t.trim() === "") throw new PredictInputError("predict: the text is empty; a text model needs at least one word");
    return num.encode(tok.tokenize(t));
  });
  // A language model's prediction is read at the last position, so its padding all goes in front
  // (seqLen 1: every pad token before the text); a classifier's is fastai's pad_input_chunk.
  const { data, len } = padInputChunk(docs, spec.isLm ? { padIdx: spec.padIdx, seqLen: 1 } : { padIdx: spec.padIdx });
  return tf.tensor2d(data, [docs.length, len], "int32");
}

/** What the factories hand to the constructor: the texts (already split) and their labels. */
interface RawTexts {
  texts: string[];
  /** One label per text (classifier). */
  labels?: string[];
  names: string[];
  train: number[];
  valid: number[];
  replaced: { name: string; replaced: number }[];
}

/** Options of `fromDf` / `fromCsv`: which columns hold the texts, labels and validation flags. */
export interface TextFrameOptions extends TextDataLoadersOptions {
  /** Column of the texts (default "text"). */
  textCol?: string;
  /** Column of the labels (default "label"; not needed with `isLm`). */
  labelCol?: string;
  /** Column that is true for validation rows (default none: a random `validPct`, 0.2). */
  validCol?: string;
}

/** The texts, labels and split of a table; a missing column is an error naming it and listing the others. */
function frameTexts(df: DataFrame, opts: TextFrameOptions): Omit<RawTexts, "replaced"> {
    const textCol = opts.textCol ?? "text";
    const labelCol = opts.labelCol ?? "label";
    const names = df.columnNames();
    for (const [what, col, needed] of [["text", textCol, true], ["label", labelCol, !opts.isLm], ["validation", opts.validCol, !!opts.validCol]] as const) {
      if (needed && !names.includes(col!)) throw new Error(`TextDataLoaders: the table has no ${what} column "${col}"; its columns are: ${names.join(", ")} (name it with ${what === "text" ? "textCol" : what === "label" ? "labelCol" : "validCol"})`);
    }
    const texts = column(df, textCol).map((v) => (v === null ? "" : String(v)));
    const rowNames = texts.map((_, i) => `row ${i}`);
    let trn: number[];
    let val: number[];
    if (opts.validCol) {
      const cellsV = column(df, opts.validCol);
      const isValid = cellsV.map(truthy); // TRUE (Excel, R), yes, t, 1 as well as true
      trn = texts.flatMap((_, i) => (isValid[i] ? [] : [i]));
      val = texts.flatMap((_, i) => (isValid[i] ? [i] : []));
      if (texts.length && (!trn.length || !val.length)) {
        const seen = [...new Set(cellsV.map((v) => JSON.stringify(v ?? null)))];
        throw new Error(
          `TextDataLoaders: the validation column "${opts.validCol}" puts every row in ${val.length ? "validation" : "training"}; its values are ${seen.slice(0, 10).join(", ")}${seen.length > 10 ? ", ..." : ""}. ` +
            `Mark validation rows with true (or TRUE, 1, yes, t, y) and the others with false, or give validPct instead`,
        );
      }
    } else [trn, val] = RandomSplitter(opts.validPct ?? 0.2, opts.seed ?? textDataDefaults.seed)(texts);
    const cells = opts.isLm ? undefined : column(df, labelCol);
    // an empty label cell would become a class named "null" or ""; refuse the rows (an empty text is skipped anyway)
    const blank = (cells ?? []).flatMap((v, i) => (texts[i]!.trim() !== "" && (v === null || v === undefined || Number.isNaN(v) || String(v).trim() === "") ? [i] : []));
    if (blank.length) {
      const shown = blank.slice(0, 10).join(", ") + (blank.length > 10 ? ` and ${blank.length - 10} more` : "");
      throw new Error(`TextDataLoaders: row${blank.length === 1 ? "" : "s"} ${shown} ha${blank.length === 1 ? "s" : "ve"} an empty label (column "${labelCol}"); fill or remove ${blank.length === 1 ? "it" : "them"}`);
    }
    const labels = cells?.map((v) => String(v));
    return { texts, labels, names: rowNames, train: trn, valid: val };
}

/** fastai's `TextDataLoaders`: language-model streams (`isLm`) or sorted, padded classifier batches. */
export class TextDataLoaders {
  readonly train: LMDataLoader | SortedDL;
  readonly valid: LMDataLoader | SortedDL;
  readonly isLm: boolean;
  /** The token vocabulary. */
  readonly textVocab: string[];
  /** The classes (classifier) or the tokens (language model), as fastai's `dls.vocab` for each. */
  readonly vocab: string[];
  readonly c: number;
  readonly targetKind = "category";
  readonly path: string;
  readonly numericalize: Numericalize;
  /** Whether tokenization came from the on-disk cache. */
  readonly tokensFromCache: boolean;
  readonly padIdx = textDataDefaults.padIdx;
  /** The tokenizer of these texts (its rules, no cache), what `predict` uses on new texts. */
  readonly tokenizer: Tokenizer;
  private readonly ruleRefs: { rules: TextRuleRef[]; postRules: TextRuleRef[] };

  private constructor(raw: RawTexts, opts: TextDataLoadersOptions) {
    warnReplaced(raw.replaced);
    const kept = new Set(dropEmpty(raw.texts, (i) => raw.names[i]!));
    const train = raw.train.filter((i) => kept.has(i));
    const valid = raw.valid.filter((i) => kept.has(i));
    if (!train.length) throw new Error(`TextDataLoaders: no training texts (of ${raw.texts.length} read, ${kept.size} not empty)`);
    this.isLm = !!opts.isLm;
    const tokenizer = new Tokenizer(opts);
    // named now, so a rule without a name is refused before any work, and predict/export can find each rule
    this.ruleRefs = { rules: textRuleRefs(tokenizer.rules), postRules: textRuleRefs(tokenizer.postRules) };
    this.tokenizer = new Tokenizer({ rules: tokenizer.rules, postRules: tokenizer.postRules, cacheDir: false });
    const toks = tokenizer.tokenizeTexts(raw.texts.map((t, i) => (kept.has(i) ? t : "")));
    this.tokensFromCache = tokenizer.lastFromCache;
    this.numericalize = opts.textVocab ? new Numericalize(opts.textVocab) : Numericalize.fromTokens(train.map((i) => toks[i]!), opts);
    this.textVocab = this.numericalize.vocab;
    const ids = toks.map((t) => this.numericalize.encode(t));
    const bs = opts.bs ?? textDataDefaults.bs;
    const seqLen = opts.seqLen ?? textDataDefaults.seqLen;
    const seed = opts.seed ?? textDataDefaults.seed;
    this.path = opts.path ?? ".";
    if (this.isLm) {
      this.train = new LMDataLoader(train.map((i) => ids[i]!), { bs, seqLen, seed, shuffle: true });
      this.valid = new LMDataLoader(valid.map((i) => ids[i]!), { bs, seqLen, seed, shuffle: false });
      this.vocab = this.textVocab;
    } else {
      if (!raw.labels) throw new Error("TextDataLoaders: a classifier needs labels");
      this.vocab = sortVocab(train.map((i) => raw.labels![i]!)); // fastai's CategoryMap: numbers in numeric order
      if (this.vocab.length < 2) throw new Error(`TextDataLoaders: only one class (${JSON.stringify(this.vocab[0])}) in the training texts; a classifier needs at least 2`);
      const index = new Map(this.vocab.map((v, k) => [v, k]));
      const unknown = valid.find((i) => !index.has(raw.labels![i]!));
      if (unknown !== undefined) throw new Error(`TextDataLoaders: validation text ${raw.names[unknown]} has label "${raw.labels[unknown]}", which no training text has (classes: ${this.vocab.join(", ")})`);
      const pick = (idx: number[]) => [idx.map((i) => ids[i]!), Int32Array.from(idx, (i) => index.get(raw.labels![i]!)!)] as const;
      const [td, tl] = pick(train);
      const [vd, vl] = pick(valid);
      this.train = new SortedDL(td, tl, { bs, seqLen, seed, shuffle: true, dropLast: td.length > bs });
      this.valid = new SortedDL(vd, vl, { bs, seqLen, seed, shuffle: false });
    }
    this.c = this.vocab.length;
  }

  /**
   * fastai's `TextDataLoaders.from_folder`: `.txt` files under `path`'s `train` and `valid` folders (or `folders`),
   * labelled by their parent folder (a classifier), split by those folders; with `validPct`, every `.txt` file under
   * `path` (or under `folders`) split at random, as fastai reads every text file when `valid_pct` is given.
   */
  static fromFolder(dir: string, opts: TextDataLoadersOptions & { train?: string; valid?: string; folders?: string[] } = {}): TextDataLoaders {
    const train = opts.train ?? "train";
    const valid = opts.valid ?? "valid";
    const folders = opts.folders ?? [train, valid];
    // fastai's from_folder: train/valid folders split the texts; with valid_pct every .txt file under path is read
    // (test/, unsup/, ... too) and split at random, unless `folders` names the ones to read
    const files = opts.validPct !== undefined && !opts.folders ? getFiles(dir, { extensions: [".txt"] }) : getFiles(dir, { extensions: [".txt"], folders });
    const none = (where: string[]) => {
      const found = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => !f.startsWith(".")) : [];
      return new Error(
        `TextDataLoaders.fromFolder: no .txt files under ${where.map((f) => path.join(dir, f)).join(" or ")} (${dir} holds: ${found.join(", ") || "nothing"}); ` +
          `name the folders with train/valid or folders${opts.validPct === undefined ? ", or give validPct (e.g. 0.2) to split every .txt file under it at random" : ""}`,
      );
    };
    if (!files.length) throw none(opts.validPct !== undefined && !opts.folders ? ["."] : folders);
    const replaced: RawTexts["replaced"] = [];
    const texts = files.map((f) => {
      const r = decodeUtf8(fs.readFileSync(f));
      if (r.replaced) replaced.push({ name: f, replaced: r.replaced });
      return r.text;
    });
    const [trn, val] =
      opts.validPct !== undefined ? RandomSplitter(opts.validPct, opts.seed ?? textDataDefaults.seed)(files)
      : opts.isLm ? topFolderSplit(dir, files, train, valid) // a language model's documents need no class folders
      : GrandparentSplitter(train, valid)(files);
    if (opts.validPct === undefined && !trn.length) throw none([train]);
    if (!opts.isLm && opts.validPct === undefined && !val.length) {
      throw new Error(`TextDataLoaders.fromFolder: no validation texts: ${path.join(dir, valid)} has no class folders of .txt files; give validPct (e.g. 0.2) to split ${train} at random`);
    }
    return new TextDataLoaders({ texts, labels: opts.isLm ? undefined : files.map(parentLabel), names: files, train: trn, valid: val, replaced }, { path: dir, ...opts });
  }

  /** fastai's `TextDataLoaders.from_df`: texts in `textCol`, labels in `labelCol`; split by `validCol` (true = validation) or at random. */
  static fromDf(df: DataFrame, opts: TextFrameOptions = {}): TextDataLoaders {
    return new TextDataLoaders({ ...frameTexts(df, opts), replaced: [] }, opts);
  }

  /** fastai's `TextDataLoaders.from_csv`: the file read as UTF-8 (other bytes replaced and counted), then `fromDf`. */
  static fromCsv(csv: string, opts: TextFrameOptions & { delimiter?: string } = {}): TextDataLoaders {
    if (!fs.existsSync(csv)) throw new Error(`TextDataLoaders.fromCsv: no file at ${csv}`);
    const { text, replaced } = decodeUtf8(fs.readFileSync(csv));
    const df = readCsv({ text }, { delimiter: opts.delimiter, textColumns: [opts.textCol ?? "text", opts.labelCol ?? "label"] });
    return new TextDataLoaders({ ...frameTexts(df, opts), replaced: replaced ? [{ name: csv, replaced }] : [] }, { path: path.dirname(csv), ...opts });
  }

  /** Ids → text (tokens joined by spaces), e.g. to read a batch. */
  decode(ids: ArrayLike<number>): string {
    return this.numericalize.decode(ids).join(" ");
  }

  /** What export and `predict` need to process raw texts. */
  inferenceSpec(): TextInferenceSpec {
    const spec: TextInferenceSpec = {
      version: 1, kind: "text", isLm: this.isLm, textVocab: [...this.textVocab], vocab: [...this.vocab], isMultiLabel: false, padIdx: this.padIdx,
      rules: this.ruleRefs.rules.map((r) => ({ ...r })), postRules: this.ruleRefs.postRules.map((r) => ({ ...r })),
      ...(this.isLm ? { target: { kind: "next-token" as const } } : {}),
    };
    liveTokenizers.set(spec, this.tokenizer); // this learner's predict tokenizes with these very functions
    return spec;
  }

  /** One batch decoded: the text of each row and its label (classifier) or the text it predicts (language model). */
  async oneBatchTexts(opts: { maxN?: number; valid?: boolean } = {}): Promise<{ text: string; target: string }[]> {
    const dl = opts.valid ? this.valid : this.train;
    for await (const { xb, yb } of dl as AsyncIterable<{ xb: tf.Tensor2D; yb: tf.Tensor }>) {
      const [x, y] = [(await xb.array()) as number[][], (await yb.array()) as number[] | number[][]];
      tf.dispose([xb, yb]);
      return x.slice(0, opts.maxN ?? 9).map((row, r) => ({
        text: this.decode(row),
        target: this.isLm ? this.decode(y[r] as number[]) : this.vocab[y[r] as number]!,
      }));
    }
    return [];
  }

  /** fastai's `show_batch`: the decoded texts of one batch with their labels (or, for a language model, the texts they predict), as an HTML table (returned too). */
  async showBatch(opts: { maxN?: number; valid?: boolean } = {}): Promise<string> {
    const rows = await this.oneBatchTexts(opts);
    const heads = this.isLm ? ["text", "text_"] : ["text", "category"];
    const body = rows.map((r) => `<tr><td>${escapeHtml(r.text)}</td><td>${escapeHtml(r.target)}</td></tr>`).join("\n");
    const html = `<table class="dataframe"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>\n${body}\n</tbody></table>`;
    if (inKernel()) showHtml(html, rows.map((r) => `${r.text}\t${r.target}`).join("\n"));
    return html;
  }
}
