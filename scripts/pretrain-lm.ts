/**
 * Pretrain the small English AWD-LSTM language model shipped in `checkpoints/` (ULMFiT's first stage, which
 * fastai runs on Wikitext-103, here on `englishCorpus()`: Moby-Dick and the State of the Union addresses).
 *
 *   node dist/scripts/pretrain-lm.js                      # train and write the checkpoint + results
 *   node dist/scripts/pretrain-lm.js --measure 5 --sizes 256/512/2,128/384/2   # tokens/s of 5 training batches per size, no file
 *   options: --train-words N --epochs N --lr X --bs N --emb N --hid N --layers N --max-vocab N --drop-mult X --out DIR --name NAME
 *   node dist/scripts/pretrain-lm.js --corpus email --init english-awd-lstm-small --name email-awd-lstm-small --lr 1e-2 --train-words 500000
 *     the e-mail model: `emailCorpus()` (the pretraining half of SpamAssassin), starting from the English model's weights
 *     (its words; the e-mails' other words start at its mean embedding, as `languageModelLearner` does for any corpus)
 *
 * The vocabulary comes from every training document; the training sees a seeded draw of whole training documents of
 * about `--train-words` words (the default is what fitted in half an hour of a busy 2-core machine; see the model card).
 * The held-out evaluation runs after the fit, batch by batch, over every held-out document.
 *
 * It uses tsfast's own API only: `TextDataLoaders.fromFolder(corpus, { isLm: true })` over the corpus's own
 * train/valid documents, `languageModelLearner` (AR/TAR and ModelResetter as fastai), `fitOneCycle` with fastai's
 * AdamW, and `saveLanguageModel`, whose file (fastai's LM state-dict names, the vocabulary and the sizes in the
 * metadata) is what `languageModelLearner(dls, AWD_LSTM, { pretrained })` loads. Both outputs are written to a
 * temporary name and renamed, so an interrupted run never leaves half a checkpoint.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  AWD_LSTM, CancelFitException, CancelValidException, LMDataLoader, Numericalize, Rng, TextDataLoaders, Tokenizer, accuracy, emailCorpus, englishCorpus, languageModelLearner,
  perplexity, readSafetensors, tf, writeSafetensors, type Callback, type Learner, type LMLearner,
} from "../lib/index";
import { SHIPPED_LM } from "../lib/models/pretrained";

/** The recipe's defaults: a model small enough for ≤ 30 MB and an hour of two CPU cores. */
const defaults = {
  epochs: 1, lr: 1e-2, wd: 0.01, bs: 64, seqLen: 72, emb: 256, hid: 512, layers: 2, maxVocab: 8000, minFreq: 3, dropMult: 0.1, seed: 0,
  /** Words of training text (whole documents, a seeded draw); what two busy CPU cores (shared with other jobs) trained in about half an hour. */
  trainWords: 220_000,
};

/** The held-out slice `results.json` records for a quick re-check (test/models-english-lm.test.ts). */
const CHECK = { tokens: 600, bs: 4, seqLen: 72 };
/** Rows per batch of the held-out evaluation (more rows, fewer of the LSTM's sequential steps). */
const VALID_BS = 128;

/** The corpora the script pretrains on, and how the results file names each. */
const CORPORA = {
  english: { build: () => englishCorpus(), about: "englishCorpus() (validPct 0.05, seed 42)" },
  email: { build: () => emailCorpus(), about: "emailCorpus(): the pretraining half of SpamAssassin, labels dropped, each e-mail cut at 2,000 characters (validPct 0.05, seed 42)" },
} as const;

function args(): typeof defaults & { measure: number; out: string; name: string; corpus: keyof typeof CORPORA; init: string | undefined } {
  const a = process.argv.slice(2);
  const get = (flag: string): string | undefined => {
    const i = a.indexOf(flag);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const num = (flag: string, d: number) => (get(flag) === undefined ? d : Number(get(flag)));
  return {
    epochs: num("--epochs", defaults.epochs), lr: num("--lr", defaults.lr), wd: defaults.wd, bs: num("--bs", defaults.bs), seqLen: defaults.seqLen,
    emb: num("--emb", defaults.emb), hid: num("--hid", defaults.hid), layers: num("--layers", defaults.layers),
    maxVocab: num("--max-vocab", defaults.maxVocab), minFreq: defaults.minFreq, dropMult: num("--drop-mult", defaults.dropMult), seed: defaults.seed,
    trainWords: num("--train-words", defaults.trainWords),
    measure: num("--measure", 0), out: get("--out") ?? path.resolve(__dirname, "../../checkpoints"), name: get("--name") ?? SHIPPED_LM,
    corpus: corpusName(get("--corpus") ?? "english"), init: get("--init"),
  };
}

function corpusName(c: string): keyof typeof CORPORA {
  if (!(c in CORPORA)) throw new Error(`--corpus must be one of ${Object.keys(CORPORA).join(", ")}, got ${c}`);
  return c as keyof typeof CORPORA;
}

/** Float32 parameters of a tied AWD-LSTM: embedding (= decoder weight), decoder bias, and per LSTM 4h·(in + h) weights + 8h biases. */
function paramCount(vocab: number, emb: number, hid: number, layers: number): number {
  let n = vocab * emb + vocab;
  for (let l = 0; l < layers; l++) {
    const inp = l === 0 ? emb : hid;
    const h = l === layers - 1 ? emb : hid;
    n += 4 * h * (inp + h) + 8 * h;
  }
  return n;
}

/** Times `n` training batches after 3 warm-up ones, then stops the fit. */
class Throughput implements Callback {
  batches = 0;
  t0 = 0;
  seconds = 0;
  constructor(readonly n: number) {}
  afterBatch(learn: Learner): void {
    if (!learn.training) return;
    this.batches++;
    if (process.env["PRETRAIN_VERBOSE"]) console.log(`batch ${this.batches} at ${(performance.now() / 1000).toFixed(1)} s`);
    if (this.batches === 3) this.t0 = performance.now();
    if (this.batches === 3 + this.n) {
      this.seconds = (performance.now() - this.t0) / 1000;
      throw new CancelFitException();
    }
  }
}

/** Logs training progress, and skips fit's own validation: `evaluate` does it in bigger batches, in constant memory. */
class Progress implements Callback {
  private t = performance.now();
  afterBatch(learn: Learner): void {
    if (learn.training && learn.iter % 10 === 0) console.log(`  batch ${learn.iter}/${learn.nIter}, ${((performance.now() - this.t) / 1000).toFixed(0)} s, loss ${learn.recorder.smoothLoss.value.toFixed(3)}`);
  }
  beforeValidate(): void {
    throw new CancelValidException();
  }
}

/**
 * Validation loss, accuracy and perplexity of next-token prediction over every token of `docs`, from a reset state, the
 * stream cut as `LMDataLoader` does. Computed batch by batch: the Learner's validation keeps every batch's logits for its
 * metrics, which for 100,000 tokens × 8,000 words is 3 GB. The loss is per token, and perplexity is exp(loss).
 */
async function evaluate(learn: LMLearner, docs: Int32Array[], bs: number, seqLen: number): Promise<{ validLoss: number; accuracy: number; perplexity: number; tokens: number }> {
  let loss = 0;
  let correct = 0;
  let n = 0;
  learn.lm.reset();
  for await (const { xb, yb } of new LMDataLoader(docs, { bs, seqLen })) {
    const [l, c] = tf.tidy(() => {
      const logits = learn.model.apply(xb, { training: false }) as tf.Tensor;
      const flat = tf.reshape(logits, [-1, logits.shape[2]!]);
      const y = tf.reshape(yb, [-1]);
      const lse = tf.logSumExp(flat, -1);
      const picked = tf.sum(tf.mul(flat, tf.oneHot(y, flat.shape[1]!)), -1);
      return [tf.sum(tf.sub(lse, picked)), tf.sum(tf.cast(tf.equal(tf.argMax(flat, -1), y), "int32"))];
    });
    loss += (await l.data())[0]!;
    correct += (await c.data())[0]!;
    n += yb.size;
    tf.dispose([l, c, xb, yb]);
  }
  learn.lm.reset();
  return { validLoss: loss / n, accuracy: correct / n, perplexity: Math.exp(loss / n), tokens: n };
}

/** A folder with a seeded draw of `corpus`'s training documents (whole ones, about `words` words) and all its validation documents. */
function subsetCorpus(corpus: string, words: number, seed: number): { dir: string; trainDocs: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pretrain-lm-data-"));
  const names = new Rng(seed).shuffle(fs.readdirSync(path.join(corpus, "train")).filter((f) => f.endsWith(".txt")).sort());
  const trainDocs: string[] = [];
  let n = 0;
  for (const f of names) {
    if (n >= words) break;
    const text = fs.readFileSync(path.join(corpus, "train", f), "utf8");
    n += text.split(/\s+/).length;
    trainDocs.push(f);
  }
  for (const split of ["train", "valid"]) fs.mkdirSync(path.join(dir, split));
  for (const f of trainDocs) fs.copyFileSync(path.join(corpus, "train", f), path.join(dir, "train", f));
  for (const f of fs.readdirSync(path.join(corpus, "valid"))) fs.copyFileSync(path.join(corpus, "valid", f), path.join(dir, "valid", f));
  return { dir, trainDocs: trainDocs.sort() };
}

/**
 * `src` without the tied copies of the embedding (`0.encoder_dp.emb.weight`, `1.decoder.weight`: fastai's state dict
 * holds the same table three times), written to `dest`: 8 MB less each at this size. `languageModelLearner` reads
 * only `0.encoder.weight` of a tied model; bench/awd_lstm_torch.py fills the copies back in.
 */
async function storeTiedOnce(src: string, dest: string): Promise<void> {
  const f = await readSafetensors(src);
  const tensors = new Map([...f.tensors].filter(([k]) => k !== "0.encoder_dp.emb.weight" && k !== "1.decoder.weight").map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
  await writeSafetensors(dest, tensors, f.metadata);
}

/** Write `file` through a temporary name, renamed when complete; a failed write leaves neither. */
async function writeAtomic(file: string, write: (tmp: string) => void | Promise<void>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await write(tmp);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

async function main(): Promise<void> {
  const o = args();
  if (process.argv.includes("--compact")) {
    // rewrite an already written checkpoint without the tied copies, and its results file's size
    const file = path.join(o.out, `${o.name}.safetensors`);
    await writeAtomic(file, (tmp) => storeTiedOnce(file, tmp));
    const res = path.join(o.out, `${o.name}.results.json`);
    const r = JSON.parse(fs.readFileSync(res, "utf8"));
    await writeAtomic(res, (tmp) => fs.writeFileSync(tmp, JSON.stringify({ ...r, bytes: fs.statSync(file).size }, null, 2) + "\n"));
    console.log(`${file}: ${fs.statSync(file).size} bytes`);
    return;
  }
  const t0 = performance.now();
  const corpus = await CORPORA[o.corpus].build();
  // the vocabulary of all training documents; the training itself on a seeded draw of them (o.trainWords words)
  const full = TextDataLoaders.fromFolder(corpus, { isLm: true, bs: o.bs, seqLen: o.seqLen, seed: 42, maxVocab: o.maxVocab, minFreq: o.minFreq });
  const { dir: data, trainDocs } = subsetCorpus(corpus, o.trainWords, o.seed);
  const dls = TextDataLoaders.fromFolder(data, { isLm: true, bs: o.bs, seqLen: o.seqLen, seed: 42, textVocab: full.textVocab });
  const tokens = (dl: unknown) => (dl as LMDataLoader).totalTokens;
  console.log(
    `corpus ${corpus}: vocabulary ${dls.textVocab.length} (of ${tokens(full.train)} training tokens), training on ${trainDocs.length} documents, ${tokens(dls.train)} tokens, ` +
      `${dls.train.length} batches of ${o.bs}×${o.seqLen}; validating on ${tokens(dls.valid)} tokens (${((performance.now() - t0) / 1000).toFixed(0)} s to read)`,
  );
  // --sizes 256/512/3,128/384/2 measures several sizes in one run
  const sizes = (process.argv.includes("--sizes") ? process.argv[process.argv.indexOf("--sizes") + 1]!.split(",").map((s) => s.split("/").map(Number)) : [[o.emb, o.hid, o.layers]]);
  if (o.init && (process.argv.includes("--sizes") || ["--emb", "--hid", "--layers"].some((f) => process.argv.includes(f)))) {
    throw new Error("--init takes the sizes of the checkpoint it starts from: leave out --sizes, --emb, --hid and --layers");
  }
  for (const [emb0, hid0, layers0] of sizes as [number, number, number][]) {
    // --init: start from a shipped model (its sizes; the whole model trains, as in ULMFiT's second stage unfrozen)
    const learn = o.init
      ? await languageModelLearner(dls, AWD_LSTM, { pretrained: o.init, dropMult: o.dropMult, seed: o.seed, wd: o.wd, progress: false })
      : await languageModelLearner(dls, AWD_LSTM, { config: { embSz: emb0, nHid: hid0, nLayers: layers0 }, dropMult: o.dropMult, seed: o.seed, wd: o.wd, progress: false });
    if (o.init) learn.unfreeze();
    // the sizes the model was built at (the checkpoint's with --init)
    const { embSz: emb, nHid: hid, nLayers: layers } = learn.lm.encoder.opts;
    const nParams = paramCount(dls.textVocab.length, emb, hid, layers);
    const config = { embSz: emb, nHid: hid, nLayers: layers };
    if (o.measure) {
      const cb = new Throughput(o.measure);
      await learn.fitOneCycle(1, { lrMax: o.lr, cbs: [cb] });
      const tps = (o.measure * o.bs * o.seqLen) / cb.seconds;
      const epochMin = (dls.train.length * o.bs * o.seqLen) / tps / 60;
      console.log(`emb ${emb} hid ${hid} layers ${layers}: ${nParams} params (${((nParams * 4) / 1e6).toFixed(1)} MB), ${tps.toFixed(0)} tokens/s, ${epochMin.toFixed(1)} min per epoch`);
      continue;
    }
    const tFit = performance.now();
    await learn.fitOneCycle(o.epochs, { lrMax: o.lr, wd: o.wd, cbs: [new Progress()] });
    const fitSeconds = (performance.now() - tFit) / 1000;
    const tok = new Tokenizer({ cacheDir: false });
    const num = new Numericalize(dls.textVocab);
    const validFiles = fs.readdirSync(path.join(corpus, "valid")).sort();
    const validIds = validFiles.map((f) => num.encode(tok.tokenize(fs.readFileSync(path.join(corpus, "valid", f), "utf8"))));
    const tEval = performance.now();
    const final = await evaluate(learn, validIds, VALID_BS, o.seqLen);
    console.log(`held-out: loss ${final.validLoss.toFixed(4)}, accuracy ${final.accuracy.toFixed(4)}, perplexity ${final.perplexity.toFixed(2)} over ${final.tokens} tokens (${((performance.now() - tEval) / 1000).toFixed(0)} s)`);
    fs.mkdirSync(o.out, { recursive: true });
    learn.path = fs.mkdtempSync(path.join(os.tmpdir(), "pretrain-lm-"));
    const saved = await learn.saveLanguageModel(o.name);
    const file = path.join(o.out, `${o.name}.safetensors`);
    await writeAtomic(file, (tmp) => storeTiedOnce(saved, tmp));
    const valid = validFiles;
    // a quick re-check for the tests: the first CHECK.tokens tokens of two held-out documents, one of each source
    const checkDocs = o.corpus === "english" ? [valid.find((f) => f.startsWith("moby-dick-"))!, valid.find((f) => f.startsWith("sotu-"))!] : valid.slice(0, 2);
    const checkIds = checkDocs.map((f) => num.encode(tok.tokenize(fs.readFileSync(path.join(corpus, "valid", f), "utf8"))).slice(0, CHECK.tokens));
    learn.metrics = [accuracy, perplexity]; // a small slice: the Learner's metrics are fine here
    const [checkLoss, checkAcc, checkPpl] = await learn.validate({ dl: new LMDataLoader(checkIds, { bs: CHECK.bs, seqLen: CHECK.seqLen }) });
    const results = {
      checkpoint: path.basename(file),
      bytes: fs.statSync(file).size,
      params: nParams,
      arch: AWD_LSTM.name,
      config: { ...config, padToken: 1 },
      data: {
        corpus: CORPORA[o.corpus].about, corpusName: o.corpus, init: o.init ?? null, vocab: dls.textVocab.length, maxVocab: o.maxVocab, minFreq: o.minFreq, vocabFromTrainTokens: tokens(full.train),
        trainWords: o.trainWords, trainTokens: tokens(dls.train), trainBatchesPerEpoch: dls.train.length, validTokens: tokens(dls.valid), trainDocs, validDocs: valid,
      },
      recipe: { loader: { bs: o.bs, seqLen: o.seqLen, seed: 42 }, fitOneCycle: { epochs: o.epochs, lrMax: o.lr, wd: o.wd, optimizer: "AdamW (fastai's Adam, decoupled wd)" }, dropMult: o.dropMult, arTar: { alpha: 2, beta: 1 }, seed: o.seed },
      final: { about: `every held-out token the loader's rows hold, LMDataLoader({ bs: ${VALID_BS}, seqLen: ${o.seqLen} }) from a reset state; loss per token, perplexity = exp(loss)`, ...final, seconds: (performance.now() - tEval) / 1000 },
      check: { about: "learn.validate over LMDataLoader(first `tokens` tokens of each doc, { bs, seqLen })", docs: checkDocs, ...CHECK, validLoss: checkLoss, accuracy: checkAcc, perplexity: checkPpl },
      fitSeconds,
      totalSeconds: (performance.now() - t0) / 1000,
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, node ${process.version}`,
      date: new Date().toISOString(),
    };
    await writeAtomic(path.join(o.out, `${o.name}.results.json`), (tmp) => fs.writeFileSync(tmp, JSON.stringify(results, null, 2) + "\n"));
    console.log(`wrote ${file} (${results.bytes} bytes) in ${(results.totalSeconds / 60).toFixed(1)} min`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
