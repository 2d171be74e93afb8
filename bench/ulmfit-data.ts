/**
 * The token ids of notebooks/18_text_ulmfit.ipynb, for its PyTorch reference (bench/ulmfit_torch.py).
 *
 * The lesson tokenizes with wink-tokenizer and fastai's rules, which have no Python port, so the reference
 * cannot rebuild the data itself: this script runs the lesson's own data pipeline (the same calls, the same
 * constants as the notebook's `RECIPE` cell) and writes what came out as JSON:
 *   - `vocab`: the language model's token vocabulary (the classifier uses the same one);
 *   - `lm.train` / `lm.valid`: the language model's documents as id lists (every e-mail, labels unused);
 *   - `clas.train` / `clas.valid`: the classifier's documents and class indices (`classes` names them);
 *   - `recipe`: the constants, so the reference trains with the same batch sizes, epochs and learning rates.
 *
 *   node dist/bench/ulmfit-data.js [--out FILE]     (default out/ulmfit-data.json)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TextDataLoaders, SortedDL } from "../lib/text/data";
import type { LMDataLoader } from "../lib/text/lm-loader";
import { spamAssassin } from "../lib/data/datasets/spam";
import { frameFromRows, readCsv } from "../lib/tabular/frame";

/** The lesson's constants; keep them equal to the notebook's RECIPE cell. */
export const ULMFIT_RECIPE = {
  /** E-mails per class (a seeded sample of `spamAssassin()`'s task half, 2,386 texts: the language model reads them all, unlabelled). */
  perClass: 250,
  /** Each e-mail cut after this many characters (subject + body). */
  maxChars: 300,
  /** Share of the e-mails held out to measure the language model. */
  lmValidPct: 0.1,
  lmBs: 32,
  seqLen: 72,
  /** The language model's dropouts scaled by this (the book's 0.3), its frozen epoch's lr, then unfrozen epochs at lmLr / 10. */
  lmDropMult: 0.3,
  lmLr: 2e-2,
  lmUnfrozenEpochs: 2,
  /** The classifier's dropouts scaled by this (fastai's default 0.5). */
  clasDropMult: 0.5,
  /**
   * The book's gradual unfreezing: per stage `freezeTo(n)`, then `fitOneCycle(epochs, lr)` where `[a, b]` is `slice(a, b)`.
   * Two epochs per stage (the book runs 1, 1, 1, 2 on 25,000 reviews; one epoch of 200 e-mails is too few steps).
   */
  stages: [
    { freezeTo: -1, epochs: 2, lr: [2e-2] },
    { freezeTo: -2, epochs: 2, lr: [1e-2 / 2.6 ** 4, 1e-2] },
    { freezeTo: -3, epochs: 2, lr: [5e-3 / 2.6 ** 4, 5e-3] },
    { freezeTo: 0, epochs: 2, lr: [1e-3 / 2.6 ** 4, 1e-3] },
  ],
  /** Labelled e-mails per class the classifier trains on (the few labels of the story). */
  trainPerClass: 30,
  /** Validation e-mails per class the classifier is measured on (all of the sample's). */
  validPerClass: 50,
  clasBs: 16,
  seed: 42,
} as const;

/** The lesson's two loaders, built exactly as the notebook builds them. */
export async function ulmfitData(r: typeof ULMFIT_RECIPE = ULMFIT_RECIPE): Promise<{ dlsLm: TextDataLoaders; dlsClas: TextDataLoaders }> {
  const dir = await spamAssassin({ perClass: r.perClass, maxChars: r.maxChars });
  const df = readCsv(path.join(dir, "texts.csv"), { textColumns: ["text", "label"] });
  const dlsLm = TextDataLoaders.fromDf(df, { isLm: true, textCol: "text", validPct: r.lmValidPct, bs: r.lmBs, seqLen: r.seqLen, seed: r.seed, path: dir });
  // readCsv keeps is_valid as the text "true" / "false"
  const rows = df.objects() as { label: string; text: string; is_valid: string }[];
  const pick = (label: string, valid: boolean, n: number) => rows.filter((e) => e.label === label && e.is_valid === String(valid)).slice(0, n);
  const few = [
    ...pick("ham", false, r.trainPerClass), ...pick("spam", false, r.trainPerClass),
    ...pick("ham", true, r.validPerClass), ...pick("spam", true, r.validPerClass),
  ];
  const dlsClas = TextDataLoaders.fromDf(frameFromRows(few), { textCol: "text", labelCol: "label", validCol: "is_valid", textVocab: dlsLm.vocab, bs: r.clasBs, seqLen: r.seqLen, seed: r.seed, path: dir });
  return { dlsLm, dlsClas };
}

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  const out = a.includes("--out") ? a[a.indexOf("--out") + 1]! : path.join("out", "ulmfit-data.json");
  // --recipe '{"trainPerClass": 200}' overrides constants, to explore recipes before the notebook takes one
  const over = a.includes("--recipe") ? (JSON.parse(a[a.indexOf("--recipe") + 1]!) as Partial<typeof ULMFIT_RECIPE>) : {};
  const unknown = Object.keys(over).filter((k) => !(k in ULMFIT_RECIPE));
  if (unknown.length) throw new Error(`--recipe: unknown key${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; the recipe's keys are ${Object.keys(ULMFIT_RECIPE).join(", ")}`);
  const recipe = { ...ULMFIT_RECIPE, ...over };
  const { dlsLm, dlsClas } = await ulmfitData(recipe);
  const ids = (docs: readonly Int32Array[]) => docs.map((d) => Array.from(d));
  const lmTrain = dlsLm.train as LMDataLoader;
  const lmValid = dlsLm.valid as LMDataLoader;
  const ct = dlsClas.train as SortedDL;
  const cv = dlsClas.valid as SortedDL;
  const data = {
    recipe,
    vocab: dlsLm.textVocab,
    classes: dlsClas.vocab,
    lm: { train: ids(lmTrain.docs), valid: ids(lmValid.docs) },
    clas: { train: ids(ct.docs), trainLabels: Array.from(ct.labels), valid: ids(cv.docs), validLabels: Array.from(cv.labels) },
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(data));
  console.log(`${out}: vocabulary ${data.vocab.length}; LM ${lmTrain.totalTokens} training and ${lmValid.totalTokens} validation tokens (${lmTrain.length} batches of ${lmTrain.bs}×${lmTrain.seqLen}); classifier ${ct.n} training and ${cv.n} validation texts`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
