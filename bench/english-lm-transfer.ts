/**
 * A quick measure of the shipped English language model's transfer: a language model on SpamAssassin e-mails
 * (`spamAssassin({ perClass, maxChars })`, its own train/valid split) started from `pretrained: "shipped"` against
 * the same architecture from random weights, the same number of epochs each; prints validation accuracy and
 * perplexity after each epoch.
 *
 *   node dist/bench/english-lm-transfer.js [--per-class 150] [--max-chars 1500] [--epochs 2]
 *
 * Pretrained: fastai's recipe, one epoch frozen (embedding and decoder only) at 2e-2, then unfrozen at 2e-3.
 * From scratch: every epoch at 1e-2 (one-cycle, as the pretraining). Both: bs 32, seqLen 72, dropMult 0.3, seed 0.
 *
 * Measured 2026-11-30 (busy 2-core machine) on samples of the whole corpus, before `spamAssassin()` drew only from its
 * task half (not re-measured since), validation accuracy / perplexity after 2 epochs:
 *   100 per class: pretrained 21.0 % / 116.7, from scratch 11.1 % / 121.2;
 *   300 per class: pretrained 15.4 % / 166.8, from scratch 19.4 % / 134.3 (scratch ahead).
 * The two recipes differ in learning rates and freezing, so this is no clean measure of transfer yet.
 */
import { AWD_LSTM, TextDataLoaders, accuracy, languageModelLearner, perplexity, spamAssassin, type LMLearner } from "../lib/index";
import { SHIPPED_LM, shippedCheckpoint } from "../lib/models/pretrained";
import { readSafetensors } from "../lib/models/safetensors";

function arg(flag: string, d: number): number {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
}

async function main(): Promise<void> {
  const perClass = arg("--per-class", 150);
  const maxChars = arg("--max-chars", 1500);
  const epochs = arg("--epochs", 2);
  const dir = await spamAssassin({ perClass, maxChars });
  const dls = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 32, seqLen: 72, seed: 42 });
  console.log(`SpamAssassin, ${perClass} per class, ≤ ${maxChars} characters: vocabulary ${dls.textVocab.length}, ${dls.train.length} training batches`);
  const config = JSON.parse((await readSafetensors(shippedCheckpoint(SHIPPED_LM))).metadata["config"]!);
  const opts = { dropMult: 0.3, seed: 0, metrics: [accuracy, perplexity], progress: false };
  const report = (name: string, learn: LMLearner, e: number) =>
    console.log(`${name} epoch ${e}: accuracy ${(100 * learn.metricValues![0]!).toFixed(2)} %, perplexity ${learn.metricValues![1]!.toFixed(1)}`);

  const pre = await languageModelLearner(dls, AWD_LSTM, { ...opts, pretrained: "shipped" });
  for (let e = 0; e < epochs; e++) {
    if (e === 1) pre.unfreeze();
    await pre.fitOneCycle(1, { lrMax: e === 0 ? 2e-2 : 2e-3 });
    report("pretrained", pre, e);
  }
  const scratch = await languageModelLearner(dls, AWD_LSTM, { ...opts, config });
  for (let e = 0; e < epochs; e++) {
    await scratch.fitOneCycle(1, { lrMax: 1e-2 });
    report("from scratch", scratch, e);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
