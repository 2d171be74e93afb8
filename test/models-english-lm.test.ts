/**
 * The shipped language models (checkpoints/english-awd-lstm-small.safetensors and email-awd-lstm-small.safetensors,
 * written by scripts/pretrain-lm.ts): each loads with its own sizes, tsfast computes PyTorch's logits from it on
 * held-out text (fixtures from bench/english-lm-reference.ts), the held-out perplexity its results file records is
 * computed again, it fits the 30 MB budget; and a user's own vocabulary and config are handled.
 */
// the default engine (native when built), as a user gets: the pure-JS cpu engine also passes, in about a minute
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import "../lib/wiring";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { englishCorpus } from "../lib/data/datasets/english";
import { emailCorpus } from "../lib/data/datasets/spam";
import { TextDataLoaders } from "../lib/text/data";
import { LMDataLoader } from "../lib/text/lm-loader";
import { Numericalize, Tokenizer } from "../lib/text/tokenize";
import { AWD_LSTM, languageModelLearner } from "../lib/models/text";
import { SHIPPED_EMAIL_LM, SHIPPED_LM, shippedCheckpoint } from "../lib/models/pretrained";
import { readSafetensors } from "../lib/models/safetensors";
import { accuracy, perplexity } from "../lib/learner/metrics";
import { maxDiff } from "./helpers/compare";
import { tempDir } from "./helpers/tmp";

const ROOT = path.resolve(__dirname, "..", "..");
const resultsOf = (name: string) => JSON.parse(fs.readFileSync(path.join(ROOT, "checkpoints", `${name}.results.json`), "utf8"));
const results = resultsOf(SHIPPED_LM);
/** The corpus a results file says its model was pretrained on (files before the e-mail model name none: English). */
const corpusOf = (r: { data: { corpusName?: string } }) => ((r.data.corpusName ?? "english") === "email" ? emailCorpus() : englishCorpus());

/** A small language-model folder of `words`, and its data with `textVocab` (default: its own vocabulary). */
function lmData(words: string, textVocab?: readonly string[]): TextDataLoaders {
  const dir = tempDir("tsfast-english-lm-");
  for (const split of ["train", "valid"]) {
    fs.mkdirSync(path.join(dir, split));
    fs.writeFileSync(path.join(dir, split, "a.txt"), words);
  }
  return TextDataLoaders.fromFolder(dir, { isLm: true, bs: 2, seqLen: 8, minFreq: 1, cacheDir: false, textVocab });
}

async function shippedVocab(name = SHIPPED_LM): Promise<string[]> {
  return JSON.parse((await readSafetensors(shippedCheckpoint(name))).metadata["vocab"]!) as string[];
}

for (const name of [SHIPPED_LM, SHIPPED_EMAIL_LM]) {
  const results = resultsOf(name);
  // "shipped" names the English model; the e-mail model by its name
  const pretrained = name === SHIPPED_LM ? "shipped" : name;

  test(`${name}: PyTorch's logits on held-out text, with the checkpoint's own sizes`, async () => {
    await ready();
    const fx = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "test", "fixtures", "models", `${name}.torch.json`), "utf8"));
    const file = shippedCheckpoint(name);
    const sha = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    assert.equal(fx.sha256, sha, "the fixture belongs to another checkpoint: run node dist/bench/english-lm-reference.js");
    assert.ok(results.data.validDocs.includes(fx.doc), `${fx.doc} is a held-out document`);
    const vocab = await shippedVocab(name);
    const learn = await languageModelLearner(lmData("call me ishmael .", vocab), AWD_LSTM, { pretrained });
    const { embSz, nHid, nLayers } = learn.lm.encoder.opts;
    assert.deepEqual({ embSz, nHid, nLayers }, { embSz: results.config.embSz, nHid: results.config.nHid, nLayers: results.config.nLayers });
    const ids: number[] = fx.ids;
    learn.lm.reset();
    const logits = tf.tidy(() => learn.model.apply(tf.tensor2d([ids.slice(0, -1)], [1, ids.length - 1], "int32"), { training: false }) as tf.Tensor);
    const all = (await logits.data()) as Float32Array;
    const V = vocab.length;
    const ours = Array.from({ length: ids.length - 1 }, (_v, p) => (fx.columns as number[]).map((c) => all[p * V + c]!)).flat();
    const { diff, scale } = maxDiff(ours, (fx.logits as number[][]).flat());
    assert.ok(diff <= 1e-4 * Math.max(scale, 1), `max |tsfast - PyTorch| = ${diff} (logits up to ${scale})`);
    // every logit counts in the cross-entropy of the next tokens
    const ce = tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(ids.slice(1), "int32"), V), tf.reshape(logits, [-1, V])).dataSync()[0]!);
    logits.dispose();
    learn.lm.reset();
    assert.ok(Math.abs(ce - fx.loss) < 1e-4, `cross-entropy ${ce} vs PyTorch's ${fx.loss}`);
  });

  test(`${name}: the held-out perplexity and accuracy that results.json records are computed again from the shipped file`, async () => {
    await ready();
    const check = results.check;
    const vocab = await shippedVocab(name);
    const corpus = await corpusOf(results);
    const tok = new Tokenizer({ cacheDir: false });
    const num = new Numericalize(vocab);
    const docs = (check.docs as string[]).map((f) => num.encode(tok.tokenize(fs.readFileSync(path.join(corpus, "valid", f), "utf8"))).slice(0, check.tokens));
    const learn = await languageModelLearner(lmData("call me ishmael .", vocab), AWD_LSTM, { pretrained, metrics: [accuracy, perplexity] });
    const [loss, acc, ppl] = await learn.validate({ dl: new LMDataLoader(docs, { bs: check.bs, seqLen: check.seqLen }) });
    assert.ok(Math.abs(loss! - check.validLoss) < 1e-4, `loss ${loss} vs ${check.validLoss}`);
    assert.ok(Math.abs(acc! - check.accuracy) < 1e-6 + 2 / (docs.length * check.tokens), `accuracy ${acc} vs ${check.accuracy}`);
    assert.ok(Math.abs(ppl! / check.perplexity - 1) < 1e-4, `perplexity ${ppl} vs ${check.perplexity}`);
  });

  test(`${name} is at most 30 MB, and results.json describes the file`, async () => {
    const file = shippedCheckpoint(name);
    const bytes = fs.statSync(file).size;
    assert.ok(bytes <= 30 * 1024 * 1024, `${bytes} bytes`);
    assert.equal(results.bytes, bytes);
    const f = await readSafetensors(file);
    // the decoder weight is the embedding (tied): counted once
    let n = 0;
    for (const [k, t] of f.tensors) if (k !== "1.decoder.weight" && k !== "0.encoder_dp.emb.weight") n += t.data.length;
    assert.equal(results.params, n);
    assert.deepEqual(JSON.parse(f.metadata["config"]!), results.config);
    assert.equal(JSON.parse(f.metadata["vocab"]!).length, results.data.vocab);
  });
}

test('pretrained: "shipped" over another vocabulary gives new words the mean embedding, and refuses a config that contradicts the checkpoint', async () => {
  await ready();
  const vocab = await shippedVocab();
  const dls = lmData("the whale and the zorblaxian ship . the whale");
  assert.ok(!vocab.includes("zorblaxian") && vocab.includes("whale"));
  const learn = await languageModelLearner(dls, AWD_LSTM, { pretrained: "shipped" });
  const sd = (await readSafetensors(shippedCheckpoint(SHIPPED_LM))).tensors.get("0.encoder.weight")!;
  const [nOld, dim] = sd.shape as [number, number];
  const emb = learn.lm.encoder.encoder.read().arraySync() as number[][];
  const row = (i: number) => Array.from(sd.data.subarray(i * dim, (i + 1) * dim));
  const mean = Array.from({ length: dim }, (_v, j) => {
    let s = 0;
    for (let r = 0; r < nOld; r++) s += sd.data[r * dim + j]!;
    return s / nOld;
  });
  assert.ok(maxDiff(emb[dls.textVocab.indexOf("whale")]!, row(vocab.indexOf("whale"))).diff < 1e-7, "a known word keeps its row");
  assert.ok(maxDiff(emb[dls.textVocab.indexOf("zorblaxian")]!, mean).diff < 1e-6, "a new word gets the mean row");
  assert.ok(learn.layerGroups().some((g) => g.every((l) => !l.trainable)), "frozen to the last group, as fastai");
  await assert.rejects(
    languageModelLearner(dls, AWD_LSTM, { pretrained: "shipped", config: { nHid: results.config.nHid + 1 } }),
    new RegExp(`${SHIPPED_LM}\\.safetensors is an AWD-LSTM with \\{ nHid: ${results.config.nHid} \\}, but config asks for \\{ nHid: ${results.config.nHid + 1} \\}`),
  );
  // sizes that agree, and dropouts, are fine
  await languageModelLearner(dls, AWD_LSTM, { pretrained: "shipped", config: { embSz: results.config.embSz, hiddenP: 0.1 } });
  await assert.rejects(languageModelLearner(dls, AWD_LSTM, { pretrained: "no-such-model" }), /no shipped checkpoint "no-such-model"/);
});
