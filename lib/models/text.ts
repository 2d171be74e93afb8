/**
 * fastai's text learners (`text/learner.py`): `languageModelLearner` (an `AwdLstmLM` that generates text with
 * `predict` and hands its encoder on with `saveEncoder`) and `textClassifierLearner` (`textClassifierModel`,
 * which takes that encoder with `loadEncoder`), both with fastai's callbacks: `ModelResetter` and the
 * AR/TAR regularisation (the `RNNRegularizer` callback, alpha 2, beta 1) on `CrossEntropyLossFlat`, and fastai's
 * parameter groups, so `freezeTo(-2)` / `freezeTo(-3)` unfreeze gradually as ULMFiT does.
 * Encoders are saved as `.safetensors` with fastai's names (`encoder.weight`, `rnns.0.weight_hh_l0_raw`, ...)
 * and the token vocabulary in the metadata, so a classifier is refused an encoder of another vocabulary.
 */
import * as nodePath from "node:path";
import * as fs from "node:fs";
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { Learner, type LearnerOptions } from "../learner/learner";
import { CrossEntropyLossFlat } from "../learner/losses";
import type { Prediction } from "../learner/contracts";
import { Rng } from "../data/random";
import { readSafetensors, writeSafetensors, type SafeTensor } from "./safetensors";
import { ModelResetter, RNNRegularizer } from "./rnn";
import {
  AwdLstmClassifierEncoder, AwdLstmLM, awdLstmClasSplit, awdLstmLmSplit, awdLstmLMStateDict, awdLstmStateDict, languageModel, loadAwdLstmLMStateDict,
  loadAwdLstmStateDict, textClassifierModel, type AwdLstmOptions, type TextClassifierModelOptions,
} from "./awd-lstm";
import { BOS, PAD, UNK, decodeSpecTokens } from "../text/rules";
import type { TextDataLoaders } from "../text/data";
import { SHIPPED_EMAIL_LM, SHIPPED_LM, shippedCheckpoint } from "./pretrained";

/** The architecture argument of the text learners (fastai's `AWD_LSTM`); the only one for now. */
export const AWD_LSTM = { name: "AWD_LSTM" } as const;
export type TextArch = typeof AWD_LSTM;

/** Options shared by the text learners. */
interface TextLearnerCommon extends LearnerOptions {
  /** Multiplies every dropout of the architecture's config (default 1 for the LM, 0.5 for the classifier, as fastai). */
  dropMult?: number;
  /** Sizes and dropouts overriding fastai's config (e.g. `{ embSz: 100, nHid: 256 }` for a small model). */
  config?: AwdLstmOptions;
  /** AR weight (default 2) and TAR weight (default 1) of `RNNRegularizer`. */
  alpha?: number;
  beta?: number;
  /** Seed of the initialisation and dropout masks (default 0). */
  seed?: number;
}

/** fastai's `TextLearner` base: ModelResetter and AR/TAR, both learners. */
function textLearnerOptions(source: { activations?: { raw: tf.Tensor; out: tf.Tensor } }, opts: TextLearnerCommon, splitter: LearnerOptions["splitter"]): LearnerOptions {
  const { dropMult: _d, config: _c, alpha, beta, seed: _s, ...rest } = opts;
  const cbs = rest.cbs === undefined ? [] : Array.isArray(rest.cbs) ? rest.cbs : [rest.cbs];
  return {
    ...rest,
    lossFunc: rest.lossFunc ?? CrossEntropyLossFlat(),
    splitter: rest.splitter ?? splitter,
    // fastai's TextLearner adds both; a RNNRegularizer the user passes replaces the built-in one (never both)
    cbs: [new ModelResetter(), ...(cbs.some((c) => c instanceof RNNRegularizer) ? [] : [new RNNRegularizer({ alpha: alpha ?? 2, beta: beta ?? 1, source })]), ...cbs],
  };
}

/** The encoder file of `name`: `<path>/<modelDir>/<name>.safetensors` (an absolute `name` is used as it is, as fastai's `join_path_file`). */
function encoderFile(learn: Learner, name: string): string {
  const file = name.endsWith(".safetensors") ? name : `${name}.safetensors`;
  return nodePath.isAbsolute(name) ? file : nodePath.join(learn.path, learn.modelDir, file);
}

/** Options of `LMLearner.predict` (fastai's `LMLearner.predict`). */
export interface GenerateOptions {
  /** Words (tokens) to add (default 1). */
  nWords?: number;
  /** Sampling temperature: probabilities are raised to 1/temperature (default 1); 0 takes the most likely token. */
  temperature?: number;
  /** Never sample `xxunk` (default true). */
  noUnk?: boolean;
  /** Seed of the sampling (default 0). */
  seed?: number;
}

/** What `LMLearner.predict` returns: the text with its continuation (also in `label`), and the added tokens. */
export interface GeneratedText extends Prediction {
  text: string;
  /** The tokens sampled, in order. */
  added: string[];
}

/** fastai's `LMLearner`: a language model that writes (`predict`) and hands its encoder on (`saveEncoder`). */
export class LMLearner extends Learner<TextDataLoaders> {
  /** The `AwdLstmLM` layer of the model. */
  get lm(): AwdLstmLM {
    return this.model.layers.find((l): l is AwdLstmLM => l instanceof AwdLstmLM)!;
  }

  /**
   * Continue `text` by `nWords` tokens: each step runs the model over the text so far from a reset state, takes the
   * last position's probabilities (xxunk zeroed with `noUnk`), raises them to 1/temperature and samples one token.
   * `text` is the result decoded as fastai does (no xxbos/xxpad, xxmaj/xxup/xxrep undone, tokens joined by spaces).
   */
  override async predict(input: string | Buffer | tf.Tensor, opts: GenerateOptions = {}): Promise<GeneratedText> {
    if (typeof input !== "string") throw new Error("a language model continues a text: learn.predict(\"I liked this movie because\", { nWords: 40 })");
    await ready();
    const vocab = this.dls.textVocab;
    const num = this.dls.numericalize;
    const ids = Array.from(num.encode(this.dls.tokenizer.tokenize(input)));
    const unk = vocab.indexOf(UNK);
    const rng = new Rng(opts.seed ?? 0);
    const temperature = opts.temperature ?? 1;
    const nWords = opts.nWords ?? 1;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new Error(`predict: temperature must be 0 (the most likely word) or more, got ${temperature}`);
    if (!Number.isInteger(nWords) || nWords < 0) throw new Error(`predict: nWords must be a whole number, 0 or more, got ${nWords}`);
    const added: string[] = [];
    const lm = this.lm;
    for (let w = 0; w < nWords; w++) {
      lm.reset();
      const probs = tf.tidy(() => {
        const logits = this.model.apply(tf.tensor2d([ids], [1, ids.length], "int32"), { training: false }) as tf.Tensor;
        return tf.softmax(tf.reshape(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), [-1]));
      });
      const p = Array.from(await probs.data());
      probs.dispose();
      if ((opts.noUnk ?? true) && unk >= 0) p[unk] = 0;
      // p^(1/T), computed as exp((log p − max log p) / T) so a low temperature does not underflow to all zeros
      const top = Math.max(...p);
      // temperature 0 is the limit: the most likely token
      const weights = temperature === 1 ? p : p.map((v) => (v > 0 ? (temperature === 0 ? +(v === top) : Math.exp((Math.log(v) - Math.log(top)) / temperature)) : 0));
      const next = sample(weights, rng);
      ids.push(next);
      added.push(vocab[next]!);
    }
    lm.reset();
    const text = decodeSpecTokens(ids.map((i) => vocab[i]!).filter((t) => t !== BOS && t !== PAD)).join(" ");
    return { text, label: text, index: -1, probs: [], added };
  }

  /** fastai's `save_encoder`: the encoder's weights (fastai's names) and the token vocabulary to `<path>/models/<name>.safetensors`; returns the file. */
  async saveEncoder(name: string): Promise<string> {
    await ready();
    const file = encoderFile(this, name);
    fs.mkdirSync(nodePath.dirname(file), { recursive: true });
    await writeSafetensors(file, awdLstmStateDict(this.lm.encoder), lmMetadata(this));
    return file;
  }

  /**
   * The whole language model (encoder and decoder, fastai's names) and its vocabulary to `<path>/models/<name>.safetensors`:
   * what `languageModelLearner(dls, AWD_LSTM, { pretrained: file })` starts from (e.g. a model pretrained on a large corpus).
   */
  async saveLanguageModel(name: string): Promise<string> {
    await ready();
    const file = encoderFile(this, name);
    fs.mkdirSync(nodePath.dirname(file), { recursive: true });
    await writeSafetensors(file, awdLstmLMStateDict(this.lm), lmMetadata(this));
    return file;
  }
}

/** The metadata of a saved encoder or language model: its vocabulary, the architecture and its sizes (`config`). */
function lmMetadata(learn: LMLearner): Record<string, string> {
  const { embSz, nHid, nLayers, padToken } = learn.lm.encoder.opts;
  return { vocab: JSON.stringify(learn.dls.textVocab), arch: AWD_LSTM.name, config: JSON.stringify({ embSz, nHid, nLayers, padToken }) };
}

/** Draw an index with probability proportional to `weights`. */
function sample(weights: readonly number[], rng: Rng): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/** Options of `languageModelLearner`. */
export interface LanguageModelLearnerOptions extends TextLearnerCommon {
  /**
   * A pretrained language model to start from (fastai's `pretrained=True` starts from Wikitext-103's):
   *   - `"shipped"`: the English AWD-LSTM shipped with tsfast (`english-awd-lstm-small`, see checkpoints/MODEL_CARD.md);
   *   - a shipped checkpoint's name, or the path of a `.safetensors` file of fastai's LM state dict (`0.encoder.weight`, ...,
   *     `1.decoder.bias`) whose metadata `vocab` lists its tokens (what `saveLanguageModel` writes).
   * The model takes the file's sizes (metadata `config`; a `config` option that contradicts them is an error); rows of
   * words it lacks get the mean embedding (fastai's `match_embeds`), and the learner is frozen to its last group, as
   * fastai. Default none (random weights).
   */
  pretrained?: string;
}

/** fastai's `match_embeds`: the embedding, decoder weight and bias re-ordered to `newVocab`; unknown words get the means. */
export function matchEmbeds(sd: Map<string, SafeTensor>, oldVocab: readonly string[], newVocab: readonly string[]): Map<string, SafeTensor> {
  const out = new Map(sd);
  const w = sd.get("0.encoder.weight");
  if (!w) throw new Error("matchEmbeds: the state dict has no 0.encoder.weight");
  const [nOld, dim] = w.shape as [number, number];
  if (nOld !== oldVocab.length) throw new Error(`matchEmbeds: the embedding has ${nOld} rows but the vocabulary ${oldVocab.length} tokens`);
  const bias = sd.get("1.decoder.bias");
  const mean = new Float32Array(dim);
  for (let r = 0; r < nOld; r++) for (let j = 0; j < dim; j++) mean[j]! += w.data[r * dim + j]! / nOld;
  const biasMean = bias ? Array.from(bias.data).reduce((a, b) => a + b, 0) / nOld : 0;
  const o2i = new Map(oldVocab.map((t, i) => [t, i]));
  const nw = new Float32Array(newVocab.length * dim);
  const nb = new Float32Array(newVocab.length);
  newVocab.forEach((t, i) => {
    const k = o2i.get(t);
    nw.set(k === undefined ? mean : w.data.subarray(k * dim, (k + 1) * dim), i * dim);
    nb[i] = k === undefined ? biasMean : (bias?.data[k] ?? 0);
  });
  const emb: SafeTensor = { dtype: "F32", shape: [newVocab.length, dim], data: nw };
  out.set("0.encoder.weight", emb);
  out.set("0.encoder_dp.emb.weight", emb);
  out.set("1.decoder.weight", emb);
  if (bias) out.set("1.decoder.bias", { dtype: "F32", shape: [newVocab.length], data: nb });
  return out;
}

/** fastai's `language_model_learner(dls, AWD_LSTM, drop_mult, metrics, pretrained)`: an `AwdLstmLM` over `dls.textVocab` in an `LMLearner`. */
export async function languageModelLearner(dls: TextDataLoaders, arch: TextArch = AWD_LSTM, opts: LanguageModelLearnerOptions = {}): Promise<LMLearner> {
  checkArch(arch);
  if (!dls.isLm) throw new Error("languageModelLearner needs language-model data: TextDataLoaders.fromFolder(path, { isLm: true })");
  await ready();
  const file = opts.pretrained ? pretrainedLmFile(opts.pretrained) : undefined;
  const f = file ? await readSafetensors(file) : undefined;
  const sizes = f && file ? checkpointSizes(f.metadata, file, opts.config ?? {}) : {};
  const model = languageModel(dls.textVocab.length, { ...opts.config, ...sizes, dropMult: opts.dropMult ?? 1, seed: opts.seed ?? 0 });
  const lm = model.layers[0] as AwdLstmLM;
  const learn = new LMLearner(dls, model, textLearnerOptions(lm, opts, awdLstmLmSplit));
  if (f && file) {
    const vocab = parseVocab(f.metadata, file);
    loadAwdLstmLMStateDict(lm, matchEmbeds(f.tensors, vocab, dls.textVocab), file);
    learn.freeze();
  }
  return learn;
}

/** The file of `languageModelLearner`'s `pretrained`: `"shipped"` → the shipped English LM, a bare name → that shipped checkpoint, else a path. */
export function pretrainedLmFile(pretrained: string): string {
  if (pretrained === "shipped") return shippedCheckpoint(SHIPPED_LM);
  if (!/[/\\]/.test(pretrained) && !pretrained.endsWith(".safetensors")) {
    // a bare name: a shipped checkpoint, or a file in the current folder
    if (fs.existsSync(pretrained)) return pretrained;
    try {
      return shippedCheckpoint(pretrained);
    } catch (e) {
      throw new Error(`languageModelLearner: pretrained "${pretrained}" is neither a file nor a shipped checkpoint (${(e as Error).message}); pass a path to a .safetensors file, "shipped" (the English LM) or "${SHIPPED_EMAIL_LM}" (the e-mail LM)`);
    }
  }
  if (!fs.existsSync(pretrained)) throw new Error(`languageModelLearner: pretrained file ${pretrained} does not exist (pretrained: "shipped" is the English LM shipped with tsfast, "${SHIPPED_EMAIL_LM}" the e-mail one)`);
  return pretrained;
}

const SIZE_KEYS = ["embSz", "nHid", "nLayers", "padToken"] as const;

/** The sizes a checkpoint's metadata `config` records; a `given` size that differs is an error naming both. */
function checkpointSizes(meta: Record<string, string>, file: string, given: AwdLstmOptions): Partial<Pick<AwdLstmOptions, (typeof SIZE_KEYS)[number]>> {
  if (meta["config"] === undefined) return {}; // written before sizes were recorded: the shapes are checked on loading
  const saved = JSON.parse(meta["config"]) as Record<string, number>;
  const clash = SIZE_KEYS.filter((k) => given[k] !== undefined && saved[k] !== undefined && given[k] !== saved[k]);
  if (clash.length) {
    const show = (o: object) => clash.map((k) => `${k}: ${(o as Record<string, unknown>)[k]}`).join(", ");
    throw new Error(`languageModelLearner: ${file} is an AWD-LSTM with { ${show(saved)} }, but config asks for { ${show(given)} }; drop those sizes from config (the checkpoint's are used) or train from scratch without pretrained`);
  }
  return Object.fromEntries(SIZE_KEYS.filter((k) => typeof saved[k] === "number").map((k) => [k, saved[k]]));
}

function parseVocab(meta: Record<string, string>, file: string): string[] {
  try {
    const v = JSON.parse(meta["vocab"] ?? "null") as unknown;
    if (Array.isArray(v)) return v.map(String);
  } catch {
    // reported below
  }
  throw new Error(`${file} has no "vocab" (a JSON list of its tokens) in its metadata; it was not written by saveEncoder or a tsfast LM export`);
}

function checkArch(arch: TextArch): void {
  if (arch?.name !== AWD_LSTM.name) throw new Error(`the text learners know one architecture, AWD_LSTM; got ${JSON.stringify((arch as { name?: unknown })?.name ?? arch)}`);
}

/** fastai's `TextLearner` for classification: `predict(text)` gives `{ label, index, probs }`; `loadEncoder` takes a fine-tuned LM's encoder. */
export class TextClassifierLearner extends Learner<TextDataLoaders> {
  /** The `AwdLstmClassifierEncoder` layer of the model. */
  get encoder(): AwdLstmClassifierEncoder {
    return this.model.layers.find((l): l is AwdLstmClassifierEncoder => l instanceof AwdLstmClassifierEncoder)!;
  }

  /** Classify one text (an empty one is an error saying so). */
  override async predict(input: string | Buffer | tf.Tensor): Promise<Prediction> {
    if (typeof input !== "string" && !(input instanceof tf.Tensor)) throw new Error("a text classifier predicts a string: learn.predict(\"what a great film\")");
    return super.predict(input);
  }

  /**
   * fastai's `load_encoder`: the weights `saveEncoder(name)` wrote, into this model's encoder. The vocabulary must be the
   * language model's (build the classifier's data with `textVocab: dlsLm.vocab`). fastai's recipe then trains the head
   * first: `learn.freeze()` (fastai froze at creation because it had loaded pretrained weights).
   */
  async loadEncoder(name: string): Promise<this> {
    await ready();
    // the file saveEncoder returned (a path to a file, not a folder), else the name under this learner's model folder
    const isFile = (f: string) => fs.existsSync(f) && fs.statSync(f).isFile();
    const file = isFile(name) ? name : encoderFile(this, name);
    if (!isFile(file)) {
      throw new Error(`loadEncoder: no encoder at ${file}; write one with the language model's learn.saveEncoder("${name}"), or pass the file it wrote (saveEncoder returns its path) when the language model had another folder`);
    }
    const f = await readSafetensors(file);
    const vocab = parseVocab(f.metadata, file);
    const mine = this.dls.textVocab;
    if (vocab.length !== mine.length || vocab.some((t, i) => t !== mine[i])) {
      const at = vocab.findIndex((t, i) => t !== mine[i]);
      throw new Error(
        `loadEncoder: ${file} was trained on another vocabulary (${vocab.length} tokens, this data has ${mine.length}; first difference at id ${at}: ` +
          `"${vocab[at]}" vs "${mine[at]}"); build the classifier's data with textVocab: dlsLm.vocab`,
      );
    }
    loadAwdLstmStateDict(this.encoder.encoder, f.tensors, "", file);
    return this;
  }
}

/** Options of `textClassifierLearner` (fastai's `text_classifier_learner`). */
export interface TextClassifierLearnerOptions extends TextLearnerCommon, Pick<TextClassifierModelOptions, "linFtrs" | "ps" | "bptt" | "maxLen"> {}

/** fastai's `text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, metrics)`: `textClassifierModel` in a `TextClassifierLearner`. */
export async function textClassifierLearner(dls: TextDataLoaders, arch: TextArch = AWD_LSTM, opts: TextClassifierLearnerOptions = {}): Promise<TextClassifierLearner> {
  checkArch(arch);
  if (dls.isLm) throw new Error("textClassifierLearner needs classifier data (TextDataLoaders without isLm); for a language model use languageModelLearner");
  await ready();
  const { linFtrs, ps, bptt, maxLen, ...rest } = opts;
  const model = textClassifierModel(dls.textVocab.length, dls.c, { ...opts.config, linFtrs, ps, bptt, maxLen, dropMult: opts.dropMult ?? 0.5, seed: opts.seed ?? 0 });
  const enc = model.layers.find((l): l is AwdLstmClassifierEncoder => l instanceof AwdLstmClassifierEncoder)!;
  return new TextClassifierLearner(dls, model, textLearnerOptions(enc, rest, awdLstmClasSplit));
}
