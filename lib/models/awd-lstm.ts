/**
 * fastai's AWD-LSTM (`text/models/awdlstm.py`, `text/models/core.py`): the ULMFiT encoder, its language-model
 * head and its classifier encoder, written on `rnn.ts`'s hand-made `LSTM` with fastai's exact semantics.
 *
 * Encoder (`AwdLstm`), for int32 ids [bs, sl]:
 *   1. EmbeddingDropout: while training, whole rows of the embedding table are zeroed with probability
 *      `embedP` and the rest scaled by 1/(1 − embedP) (one mask per batch, so a word is dropped everywhere);
 *      the pad token's row gets no gradient through the embedding (PyTorch's `padding_idx`);
 *   2. RNNDropout(`inputP`) on the embeddings: one mask per sequence, the same at every time step;
 *   3. `nLayers` one-layer LSTMs: emb → nHid → … → nHid → emb (the last one is `embSz` wide, so the decoder
 *      can tie its weights to the embedding). WeightDropout: while training, each hidden-to-hidden matrix is
 *      read through an element-wise dropout `weightP` of its raw parameter (`weight_hh_l0_raw`);
 *   4. RNNDropout(`hiddenP`) between layers (not after the last);
 *   5. the final (h, c) of every layer is kept, detached, for the next batch (truncated back-propagation
 *      through time); a batch of another size keeps the first rows / pads with zeros, as fastai's
 *      `_change_hidden`; `reset()` forgets it.
 * Language model (`AwdLstmLM`, fastai's `SequentialRNN(AWD_LSTM, LinearDecoder)`): RNNDropout(`outputP`) on
 * the encoder's output, then a linear decoder whose weight IS the embedding table (`tieWeights`), bias zeros.
 * Classifier encoder (`AwdLstmClassifierEncoder`, fastai's `SentenceEncoder` + `masked_concat_pool`): the
 * sequence is fed `bptt` tokens at a time from a reset state, and the outputs of the last `maxLen` tokens are
 * pooled into [last, max, mean] (padding masked out) of width 3·embSz; `textClassifier` puts
 * fastai's `PoolingLinearClassifier` layers (`LinBnDrop`s) on top.
 * Initialisation as fastai: embedding uniform ±0.1, LSTMs PyTorch's uniform ±1/√h, decoder bias zeros.
 * Parameters live in one holder layer per fastai parameter group, so `freezeTo` works as fastai's
 * `awd_lstm_lm_split` / `awd_lstm_clas_split` (see `awdLstmLmSplit`, `awdLstmClasSplit`).
 */
import * as tf from "../engine/tf";
import { LSTM, Module, type RegularizedActivations } from "./rnn";
import { LinBnDrop } from "./blocks";
import type { SafeTensor, SafeTensorInput } from "./safetensors";

type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

/** The encoder's sizes and dropouts (fastai's `AWD_LSTM` arguments). */
export interface AwdLstmOptions {
  /** Embedding width, also the last LSTM's width (default 400). */
  embSz?: number;
  /** Width of the inner LSTMs (default 1152). */
  nHid?: number;
  /** LSTM layers (default 3). */
  nLayers?: number;
  /** Id of the padding token, `xxpad` (default 1). */
  padToken?: number;
  /** RNNDropout between LSTM layers. */
  hiddenP?: number;
  /** RNNDropout on the embeddings. */
  inputP?: number;
  /** EmbeddingDropout: probability of dropping a whole word. */
  embedP?: number;
  /** WeightDropout on the hidden-to-hidden matrices. */
  weightP?: number;
}

/** fastai's `awd_lstm_lm_config`: sizes and the language model's dropouts (before `dropMult`). */
export const awdLstmLmConfig = {
  embSz: 400, nHid: 1152, nLayers: 3, padToken: 1,
  outputP: 0.1, hiddenP: 0.15, inputP: 0.25, embedP: 0.02, weightP: 0.2, tieWeights: true, outBias: true,
} as const;

/** fastai's `awd_lstm_clas_config`: the classifier's (larger) dropouts (before `dropMult`). */
export const awdLstmClasConfig = {
  embSz: 400, nHid: 1152, nLayers: 3, padToken: 1,
  outputP: 0.4, hiddenP: 0.3, inputP: 0.4, embedP: 0.05, weightP: 0.5,
} as const;

/** Every `*P` field of `cfg` multiplied by `dropMult` (fastai's `drop_mult`). */
export function scaleDropouts<T extends object>(cfg: T, dropMult: number): T {
  const out = { ...cfg } as Record<string, unknown>;
  for (const [k, v] of Object.entries(out)) if (/P$/.test(k) && typeof v === "number") out[k] = v * dropMult;
  return out as T;
}

/** `o` without its undefined fields (so they do not hide a default when spread over it). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

type Resolved = Required<AwdLstmOptions>;

function resolve(o: AwdLstmOptions): Resolved {
  const d = awdLstmLmConfig;
  return {
    embSz: o.embSz ?? d.embSz, nHid: o.nHid ?? d.nHid, nLayers: o.nLayers ?? d.nLayers, padToken: o.padToken ?? d.padToken,
    hiddenP: o.hiddenP ?? d.hiddenP, inputP: o.inputP ?? d.inputP, embedP: o.embedP ?? d.embedP, weightP: o.weightP ?? d.weightP,
  };
}

/** A layer that only holds one parameter group's weights (never called): what `freezeTo` freezes. */
export class ParamHolder extends tf.layers.Layer {
  static className = "TsfastParamHolder";
  constructor(name: string) {
    super({ name });
  }
}

/** `x` with no gradient flowing back into it (PyTorch's `detach`). */
export function stopGradient(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: unknown[]) => ({ value: tf.clone(args[0] as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) }));
  return f(x);
}

/** fastai's `RNNDropout`: while training, one dropout mask per sequence, shared by every time step of [bs, sl, n]. */
export function rnnDropout(owner: Module, x: tf.Tensor, p: number, training: boolean): tf.Tensor {
  if (!training || p === 0) return x;
  return tf.dropout(x, p, [x.shape[0]!, 1, x.shape[2]!], owner.rng.int(2 ** 31));
}

/** The AWD-LSTM encoder (see the module note), owned by a `Module`; its groups are the embedding's holder and one per LSTM. */
export class AwdLstm {
  readonly opts: Resolved;
  /** The embedding table [vocab, embSz] (the LM decoder's weight too). */
  readonly encoder: LayerVariable;
  /** One single-layer LSTM per layer; `weight_hh_l0` is the raw matrix weight dropout reads. */
  readonly rnns: LSTM[];
  /** Holders: [embedding, rnn 0, rnn 1, ...]. */
  readonly holders: ParamHolder[];
  private hidden?: { h: tf.Tensor[]; c: tf.Tensor[] };
  /** Tensors this encoder kept (states); disposed once no gradient tape can read them. */
  private kept: tf.Tensor[] = [];

  constructor(private readonly owner: Module, readonly vocabSz: number, opts: AwdLstmOptions, prefix = "") {
    this.opts = resolve(opts);
    const { embSz, nHid, nLayers } = this.opts;
    this.holders = [new ParamHolder(`${prefix}encoder`), ...Array.from({ length: nLayers }, (_, l) => new ParamHolder(`${prefix}rnns.${l}`))];
    this.encoder = owner.param(`${prefix}encoder_weight`, [vocabSz, embSz], { uniform: 0.1 }, this.holders[0]);
    this.rnns = Array.from({ length: nLayers }, (_, l) =>
      new LSTM(owner, `${prefix}rnns_${l}`, l === 0 ? embSz : nHid, l === nLayers - 1 ? embSz : nHid, 1, this.holders[l + 1]),
    );
  }

  /** Width of layer `l`'s hidden state. */
  private width(l: number): number {
    return l === this.opts.nLayers - 1 ? this.opts.embSz : this.opts.nHid;
  }

  /** The embeddings of `ids` with EmbeddingDropout (training) and no gradient into the pad row. */
  embed(ids: tf.Tensor, training: boolean): tf.Tensor {
    const { embedP, padToken } = this.opts;
    let w = this.encoder.read();
    if (training && embedP > 0) w = tf.mul(w, tf.dropout(tf.ones([this.vocabSz, 1]), embedP, undefined, this.owner.rng.int(2 ** 31)));
    const idx = tf.cast(ids, "int32");
    const emb = tf.gather(w, idx);
    const isPad = tf.expandDims(tf.equal(idx, padToken), -1);
    return tf.where(tf.broadcastTo(isPad, emb.shape), stopGradient(emb), emb);
  }

  /** Start of a batch: dispose the states no tape reads any more (all but the carried ones). */
  beginBatch(): void {
    const carried = new Set(this.hidden ? [...this.hidden.h, ...this.hidden.c] : []);
    tf.dispose(this.kept.filter((t) => !carried.has(t)));
    this.kept = this.kept.filter((t) => carried.has(t));
  }

  /** The carried state resized to `bs` rows (fastai's `_change_hidden`): first rows kept, zeros added. */
  private state(bs: number): { h: tf.Tensor[]; c: tf.Tensor[] } {
    const L = this.opts.nLayers;
    if (!this.hidden) return { h: Array.from({ length: L }, (_, l) => tf.zeros([bs, this.width(l)])), c: Array.from({ length: L }, (_, l) => tf.zeros([bs, this.width(l)])) };
    const fit = (t: tf.Tensor, l: number) => {
      const n = t.shape[0]!;
      if (n === bs) return t;
      return n > bs ? tf.slice(t, [0, 0], [bs, -1]) : tf.concat([t, tf.zeros([bs - n, this.width(l)])], 0);
    };
    return { h: this.hidden.h.map(fit), c: this.hidden.c.map(fit) };
  }

  /** Zero the carried state of the rows where `keep` ([bs, 1], 0/1) is 0 (rows of a classifier batch that have not started). */
  maskState(keep: tf.Tensor): void {
    if (!this.hidden) return;
    const m = (t: tf.Tensor) => tf.keep(tf.mul(t, keep));
    const next = { h: this.hidden.h.map(m), c: this.hidden.c.map(m) };
    this.kept.push(...next.h, ...next.c);
    this.hidden = next;
  }

  /** ids [bs, sl] → the last layer's outputs [bs, sl, embSz]; carries the final states (detached) to the next call. */
  forward(ids: tf.Tensor, training: boolean): tf.Tensor {
    const { inputP, hiddenP, weightP, nLayers } = this.opts;
    const bs = ids.shape[0]!;
    const prev = this.state(bs);
    let out = rnnDropout(this.owner, this.embed(ids, training), inputP, training);
    const h: tf.Tensor[] = [];
    const c: tf.Tensor[] = [];
    this.rnns.forEach((rnn, l) => {
      const raw = rnn.layers[0]!.wHh.read();
      const wHh = training && weightP > 0 ? [tf.dropout(raw, weightP, undefined, this.owner.rng.int(2 ** 31))] : undefined;
      const r = rnn.forward(out, [prev.h[l]!], [prev.c[l]!], wHh);
      h.push(tf.keep(stopGradient(r.h[0]!)));
      c.push(tf.keep(stopGradient(r.c[0]!)));
      out = l !== nLayers - 1 ? rnnDropout(this.owner, r.out, hiddenP, training) : r.out;
    });
    this.kept.push(...h, ...c);
    this.hidden = { h, c };
    return out;
  }

  /** The carried state (h then c per layer), for inspection. */
  get carried(): { h: tf.Tensor[]; c: tf.Tensor[] } | undefined {
    return this.hidden;
  }

  /** Forget the carried state (fastai's `reset`). */
  reset(): void {
    tf.dispose(this.kept);
    this.kept = [];
    this.hidden = undefined;
  }
}

/**
 * A `Module` whose parameters live in holder layers (one per parameter group): its weights, in a fixed
 * order whatever is frozen, are the holders'; `layers` lists the holders so the learner's parameter
 * groups and freezing find them.
 */
abstract class GroupedModule extends Module {
  abstract get holders(): tf.layers.Layer[];
  /** The encoder every such module owns. */
  abstract readonly encoder: AwdLstm;
  /** The constructor's argument: what an export stores to rebuild the module. */
  abstract readonly config: object;
  override reset(): void {
    this.encoder.reset();
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...(this.config as tf.serialization.ConfigDict) };
  }
  override getClassName(): string {
    return (this.constructor as typeof Module).className;
  }
  get layers(): tf.layers.Layer[] {
    return this.holders;
  }
  override get trainableWeights(): LayerVariable[] {
    return this.trainable ? this.holders.flatMap((h) => h.trainableWeights) : [];
  }
  override set trainableWeights(_w: LayerVariable[]) {
    // weights live in the holders
  }
  override get nonTrainableWeights(): LayerVariable[] {
    return this.trainable ? this.holders.flatMap((h) => h.nonTrainableWeights) : this.holders.flatMap((h) => h.weights);
  }
  override set nonTrainableWeights(_w: LayerVariable[]) {
    // weights live in the holders
  }
  override get weights(): LayerVariable[] {
    return this.holders.flatMap((h) => (h as unknown as { _trainableWeights: LayerVariable[] })._trainableWeights);
  }
}

/** Configuration of `AwdLstmLM` (serialised with an export). */
export interface AwdLstmLMConfig extends AwdLstmOptions {
  vocabSz: number;
  /** RNNDropout before the decoder. */
  outputP?: number;
  /** Decoder weight = embedding table (default true). */
  tieWeights?: boolean;
  /** Decoder bias (default true). */
  outBias?: boolean;
  /** Seed of the initialisation and dropout masks (default 0). */
  seed?: number;
  name?: string;
}

/** fastai's `get_language_model(AWD_LSTM, ...)`: the encoder and a `LinearDecoder` (ids [bs, sl] → logits [bs, sl, vocab]). */
export class AwdLstmLM extends GroupedModule implements RegularizedActivations {
  static override className = "TsfastAwdLstmLM";
  readonly config: AwdLstmLMConfig;
  readonly encoder: AwdLstm;
  readonly decoderHolder = new ParamHolder("decoder");
  readonly decoderWeight?: LayerVariable;
  readonly decoderBias?: LayerVariable;
  activations?: { raw: tf.Tensor; out: tf.Tensor };

  constructor(config: AwdLstmLMConfig) {
    super({ outputShape: (s) => [s[0]!, s[1]!, config.vocabSz], seed: config.seed ?? 0, name: config.name });
    this.config = { ...config };
    this.encoder = new AwdLstm(this, config.vocabSz, config);
    const emb = this.encoder.opts.embSz;
    if (!(config.tieWeights ?? true)) this.decoderWeight = this.param("decoder_weight", [config.vocabSz, emb], { uniform: 0.1 }, this.decoderHolder);
    if (config.outBias ?? true) this.decoderBias = this.param("decoder_bias", [config.vocabSz], "zeros", this.decoderHolder);
  }

  get holders(): tf.layers.Layer[] {
    return this.encoder ? [...this.encoder.holders, this.decoderHolder] : []; // (tfjs reads the weights while constructing)
  }

  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    this.encoder.beginBatch();
    const raw = this.encoder.forward(x, training);
    const out = rnnDropout(this, raw, this.config.outputP ?? awdLstmLmConfig.outputP, training);
    const w = (this.decoderWeight ?? this.encoder.encoder).read();
    const [bs, sl, n] = out.shape as [number, number, number];
    let logits: tf.Tensor = tf.matMul(tf.reshape(out, [bs * sl, n]), w as tf.Tensor2D, false, true);
    if (this.decoderBias) logits = tf.add(logits, this.decoderBias.read());
    this.activations = training ? { raw, out } : undefined;
    return tf.reshape(logits, [bs, sl, this.config.vocabSz]);
  }

}
tf.serialization.registerClass(AwdLstmLM);

/** Configuration of `AwdLstmClassifierEncoder` (serialised with an export). */
export interface AwdLstmClassifierConfig extends AwdLstmOptions {
  vocabSz: number;
  /** Tokens fed to the encoder at a time (fastai's `seq_len`, default 72). */
  bptt?: number;
  /** Only the outputs of the last `maxLen` tokens are pooled (default 72·20). */
  maxLen?: number;
  seed?: number;
  name?: string;
}

/** `textClassifier`'s defaults (fastai's `get_text_classifier`). */
export const textClassifierDefaults = { bptt: 72, maxLen: 72 * 20, linFtrs: [50] as readonly number[], ps: 0.1 } as const;

/**
 * fastai's `SentenceEncoder(bptt, AWD_LSTM)` followed by `masked_concat_pool`: ids [bs, sl] (padded with
 * `padToken`, pad first by whole `bptt` chunks as the classifier loader pads) → [bs, 3·embSz].
 *   1. state reset; for each chunk [i, i + bptt): run the encoder; rows whose chunk starts with a pad have not
 *      started yet and keep a zero state (fastai runs only the rows that have);
 *   2. outputs of the chunks within the last `maxLen` tokens concatenated; mask = input is pad;
 *   3. last = output at position sl' − (pads in the last bptt tokens) − 1, max over unmasked, mean over unmasked.
 */
export class AwdLstmClassifierEncoder extends GroupedModule implements RegularizedActivations {
  static override className = "TsfastAwdLstmClassifierEncoder";
  readonly config: AwdLstmClassifierConfig;
  readonly encoder: AwdLstm;
  activations?: { raw: tf.Tensor; out: tf.Tensor };

  constructor(config: AwdLstmClassifierConfig) {
    super({ outputShape: (s) => [s[0]!, 3 * (config.embSz ?? awdLstmLmConfig.embSz)], seed: config.seed ?? 0, name: config.name });
    this.config = { ...config };
    this.encoder = new AwdLstm(this, config.vocabSz, config);
  }

  get holders(): tf.layers.Layer[] {
    return this.encoder ? this.encoder.holders : [];
  }

  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    const bptt = this.config.bptt ?? textClassifierDefaults.bptt;
    const maxLen = this.config.maxLen ?? textClassifierDefaults.maxLen;
    const pad = this.encoder.opts.padToken;
    const ids = tf.cast(x, "int32");
    const [bs, sl] = ids.shape as [number, number];
    this.encoder.reset();
    const outs: tf.Tensor[] = [];
    const masks: tf.Tensor[] = [];
    for (let i = 0; i < sl; i += bptt) {
      const len = Math.min(bptt, sl - i);
      const chunk = tf.slice(ids, [0, i], [bs, len]);
      const started = tf.cast(tf.notEqual(tf.slice(ids, [0, i], [bs, 1]), pad), "float32");
      let o = this.encoder.forward(chunk, training);
      this.encoder.maskState(started);
      o = tf.mul(o, tf.expandDims(started, -1)); // fastai's _pad_tensor: rows not run give zeros
      if (sl - i <= maxLen) {
        outs.push(o);
        masks.push(tf.equal(chunk, pad));
      }
    }
    const out = outs.length === 1 ? outs[0]! : tf.concat(outs, 1);
    const mask = masks.length === 1 ? masks[0]! : tf.concat(masks, 1);
    this.activations = training ? { raw: out, out } : undefined;
    return maskedConcatPool(out, mask, bptt);
  }

}
tf.serialization.registerClass(AwdLstmClassifierEncoder);

/** fastai's `masked_concat_pool`: [last, max, mean] of `output` [bs, sl, n] over the positions where `mask` ([bs, sl], bool) is false. */
export function maskedConcatPool(output: tf.Tensor, mask: tf.Tensor, bptt: number): tf.Tensor {
  const [, sl] = output.shape as [number, number, number];
  const m = tf.cast(mask, "float32");
  const keep = tf.expandDims(tf.sub(1, m), -1);
  const lens = tf.sub(sl, tf.sum(m, 1, true)); // [bs, 1]
  const avg = tf.div(tf.sum(tf.mul(output, keep), 1), lens);
  const max = tf.max(tf.where(tf.broadcastTo(tf.expandDims(mask, -1), output.shape), tf.fill(output.shape, -Infinity), output), 1);
  const lastLens = tf.sum(tf.slice(m, [0, Math.max(0, sl - bptt)], [-1, -1]), 1); // pads among the last bptt positions
  const lastIdx = tf.cast(tf.sub(sl - 1, lastLens), "int32");
  const last = tf.sum(tf.mul(output, tf.expandDims(tf.oneHot(lastIdx, sl), -1)), 1);
  return tf.concat([last, max, avg], 1);
}

/** fastai's `awd_lstm_lm_split`: one group per LSTM, then the embedding with the decoder. */
export function awdLstmLmSplit(model: tf.LayersModel): tf.layers.Layer[][] {
  const lm = model.layers.find((l): l is AwdLstmLM => l instanceof AwdLstmLM);
  if (!lm) throw new Error("awdLstmLmSplit: the model has no AwdLstmLM layer");
  const [emb, ...rnns] = lm.encoder.holders;
  return [...rnns.map((r) => [r]), [emb!, lm.decoderHolder]];
}

/** fastai's `awd_lstm_clas_split`: the embedding, one group per LSTM, then the classifier head. */
export function awdLstmClasSplit(model: tf.LayersModel): tf.layers.Layer[][] {
  const enc = model.layers.find((l): l is AwdLstmClassifierEncoder => l instanceof AwdLstmClassifierEncoder);
  if (!enc) throw new Error("awdLstmClasSplit: the model has no AwdLstmClassifierEncoder layer");
  const head = model.layers.filter((l) => l !== enc && l.getClassName() !== "InputLayer");
  return [...enc.encoder.holders.map((h) => [h]), head];
}

/** Options of `textClassifierModel` (fastai's `get_text_classifier`). */
export interface TextClassifierModelOptions extends AwdLstmOptions {
  /** Dropout of the head's first layer (default `awdLstmClasConfig.outputP`, scaled by `dropMult`). */
  outputP?: number;
  /** Hidden sizes of the head (default [50]). */
  linFtrs?: readonly number[];
  /** Dropouts of the head's other layers (default 0.1 each, not scaled by `dropMult`, as fastai). */
  ps?: readonly number[];
  /** Tokens fed at a time (default 72). */
  bptt?: number;
  /** Pool over the last `maxLen` tokens (default 1440). */
  maxLen?: number;
  /** Multiplies every dropout of `awdLstmClasConfig` (default 1). */
  dropMult?: number;
  seed?: number;
}

/**
 * fastai's `get_text_classifier(AWD_LSTM, vocab_sz, n_class)`: `AwdLstmClassifierEncoder`, then
 * `PoolingLinearClassifier`'s layers: LinBnDrop(3·embSz → 50, p = outputP, ReLU), LinBnDrop(50 → nClass, p = 0.1).
 */
export function textClassifierModel(vocabSz: number, nClass: number, opts: TextClassifierModelOptions = {}): tf.LayersModel {
  const { dropMult = 1, linFtrs = textClassifierDefaults.linFtrs, ps, bptt, maxLen, seed = 0, ...given } = opts;
  const cfg = scaleDropouts({ ...awdLstmClasConfig, ...definedOnly(given) }, dropMult); // fastai scales a given config's dropouts too
  const headPs = [cfg.outputP, ...(ps ?? linFtrs.map(() => textClassifierDefaults.ps))];
  const dims = [3 * cfg.embSz, ...linFtrs, nClass];
  if (headPs.length !== dims.length - 1) throw new Error(`textClassifierModel: ps gives ${headPs.length - 1} dropouts for ${linFtrs.length} hidden layers (linFtrs); give one per layer`);
  const input = tf.input({ shape: [null], dtype: "int32", name: "ids" });
  const enc = new AwdLstmClassifierEncoder({ ...cfg, vocabSz, bptt, maxLen, seed, name: "encoder" });
  let x = enc.apply(input) as tf.SymbolicTensor;
  let n = seed * 10007 + 1;
  for (let i = 0; i < dims.length - 1; i++) {
    const last = i === dims.length - 2;
    x = LinBnDrop(dims[i]!, dims[i + 1]!, { p: headPs[i], act: last ? null : "relu" }).build(x, { name: `head.${i}`, seed: () => n++ });
  }
  return tf.model({ inputs: input, outputs: x, name: "text_classifier" });
}

/** fastai's `get_language_model(AWD_LSTM, vocab_sz, drop_mult=...)` as a one-layer `tf.LayersModel`. */
export function languageModel(vocabSz: number, opts: AwdLstmOptions & { outputP?: number; tieWeights?: boolean; outBias?: boolean; dropMult?: number; seed?: number } = {}): tf.LayersModel {
  const { dropMult = 1, ...given } = opts;
  const lm = new AwdLstmLM({ ...scaleDropouts({ ...awdLstmLmConfig, ...definedOnly(given) }, dropMult), vocabSz, name: "awd_lstm_lm" });
  return lm.asModel();
}

// ---- weights with fastai's names ------------------------------------------------------------

/** Values of a [rows, cols] matrix transposed (our [in, out] ↔ PyTorch's [out, in]). */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** Each encoder weight with its fastai name (`encoder.weight`, `rnns.0.weight_hh_l0_raw`, `rnns.0.module.weight_ih_l0`, ...) and whether PyTorch stores it transposed. */
function awdSlots(enc: AwdLstm): { key: string; v: LayerVariable; t: boolean }[] {
  return [
    { key: "encoder.weight", v: enc.encoder, t: false },
    ...enc.rnns.flatMap((r, l) => {
      const w = r.layers[0]!;
      return [
        { key: `rnns.${l}.weight_hh_l0_raw`, v: w.wHh, t: true },
        { key: `rnns.${l}.module.weight_ih_l0`, v: w.wIh, t: true },
        { key: `rnns.${l}.module.bias_ih_l0`, v: w.bIh, t: false },
        { key: `rnns.${l}.module.bias_hh_l0`, v: w.bHh, t: false },
      ];
    }),
  ];
}

/** The encoder's weights as fastai's `AWD_LSTM.state_dict()` (PyTorch layouts), keys prefixed by `prefix`: what `saveEncoder` writes. */
export function awdLstmStateDict(enc: AwdLstm, prefix = ""): Map<string, SafeTensorInput> {
  const out = new Map<string, SafeTensorInput>();
  for (const { key, v, t } of awdSlots(enc)) {
    const data = v.read().dataSync() as Float32Array;
    const shape = v.shape as number[];
    out.set(prefix + key, t ? { shape: [shape[1]!, shape[0]!], data: transposed(data, shape[0]!, shape[1]!) } : { shape, data: Float32Array.from(data) });
    if (key === "encoder.weight") out.set(`${prefix}encoder_dp.emb.weight`, out.get(prefix + key)!);
  }
  return out;
}

/** Load fastai-named encoder weights (`awdLstmStateDict`'s keys under `prefix`) into `enc`; a missing or mis-shaped tensor is an error naming it. */
export function loadAwdLstmStateDict(enc: AwdLstm, sd: Map<string, SafeTensor>, prefix = "", source = "the state dict"): void {
  const values = awdSlots(enc).map(({ key, v, t }) => {
    const s = sd.get(prefix + key);
    const shape = v.shape as number[];
    const want = t ? [shape[1]!, shape[0]!] : shape;
    if (!s) throw new Error(`${source} has no "${prefix + key}" (it holds ${[...sd.keys()].slice(0, 6).join(", ")}${sd.size > 6 ? ", ..." : ""})`);
    if (s.shape.join(",") !== want.join(",")) {
      throw new Error(`${source}: "${prefix + key}" has shape [${s.shape.join(", ")}], the model needs [${want.join(", ")}] (another vocabulary or size?)`);
    }
    const data = Float32Array.from(s.data);
    return { v, data: t ? transposed(data, want[0]!, want[1]!) : data, shape };
  });
  for (const { v, data, shape } of values) {
    const tt = tf.tensor(data, shape, "float32");
    v.write(tt);
    tt.dispose();
  }
}

/** The language model's weights as fastai's `SequentialRNN(AWD_LSTM, LinearDecoder).state_dict()` (`0.encoder.weight`, ..., `1.decoder.weight`, `1.decoder.bias`). */
export function awdLstmLMStateDict(lm: AwdLstmLM): Map<string, SafeTensorInput> {
  const out = awdLstmStateDict(lm.encoder, "0.");
  const w = lm.decoderWeight ? lm.decoderWeight.read() : lm.encoder.encoder.read();
  out.set("1.decoder.weight", { shape: w.shape as number[], data: Float32Array.from(w.dataSync() as Float32Array) });
  if (lm.decoderBias) out.set("1.decoder.bias", { shape: lm.decoderBias.shape as number[], data: Float32Array.from(lm.decoderBias.read().dataSync() as Float32Array) });
  return out;
}

/** Load `awdLstmLMStateDict`'s keys into `lm` (a tied decoder takes the embedding's values). */
export function loadAwdLstmLMStateDict(lm: AwdLstmLM, sd: Map<string, SafeTensor>, source = "the state dict"): void {
  loadAwdLstmStateDict(lm.encoder, sd, "0.", source);
  const put = (v: LayerVariable | undefined, key: string) => {
    const s = sd.get(key);
    if (!v) return;
    if (!s) throw new Error(`${source} has no "${key}"`);
    if (s.shape.join(",") !== v.shape.join(",")) throw new Error(`${source}: "${key}" has shape [${s.shape.join(", ")}], the model needs [${v.shape.join(", ")}]`);
    const t = tf.tensor(Float32Array.from(s.data), v.shape as number[], "float32");
    v.write(t);
    t.dispose();
  };
  put(lm.decoderWeight, "1.decoder.weight");
  put(lm.decoderBias, "1.decoder.bias");
}
