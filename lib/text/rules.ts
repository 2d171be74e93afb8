/**
 * fastai's text rules (`fastai/text/core.py`): plain string → string functions applied to a text
 * before it is split into words, and the special tokens they insert. Same regular expressions and
 * the same order as fastai's `defaults.text_proc_rules`, so a corpus tokenizes as fastai's would
 * (the word splitter underneath differs: see `tokenize.ts`).
 */
import { createHash } from "node:crypto";

/** Unknown token (id 0 after `Numericalize`). */
export const UNK = "xxunk";
/** Padding token (id 1). */
export const PAD = "xxpad";
/** Beginning of a text. */
export const BOS = "xxbos";
/** End of a text. */
export const EOS = "xxeos";
/** Field separator. */
export const FLD = "xxfld";
/** Character repetition: `xxrep 4 c` for `cccc`. */
export const TK_REP = "xxrep";
/** Word repetition: `xxwrep 3 ah` for `ah ah ah`. */
export const TK_WREP = "xxwrep";
/** The next word was in capitals. */
export const TK_UP = "xxup";
/** The next word started with a capital. */
export const TK_MAJ = "xxmaj";

/** fastai's `defaults.text_spec_tok`, in its order (they come first in every vocabulary). */
export const specialTokens: readonly string[] = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ];

/** A text rule: a string in, a string out. */
export type TextRule = (t: string) => string;

// Python's `\w` on str is Unicode-aware; JavaScript's is ASCII-only, so letters and digits are spelled out.
const W = "[\\p{L}\\p{N}_]";
const NOT_W = "[^\\p{L}\\p{N}_]";

/** Add spaces around `/`, `#` and `\`. */
export function specAddSpaces(t: string): string {
  return t.replace(/([/#\\])/g, " $1 ");
}

/** Collapse runs of two or more spaces into one. */
export function rmUselessSpaces(t: string): string {
  return t.replace(/ {2,}/g, " ");
}

/** Character repetitions of 3 or more: `cccc` → ` xxrep 4 c `. */
export function replaceRep(t: string): string {
  return t.replace(/(\S)(\1{2,})/gu, (_m, c: string, cc: string) => ` ${TK_REP} ${[...cc].length + 1} ${c} `);
}

// fastai's _re_wrep: a word, then one or more copies of it, then the word again, each separated by whitespace.
const RE_WREP = new RegExp(`(?:\\s|^)(${W}+)\\s+((?:\\1\\s+)+)\\1(\\s|${NOT_W}|$)`, "gu");

/** Word repetitions of 3 or more: `ah ah ah ah` → ` xxwrep 4 ah `. */
export function replaceWrep(t: string): string {
  return t.replace(RE_WREP, (_m, c: string, cc: string, e: string) => ` ${TK_WREP} ${cc.trim().split(/\s+/).length + 2} ${c} ${e}`);
}

/** Named HTML entities that Python's `html.unescape` would decode and that occur in web text. */
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0", copy: "©", reg: "®", trade: "™",
  hellip: "…", mdash: "—", ndash: "–", lsquo: "‘", rsquo: "’", ldquo: "“", rdquo: "”", laquo: "«",
  raquo: "»", euro: "€", pound: "£", yen: "¥", cent: "¢", deg: "°", middot: "·", bull: "•", times: "×",
  divide: "÷", eacute: "é", egrave: "è", agrave: "à", aacute: "á", ccedil: "ç", uuml: "ü", ouml: "ö", auml: "ä",
  szlig: "ß", ntilde: "ñ", iexcl: "¡", iquest: "¿", sect: "§", para: "¶", frac12: "½", frac14: "¼", frac34: "¾",
};

/** Decode HTML character references: `&#39;`, `&#x27;` and the named ones above (others are left as they are). */
export function unescapeHtml(t: string): string {
  return t.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);/g, (m, body: string) => {
    if (body[0] === "#") {
      const code = body[1] === "x" || body[1] === "X" ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : "\ufffd";
    }
    return NAMED_ENTITIES[body] ?? m;
  });
}

/** fastai's `fix_html`: the messy things seen in web documents (IMDB's `<br />`, `#39;`, WikiText's ` @-@ `), then HTML unescaping. */
export function fixHtml(x: string): string {
  const pairs: [string, string][] = [
    ["#39;", "'"], ["amp;", "&"], ["#146;", "'"], ["nbsp;", " "], ["#36;", "$"], ["\\n", "\n"], ["quot;", "'"],
    ["<br />", "\n"], ['\\"', '"'], ["<unk>", UNK], [" @.@ ", "."], [" @-@ ", "-"], ["...", " …"],
  ];
  for (const [from, to] of pairs) x = x.split(from).join(to);
  return unescapeHtml(x);
}

/** Words in ALL CAPS (two letters or more) → `xxup` + the word in lower case. */
export function replaceAllCaps(t: string): string {
  return t.replace(/(\s|^)([A-Z]+[^a-z\s]*)(?=(\s|$))/g, (_m, pre: string, w: string) => `${pre}${w.length > 1 ? `${TK_UP} ` : ""}${w.toLowerCase()}`);
}

/** Words in Sentence case (two letters or more) → `xxmaj` + the word in lower case. */
export function replaceMaj(t: string): string {
  return t.replace(/(\s|^)([A-Z][^A-Z\s]*)(?=(\s|$))/g, (_m, pre: string, w: string) => `${pre}${w.length > 1 ? `${TK_MAJ} ` : ""}${w.toLowerCase()}`);
}

/** Lower-case the text, trim it and start it with `xxbos` (fastai's `lowercase`). */
export function lowercase(t: string, opts: { addBos?: boolean; addEos?: boolean } = {}): string {
  return `${(opts.addBos ?? true) ? `${BOS} ` : ""}${t.toLowerCase().trim()}${opts.addEos ? ` ${EOS}` : ""}`;
}

/** Spaces inside a token become `▁` (fastai's post-rule `replace_space`), so tokens can be joined by spaces and split again. */
export function replaceSpace(t: string): string {
  return t.replace(/ /g, "▁");
}

/** fastai's `defaults.text_proc_rules`, in its order. */
export const defaultRules: readonly TextRule[] = [
  fixHtml,
  replaceRep,
  replaceWrep,
  specAddSpaces,
  rmUselessSpaces,
  replaceAllCaps,
  replaceMaj,
  function lowercaseRule(t: string): string {
    return lowercase(t);
  },
];

/** fastai's `defaults.text_postproc_rules` (applied to each token). */
export const defaultPostRules: readonly TextRule[] = [replaceSpace];

/**
 * Rules by name. An export records each rule's name and a hash of its source code (a function cannot be
 * saved as data, where fastai pickles it), and `predict` finds them here: the defaults are registered; a
 * named rule given to `TextDataLoaders` registers itself; in another process (`loadLearner`, `serve`) call
 * `registerTextRule` before predicting. A rule registered again under its name replaces the old one (a
 * notebook cell run again defines its function again); a model whose recorded source differs from the
 * registered rule's is refused, so a text is never tokenized with other code than in training.
 */
const ruleRegistry = new Map<string, TextRule>();
const nameOfRule = new Map<TextRule, string>();
const defaultNames = new Set<string>();

/** What an export records of one rule: its registered name and the sha256 of its source (16 hex digits). */
export interface TextRuleRef {
  name: string;
  source: string;
}

/** The hash of a rule's source code, recorded by exports and checked when a model is loaded elsewhere. */
export function ruleSourceHash(rule: TextRule): string {
  return createHash("sha256").update(rule.toString()).digest("hex").slice(0, 16);
}

/** Make `rule` findable under `name` (default its function name) by models exported with it. */
export function registerTextRule(rule: TextRule, name: string = rule.name): string {
  if (typeof rule !== "function") throw new Error(`registerTextRule: a rule is a function from text to text; got ${typeof rule}`);
  if (!name) {
    throw new Error(
      "registerTextRule: this rule has no name; write it as a named function (function myRule(t: string) { ... }) or pass a name: " +
        'registerTextRule(rule, "myRule"); an exported model records its rules by name',
    );
  }
  if (defaultNames.has(name) && ruleRegistry.get(name) !== rule) {
    throw new Error(`registerTextRule: "${name}" is the name of one of tsfast's default rules; give your rule another name`);
  }
  ruleRegistry.set(name, rule);
  nameOfRule.set(rule, name);
  return name;
}
for (const r of [...defaultRules, ...defaultPostRules]) defaultNames.add(registerTextRule(r));

/** The references (name and source hash) of `rules`, registering the named ones not seen before (what an inference spec records). */
export function textRuleRefs(rules: readonly TextRule[]): TextRuleRef[] {
  return rules.map((r) => ({ name: nameOfRule.get(r) ?? registerTextRule(r), source: ruleSourceHash(r) }));
}

/**
 * The rules registered under the names of `refs`; an error lists the ones this process does not know, or
 * whose registered code is not the code the model was trained with, and how to fix it.
 */
export function textRulesByRef(refs: readonly (TextRuleRef | string)[]): TextRule[] {
  const named = refs.map((r) => (typeof r === "string" ? { name: r, source: undefined } : r));
  const missing = named.filter((r) => !ruleRegistry.has(r.name)).map((r) => `"${r.name}"`);
  if (missing.length) {
    throw new Error(
      `this text model was trained with tokenizer rule(s) ${missing.join(", ")} that this process does not know; ` +
        `run the code that defines them and call registerTextRule(fn) for each (import { registerTextRule } from "tsfast") ` +
        `before predicting, so texts are tokenized as in training`,
    );
  }
  const changed = named.filter((r) => r.source !== undefined && ruleSourceHash(ruleRegistry.get(r.name)!) !== r.source).map((r) => `"${r.name}"`);
  if (changed.length) {
    throw new Error(
      `the tokenizer rule(s) ${changed.join(", ")} registered in this process are not the code this text model was trained with ` +
        `(their source differs); register the same functions the model was trained with`,
    );
  }
  return named.map((r) => ruleRegistry.get(r.name)!);
}

/**
 * fastai's `decode_spec_tokens`: undo the rules' markers in a token list — `xxmaj w` → `W`, `xxup w` → `W` in
 * capitals, `xxrep n c` → c repeated n times, `xxwrep n w` → w n times. (fastai forgets to clear a repetition
 * after using it; here each marker applies once.)
 */
export function decodeSpecTokens(tokens: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if ((t === TK_MAJ || t === TK_UP) && next !== undefined) {
      out.push(t === TK_UP ? next.toUpperCase() : next.slice(0, 1).toUpperCase() + next.slice(1).toLowerCase());
      i++;
    } else if ((t === TK_REP || t === TK_WREP) && next !== undefined && /^\d+$/.test(next) && tokens[i + 2] !== undefined) {
      const n = Number(next);
      const w = tokens[i + 2]!;
      if (t === TK_REP) out.push(w.repeat(n));
      else for (let k = 0; k < n; k++) out.push(w);
      i += 2;
    } else out.push(t);
  }
  return out;
}
