/**
 * Tokenization (fastai's `Tokenizer` + `SpacyTokenizer`) and `Numericalize`.
 *
 * A text goes through fastai's rules (`rules.ts`), then a word splitter, then the post-rules:
 *   1. rules:   fix_html, replace_rep, replace_wrep, spec_add_spaces, rm_useless_spaces,
 *               replace_all_caps, replace_maj, lowercase (adds `xxbos`);
 *   2. words:   wink-tokenizer (fastai uses spaCy, which has no JavaScript port). Like spaCy it splits
 *               contractions (`don't` → `do n't`) and punctuation, and keeps URLs, e-mails, emoji and
 *               decimal numbers whole; a run of newlines is kept as one token, as spaCy keeps it;
 *   3. post:    replace_space (a space inside a token becomes `▁`).
 * Results are cached on disk per corpus (the key hashes the texts and the rules), so a re-run does not
 * tokenize again, as fastai's `tokenize_folder` / `tokenize_df` keep their `_tok` copies.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { tsfastHome } from "../data/external";
import { defaultPostRules, defaultRules, specialTokens, type TextRule } from "./rules";

interface WinkToken {
  value: string;
  tag: string;
}
// wink-tokenizer ships no type declarations; this is the one method used.
const WinkTokenizer = require("wink-tokenizer") as new () => { tokenize(s: string): WinkToken[] };
const WINK_VERSION = (require("wink-tokenizer/package.json") as { version: string }).version;

/** Bumped whenever the splitting below changes, so caches written by an older tsfast are not reused. */
const TOKENIZER_VERSION = 1;

let wink: { tokenize(s: string): WinkToken[] } | undefined;

/** Split an already-processed text into words with wink-tokenizer; newline runs stay as tokens (as spaCy's). */
export function splitWords(t: string): string[] {
  wink ??= new WinkTokenizer();
  const out: string[] = [];
  for (const part of t.split(/([ \t]*\n[\s]*)/)) {
    if (part.includes("\n")) out.push(part.replace(/[ \t]/g, ""));
    else if (part.trim()) for (const tok of wink.tokenize(part)) out.push(tok.value);
  }
  return out;
}

/** Options of `Tokenizer`. */
export interface TokenizerOptions {
  /** Rules applied to each text before it is split (default fastai's `defaultRules`). */
  rules?: readonly TextRule[];
  /** Rules applied to each token after it is split (default `defaultPostRules`). */
  postRules?: readonly TextRule[];
  /** Folder of the on-disk cache (default `$TSFAST_HOME/cache/tokens`); `false` turns the cache off. */
  cacheDir?: string | false;
}

/** fastai's `Tokenizer`: rules, then words, then post-rules; `tokenizeTexts` caches a corpus's result on disk. */
export class Tokenizer {
  readonly rules: readonly TextRule[];
  readonly postRules: readonly TextRule[];
  readonly cacheDir: string | false;
  /** Whether the last `tokenizeTexts` call read its result from the cache. */
  lastFromCache = false;
  /** The cache file of the last `tokenizeTexts` call (when the cache is on). */
  lastCacheFile?: string;

  constructor(opts: TokenizerOptions = {}) {
    this.rules = opts.rules ?? defaultRules;
    this.postRules = opts.postRules ?? defaultPostRules;
    this.cacheDir = opts.cacheDir === undefined ? path.join(tsfastHome(), "cache", "tokens") : opts.cacheDir;
  }

  /** The tokens of one text. */
  tokenize(text: string): string[] {
    let t = text;
    for (const rule of this.rules) t = rule(t);
    const toks = splitWords(t);
    return this.postRules.length ? toks.map((tok) => this.postRules.reduce((s, rule) => rule(s), tok)) : toks;
  }

  /** The tokens of every text, read from the on-disk cache when this corpus was tokenized with these rules before. */
  tokenizeTexts(texts: readonly string[]): string[][] {
    this.lastFromCache = false;
    this.lastCacheFile = undefined;
    if (this.cacheDir === false) return texts.map((t) => this.tokenize(t));
    const file = path.join(this.cacheDir, `${this.corpusKey(texts)}.json`);
    this.lastCacheFile = file;
    if (fs.existsSync(file)) {
      try {
        const cached = JSON.parse(fs.readFileSync(file, "utf8")) as { tokens?: string[][] };
        if (Array.isArray(cached.tokens) && cached.tokens.length === texts.length) {
          this.lastFromCache = true;
          return cached.tokens;
        }
      } catch {
        // a truncated or foreign file: tokenize again and overwrite it
      }
    }
    const tokens = texts.map((t) => this.tokenize(t));
    fs.mkdirSync(this.cacheDir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ texts: texts.length, tokenizer: `wink-tokenizer ${WINK_VERSION}`, tokens }));
    fs.renameSync(tmp, file);
    return tokens;
  }

  /** A hash of the texts, the rules' source and the splitter's version: the cache file's name. */
  corpusKey(texts: readonly string[]): string {
    const h = crypto.createHash("sha256");
    h.update(`tsfast-tokens ${TOKENIZER_VERSION} wink ${WINK_VERSION}\n`);
    for (const r of [...this.rules, null, ...this.postRules]) h.update(r ? r.toString() : "|post|");
    for (const t of texts) h.update(`${t.length}:`).update(t);
    return h.digest("hex").slice(0, 32);
  }
}

/** `Numericalize`'s defaults (fastai's). */
export const numericalizeDefaults = { minFreq: 3, maxVocab: 60000 } as const;

/** Options of `makeVocab` and `Numericalize.fromTokens`. */
export interface VocabOptions {
  /** Keep tokens seen at least this many times (default 3). */
  minFreq?: number;
  /** Keep at most this many tokens, special ones included (default 60,000). */
  maxVocab?: number;
  /** Tokens put first, in this order, whatever their counts (default fastai's `specialTokens`). */
  specialToks?: readonly string[];
}

/** Token counts in order of first appearance (as Python's `Counter` keeps them). */
export function countTokens(docs: Iterable<readonly string[]>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const doc of docs) for (const t of doc) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/**
 * fastai's `make_vocab`:
 *   1. the `maxVocab` most common tokens (ties in order of first appearance), those seen `minFreq` times or more;
 *   2. the special tokens moved (or added) to the front, in their order;
 *   3. cut to `maxVocab`;
 *   4. padded with `xxfake` to a multiple of 8 (fastai adds 8 - len % 8, so a full 8 when it already is one).
 */
export function makeVocab(counts: Map<string, number>, opts: VocabOptions = {}): string[] {
  const minFreq = opts.minFreq ?? numericalizeDefaults.minFreq;
  const maxVocab = opts.maxVocab ?? numericalizeDefaults.maxVocab;
  const special = opts.specialToks ?? specialTokens;
  // Array.prototype.sort is stable: equal counts keep their first-appearance order, as Counter.most_common does.
  const common = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, maxVocab);
  const vocab = common.filter(([, c]) => c >= minFreq).map(([t]) => t);
  for (const s of [...special].reverse()) {
    const at = vocab.indexOf(s);
    if (at >= 0) vocab.splice(at, 1);
    vocab.unshift(s);
  }
  const cut = vocab.slice(0, maxVocab);
  const fakes = 8 - (cut.length % 8);
  for (let i = 0; i < fakes; i++) cut.push("xxfake");
  return cut;
}

/** fastai's `Numericalize`: tokens ↔ ids over a vocabulary; unknown tokens get id 0 (`xxunk`). */
export class Numericalize {
  readonly vocab: string[];
  private readonly o2i = new Map<string, number>();

  constructor(vocab: readonly string[]) {
    if (!vocab.length) throw new Error("Numericalize needs a non-empty vocab (build one with Numericalize.fromTokens(docs))");
    this.vocab = [...vocab];
    this.vocab.forEach((t, i) => {
      if (t !== "xxfake" && !this.o2i.has(t)) this.o2i.set(t, i);
    });
  }

  /** A vocabulary from the (training) documents' tokens; see `makeVocab`. */
  static fromTokens(docs: Iterable<readonly string[]>, opts: VocabOptions = {}): Numericalize {
    return new Numericalize(makeVocab(countTokens(docs), opts));
  }

  /** Ids of `tokens` (0 for a token not in the vocabulary). */
  encode(tokens: readonly string[]): Int32Array {
    const out = new Int32Array(tokens.length);
    tokens.forEach((t, i) => (out[i] = this.o2i.get(t) ?? 0));
    return out;
  }

  /** Tokens of `ids`; an id outside the vocabulary is an error naming it. */
  decode(ids: ArrayLike<number>): string[] {
    return Array.from(ids, (i) => {
      const t = this.vocab[i];
      if (t === undefined) throw new Error(`Numericalize.decode: id ${i} is outside the vocabulary (0..${this.vocab.length - 1})`);
      return t;
    });
  }
}
