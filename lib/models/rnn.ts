/**
 * Recurrent models written by hand, as the book's chapter 12 writes them in PyTorch: a `Module` is a
 * tfjs layer whose `forward(x, training)` is plain tensor code over parameters it registers, with
 * PyTorch's initialisations (so a PyTorch port of the same recipe trains alike). Building blocks:
 * `Linear`, `Embedding`, `RNN` (tanh), `LSTM`, `Dropout`; `ModelResetter` clears hidden state at
 * the start of training and validation; `RNNRegularizer` (a callback) adds activation regularisation (AR) and
 * temporal activation regularisation (TAR) to the loss the gradients come from.
 */
import * as tf from "../engine/tf";
import type { Learner } from "../learner/learner";
import { resetModelState } from "../learner/predict";
import type { Callback } from "../learner/callback";
import { Rng } from "../data/random";

type Kwargs = Record<string, unknown>;
type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

/** Options of `Module`. */
export interface ModuleOptions {
  /** Shape of the output for an input shape (both with the batch axis), e.g. `(s) => [s[0], vocab]`. */
  outputShape: (input: tf.Shape) => tf.Shape;
  /** Seed of the initialisations and dropout masks (default 0). */
  seed?: number;
  /** Layer name (default: tfjs picks a unique one). */
  name?: string;
}

/**
 * fastai's / PyTorch's `Module` as a tfjs layer: register parameters with `param` (or the blocks below),
 * write `forward`, then `asModel()` gives the `tf.LayersModel` a `Learner` trains. Inputs are int32 token ids.
 */
export abstract class Module extends tf.layers.Layer {
  static className = "TsfastModule";
  /** The generator behind initialisations and dropout masks. */
  readonly rng: Rng;
  private readonly outShape: (input: tf.Shape) => tf.Shape;

  constructor(opts: ModuleOptions) {
    super({ name: opts.name, inputShape: [null], dtype: "int32" } as tf.serialization.ConfigDict);
    this.rng = new Rng(opts.seed ?? 0);
    this.outShape = opts.outputShape;
  }

  /**
   * A trainable parameter, drawn uniform in [-bound, bound], normal with std `normal`, or zeros. `holder`
   * (default this module) is the layer that owns it: a module split into parameter groups gives each
   * group its own holder layer (see `awd-lstm.ts`).
   */
  param(name: string, shape: number[], init: { uniform: number } | { normal: number } | "zeros", holder: tf.layers.Layer = this): LayerVariable {
    const seed = this.rng.int(2 ** 31);
    const initializer =
      init === "zeros"
        ? tf.initializers.zeros()
        : "uniform" in init
          ? tf.initializers.randomUniform({ minval: -init.uniform, maxval: init.uniform, seed })
          : tf.initializers.randomNormal({ mean: 0, stddev: init.normal, seed });
    // addWeight is protected in tfjs's typings; a module adds weights to its own holder layers
    return (holder as unknown as Module).addWeight(name, shape, "float32", initializer, undefined, true);
  }

  /** The computation: int32 ids in, logits out; `training` turns dropout on. */
  abstract forward(x: tf.Tensor, training: boolean): tf.Tensor;

  /** Forget any hidden state (called by `ModelResetter`); stateless modules have none. */
  reset(): void {}

  override build(): void {
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return this.outShape((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    const out = this.forward(x, Boolean(kwargs["training"]));
    this.keepActivations();
    return out;
  }

  /** The tensors of `activations` this module kept from its last call. */
  private keptActivations: tf.Tensor[] = [];

  override dispose(): ReturnType<tf.layers.Layer["dispose"]> {
    tf.dispose(this.keptActivations);
    this.keptActivations = [];
    return super.dispose();
  }

  /**
   * A module that sets `activations` (see `RegularizedActivations`) in `forward` sets intermediate tensors:
   * tfjs-layers disposes every one of them when the model's call returns, before `RNNRegularizer` reads them
   * in `afterLoss`. They are kept here until the next call (or `dispose()`), which disposes them: a module whose
   * `activations.out` is the tensor it returns gives up that output at its next training call too.
   */
  private keepActivations(): void {
    const acts = (this as RegularizedActivations).activations;
    const now = acts ? [...new Set([acts.raw, acts.out])] : [];
    tf.dispose(this.keptActivations.filter((t) => !now.includes(t)));
    this.keptActivations = now.map((t) => tf.keep(t));
  }

  override getClassName(): string {
    return Module.className;
  }

  /** This module as a one-layer `tf.LayersModel`, what `new Learner(dls, model)` takes. */
  asModel(): tf.LayersModel {
    return tf.sequential({ layers: [this] });
  }
}

/** PyTorch's `nn.Linear`: `x W + b`, weight and bias uniform in ±1/√nIn. */
export class Linear {
  readonly weight: LayerVariable;
  readonly bias?: LayerVariable;
  constructor(owner: Module, name: string, nIn: number, nOut: number, opts: { bias?: boolean } = {}) {
    const bound = 1 / Math.sqrt(nIn);
    this.weight = owner.param(`${name}_weight`, [nIn, nOut], { uniform: bound });
    if (opts.bias ?? true) this.bias = owner.param(`${name}_bias`, [nOut], { uniform: bound });
  }
  /** `x` of shape [..., nIn] → [..., nOut]. */
  forward(x: tf.Tensor): tf.Tensor {
    const w = this.weight.read();
    const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, w.shape[0]!]);
    let y: tf.Tensor = tf.matMul(flat, w as tf.Tensor2D);
    if (this.bias) y = tf.add(y, this.bias.read());
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]!]);
  }
}

/** PyTorch's `nn.Embedding`: a [vocab, dim] table, normal(0, 1). */
export class Embedding {
  readonly weight: LayerVariable;
  constructor(owner: Module, name: string, vocab: number, dim: number) {
    this.weight = owner.param(`${name}_weight`, [vocab, dim], { normal: 1 });
  }
  /** int32 ids of any shape → their rows, shape [...ids, dim]. */
  forward(ids: tf.Tensor): tf.Tensor {
    return tf.gather(this.weight.read(), tf.cast(ids, "int32"));
  }
}

/** Weights of one recurrent layer, as PyTorch names them: input and hidden matrices (gates stacked), two biases. */
interface RecurrentWeights {
  wIh: LayerVariable;
  wHh: LayerVariable;
  bIh: LayerVariable;
  bHh: LayerVariable;
}

function recurrentLayers(owner: Module, name: string, nIn: number, nHidden: number, nLayers: number, gates: number, holder?: tf.layers.Layer): RecurrentWeights[] {
  const u = { uniform: 1 / Math.sqrt(nHidden) };
  return Array.from({ length: nLayers }, (_, l) => ({
    wIh: owner.param(`${name}_weight_ih_l${l}`, [l === 0 ? nIn : nHidden, gates * nHidden], u, holder),
    wHh: owner.param(`${name}_weight_hh_l${l}`, [nHidden, gates * nHidden], u, holder),
    bIh: owner.param(`${name}_bias_ih_l${l}`, [gates * nHidden], u, holder),
    bHh: owner.param(`${name}_bias_hh_l${l}`, [gates * nHidden], u, holder),
  }));
}

/** Per-step outputs [bs, h] as one [bs, sl, h] tensor: concatenated time first, then transposed (the gradient is a split; tfjs's stack would unstack, element by element). */
function stackSteps(outs: tf.Tensor[]): tf.Tensor {
  const [bs, h] = outs[0]!.shape as [number, number];
  return tf.transpose(tf.concat(outs.map((o) => tf.reshape(o, [1, bs, h])), 0), [1, 0, 2]);
}

/** The input projection of every time step in one matrix product: [bs, sl, nIn] → sl tensors [bs, gates·nHidden]. */
function projectInputs(x: tf.Tensor, w: RecurrentWeights): tf.Tensor[] {
  const [bs, sl, nIn] = x.shape as [number, number, number];
  const wIh = w.wIh.read() as tf.Tensor2D;
  const proj = tf.add(tf.matMul(tf.reshape(x, [bs * sl, nIn]), wIh), tf.add(w.bIh.read(), w.bHh.read()));
  // Time first, then split along axis 0: each step is a contiguous block. (tfjs's unstack copies
  // element by element: 200 ms a call for [64, 16, 256] along axis 1, 58 ms along axis 0.)
  // (A one-way split has a one-tensor gradient that tfjs's SplitV gradient cannot concatenate: no split for one step.)
  const timeFirst = tf.transpose(tf.reshape(proj, [bs, sl, wIh.shape[1]]), [1, 0, 2]);
  const steps = sl === 1 ? [timeFirst] : tf.split(timeFirst, sl, 0);
  return steps.map((s) => tf.reshape(s, [bs, wIh.shape[1]]));
}

/** PyTorch's `nn.RNN(nIn, nHidden, nLayers, batch_first=True)` with tanh: h_t = tanh(x_t W_ih + b_ih + h_{t-1} W_hh + b_hh), layer by layer. */
export class RNN {
  readonly layers: RecurrentWeights[];
  constructor(owner: Module, name: string, nIn: number, readonly nHidden: number, readonly nLayers = 1) {
    this.layers = recurrentLayers(owner, name, nIn, nHidden, nLayers, 1);
  }
  /** `x` [bs, sl, nIn], `h` one [bs, nHidden] per layer → outputs of the last layer [bs, sl, nHidden] and the final states. */
  forward(x: tf.Tensor, h: tf.Tensor[]): { out: tf.Tensor; h: tf.Tensor[] } {
    let seq = x;
    const hs: tf.Tensor[] = [];
    this.layers.forEach((w, l) => {
      const wHh = w.wHh.read() as tf.Tensor2D;
      let ht = h[l]!;
      const outs = projectInputs(seq, w).map((xt) => (ht = tf.tanh(tf.add(xt, tf.matMul(ht as tf.Tensor2D, wHh)))));
      hs.push(ht);
      seq = stackSteps(outs);
    });
    return { out: seq, h: hs };
  }
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** The storage of an engine that keeps a tensor's values in a JavaScript array (cpu, native), as tfjs's cpu backend has it. */
interface ArrayStorage {
  data?: { get(id: unknown): { values?: unknown } | undefined };
  alloc?: (n: number) => Float32Array;
}
const storageOf = (t: tf.Tensor) => (tf.engine() as unknown as { state: { tensorInfo: { get(id: unknown): { backend?: ArrayStorage } | undefined } } }).state.tensorInfo.get(t.dataId)?.backend;

/**
 * A float32 tensor's values: its own array where the engine keeps one (read, never written or kept: the native
 * engine may then still recycle it, where `dataSync` would mark it as read out for good), else `dataSync`'s copy.
 */
function valuesOf(t: tf.Tensor): Float32Array {
  const v = storageOf(t)?.data?.get(t.dataId)?.values;
  return v instanceof Float32Array ? v : (t.dataSync() as Float32Array);
}

/** An output array of `n` values: from the native engine's pool when that engine runs, else a new one. */
function outputArray(n: number): Float32Array {
  const alloc = (tf.backend() as unknown as ArrayStorage).alloc;
  return alloc ? alloc.call(tf.backend(), n) : new Float32Array(n);
}

/**
 * One LSTM step's element-wise part as one op: `gates` [bs, 4h] (i, f, g, o before their activations) and
 * `state` [bs, 2h] (h_{t-1} then c_{t-1} along the last axis; only c_{t-1} is read) → the state [bs, 2h] of
 * h_t = σ(o)·tanh(c_t), c_t = σ(f)·c_{t-1} + σ(i)·tanh(g). Written as tfjs ops this step is ten kernels forward
 * and about twice as many backward, each a dispatch and a tape entry for a few thousand values: the lessons'
 * LSTMs spent their time there. Here it is one loop each way over the values (`valuesOf`: the tensor's own array
 * on the native and cpu engines), in doubles rounded to float32 at each stored value,
 * so every engine computes the same numbers. The backward pass recomputes the activations from the saved
 * inputs: dc = dh·σ(o)·(1 − tanh²(c_t)) + dc_t, then di, df, dg, do and dc_{t-1} = dc·σ(f).
 */
const lstmCellOp = tf.customGrad((...args: unknown[]) => {
  const [gates, state, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  const [bs, h4] = gates.shape;
  const h = h4 / 4;
  const g = valuesOf(gates), st = valuesOf(state);
  const out = outputArray(bs * 2 * h);
  for (let b = 0; b < bs; b++) {
    const gi = b * h4, si = b * 2 * h;
    for (let j = 0; j < h; j++) {
      const c = Math.fround(sigmoid(g[gi + h + j]!) * st[si + h + j]! + sigmoid(g[gi + j]!) * Math.tanh(g[gi + 2 * h + j]!));
      out[si + h + j] = c;
      out[si + j] = sigmoid(g[gi + 3 * h + j]!) * Math.tanh(c);
    }
  }
  const value = tf.tensor2d(out, [bs, 2 * h]);
  save([gates, state, value]);
  return {
    value,
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [gs, ss, vs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const d = valuesOf(Array.isArray(dy) ? dy[0]! : dy);
      const gv = valuesOf(gs), sv = valuesOf(ss), cv = valuesOf(vs);
      const dGates = outputArray(bs * h4), dState = outputArray(bs * 2 * h);
      for (let b = 0; b < bs; b++) {
        const gi = b * h4, si = b * 2 * h;
        for (let j = 0; j < h; j++) {
          const i = sigmoid(gv[gi + j]!), f = sigmoid(gv[gi + h + j]!), gg = Math.tanh(gv[gi + 2 * h + j]!), o = sigmoid(gv[gi + 3 * h + j]!);
          const tc = Math.tanh(cv[si + h + j]!);
          const dh = d[si + j]!;
          const dc = dh * o * (1 - tc * tc) + d[si + h + j]!;
          dGates[gi + j] = dc * gg * i * (1 - i);
          dGates[gi + h + j] = dc * sv[si + h + j]! * f * (1 - f);
          dGates[gi + 2 * h + j] = dc * i * (1 - gg * gg);
          dGates[gi + 3 * h + j] = dh * tc * o * (1 - o);
          dState[si + j] = 0; // the cell does not read h_{t-1} (and a pooled array holds old values)
          dState[si + h + j] = dc * f;
        }
      }
      return [tf.tensor2d(dGates, [bs, h4]), tf.tensor2d(dState, [bs, 2 * h])];
    },
  };
}) as unknown as (gates: tf.Tensor2D, state: tf.Tensor2D) => tf.Tensor2D;

/** `lstmCellOp` on float32 [bs, 4h] gates and a [bs, 2h] state (h then c), checked. */
export function lstmCell(gates: tf.Tensor2D, state: tf.Tensor2D): tf.Tensor2D {
  const [bs, h4] = gates.shape;
  if (h4 % 4 !== 0 || state.shape[0] !== bs || state.shape[1] !== h4 / 2) {
    throw new Error(`lstmCell: gates [bs, 4h] and state [bs, 2h], got [${gates.shape}] and [${state.shape}]`);
  }
  const f32 = (t: tf.Tensor2D) => (t.dtype === "float32" ? t : (tf.cast(t, "float32") as tf.Tensor2D));
  return lstmCellOp(f32(gates), f32(state));
}

/**
 * PyTorch's `nn.LSTM(nIn, nHidden, nLayers, batch_first=True)`, gates in PyTorch's order (input, forget, cell, output):
 *   1. gates = x_t W_ih + b_ih + h_{t-1} W_hh + b_hh   (the x_t W_ih of all steps in one product)
 *   2. c_t = σ(f) c_{t-1} + σ(i) tanh(g)
 *   3. h_t = σ(o) tanh(c_t)
 * (2 and 3 as one op, `lstmCell`.) `dropout` between layers (not after the last), as PyTorch's `dropout` argument.
 */
export class LSTM {
  readonly layers: RecurrentWeights[];
  /** `holder`: the layer that owns the weights (default `owner`). */
  constructor(owner: Module, name: string, nIn: number, readonly nHidden: number, readonly nLayers = 1, holder?: tf.layers.Layer) {
    this.layers = recurrentLayers(owner, name, nIn, nHidden, nLayers, 4, holder);
  }
  /**
   * `x` [bs, sl, nIn], states `h` and `c` (one [bs, nHidden] per layer) → last layer's outputs [bs, sl, nHidden] and final states.
   * `wHh` replaces the hidden-to-hidden matrices for this call (one per layer; AWD-LSTM's weight dropout).
   */
  forward(x: tf.Tensor, h: tf.Tensor[], c: tf.Tensor[], wHh?: tf.Tensor[]): { out: tf.Tensor; h: tf.Tensor[]; c: tf.Tensor[] } {
    let seq = x;
    const hs: tf.Tensor[] = [];
    const cs: tf.Tensor[] = [];
    this.layers.forEach((w, l) => {
      const whh = (wHh?.[l] ?? w.wHh.read()) as tf.Tensor2D;
      const [bs, nh] = h[l]!.shape as [number, number];
      let ht = h[l]! as tf.Tensor2D;
      let state = tf.concat([ht, c[l]!], 1) as tf.Tensor2D; // [h, c]: the cell's state in one tensor
      const outs = projectInputs(seq, w).map((xt) => {
        state = lstmCell(tf.add(xt, tf.matMul(ht, whh)) as tf.Tensor2D, state);
        ht = tf.slice(state, [0, 0], [bs, nh]);
        return ht;
      });
      hs.push(ht);
      cs.push(tf.slice(state, [0, nh], [bs, nh]));
      seq = stackSteps(outs);
    });
    return { out: seq, h: hs, c: cs };
  }
}

/** PyTorch's `nn.Dropout(p)`: zero each value with probability `p` while training, scale the rest by 1/(1−p); masks drawn from the owner's seeded generator. */
export function dropout(owner: Module, x: tf.Tensor, p: number, training: boolean): tf.Tensor {
  if (!training || p === 0) return x;
  return tf.dropout(x, p, undefined, owner.rng.int(2 ** 31));
}

/** Zero states: `n` tensors of shape [bs, nHidden]. */
export function zeroStates(n: number, bs: number, nHidden: number): tf.Tensor[] {
  return Array.from({ length: n }, () => tf.zeros([bs, nHidden]));
}

/**
 * Hidden state carried from one batch to the next (the book's `self.h = self.h.detach()`): kept out of
 * tfjs's scopes, replaced each batch. A tensor from an earlier batch is a constant to this batch's
 * gradient tape, which is what `detach` does in PyTorch: back-propagation stops at the batch boundary.
 */
export class CarriedState {
  private state?: tf.Tensor[];
  /** The state before: this batch's gradient still reads it, so it is disposed one batch later. */
  private previous?: tf.Tensor[];
  /** The carried tensors, or `init()` when there are none (after `reset`) or the batch size changed. */
  get(bs: number, init: () => tf.Tensor[]): tf.Tensor[] {
    if (this.state && this.state[0]!.shape[0] === bs) return this.state;
    return init();
  }
  /** Carry `next` to the next batch. */
  set(next: tf.Tensor[]): void {
    if (this.previous) tf.dispose(this.previous);
    this.previous = this.state;
    this.state = next.map((t) => tf.keep(t.clone()));
  }
  /** Forget the state. */
  reset(): void {
    for (const s of [this.previous, this.state]) if (s) tf.dispose(s);
    this.state = this.previous = undefined;
  }
}

/** fastai's `ModelResetter`: calls `reset()` on the model's layers before training, before validation and after the fit. */
export class ModelResetter {
  readonly name = "ModelResetter";
  learn?: Learner;
  private resetAll(learn: Learner): void {
    resetModelState(learn.model);
  }
  beforeTrain(learn: Learner): void {
    this.resetAll(learn);
  }
  beforeValidate(learn: Learner): void {
    this.resetAll(learn);
  }
  afterFit(learn: Learner): void {
    this.resetAll(learn);
  }
}

/** What `RNNRegularizer` reads from a model: the last layer's raw and dropped-out outputs of the current training batch. */
export interface RegularizedActivations {
  /** Set by the model's forward while training (cleared otherwise): raw [bs, sl, h] and after dropout. */
  activations?: { raw: tf.Tensor; out: tf.Tensor };
}

/** Options of `RNNRegularizer`. */
export interface RNNRegularizerOptions {
  /** AR weight: alpha · mean(out²) on the last layer's outputs after dropout (default 2, what fastai's text learners use). */
  alpha?: number;
  /** TAR weight: beta · mean((raw[:, t+1] − raw[:, t])²) on the same outputs before dropout (default 1). */
  beta?: number;
  /**
   * Where the activations are kept (default: the first layer of `learn.model` that has an `activations`
   * field, as a `Module` like the AWD-LSTM or the lesson's LMModel7 sets it while training).
   */
  source?: RegularizedActivations;
}

/**
 * fastai's `RNNRegularizer` callback: while training, `afterLoss` adds
 *   AR:  alpha · mean(out²)                         (out: the last layer's outputs after dropout)
 *   TAR: beta · mean((raw[:, t+1] − raw[:, t])²)     (raw: the same before dropout)
 * to `learn.lossGrad`, what the gradients are taken of. As in fastai, the recorded loss
 * (`learn.loss`, the training loss printed and plotted) stays the plain loss, and validation is untouched.
 * (fastai's bare callback defaults to alpha = beta = 0; its text learners pass 2 and 1, our defaults.)
 */
export class RNNRegularizer implements Callback {
  /** fastai's: after the callbacks that replace the loss (MixUp's order 0), before GradientAccumulation (6), which scales what it adds. */
  order = 1;
  readonly alpha: number;
  readonly beta: number;
  /** Validation losses are not regularised. */
  runValid = false;
  private readonly source?: RegularizedActivations;

  constructor(opts: RNNRegularizerOptions = {}) {
    this.alpha = opts.alpha ?? 2;
    this.beta = opts.beta ?? 1;
    for (const [k, v] of [["alpha", this.alpha], ["beta", this.beta]] as const) {
      if (!(Number.isFinite(v) && v >= 0)) throw new Error(`RNNRegularizer: ${k} is a weight ≥ 0 (0 turns it off); got ${v}`);
    }
    this.source = opts.source;
  }

  private activationsOf(learn: Learner): { raw: tf.Tensor; out: tf.Tensor } | undefined {
    if (this.source) return this.source.activations;
    for (const layer of learn.model.layers) {
      if ("activations" in layer) return (layer as RegularizedActivations).activations;
    }
    throw new Error(
      "RNNRegularizer: no layer of the model keeps `activations` ({ raw, out } of its last recurrent layer, set in forward while " +
        "training); set them in your Module's forward, or pass { source } to RNNRegularizer",
    );
  }

  afterLoss(learn: Learner): void {
    if (!learn.training) return;
    const acts = this.activationsOf(learn);
    if (!acts) return;
    let l = learn.lossGrad!;
    if (this.alpha) l = tf.add(l, tf.mul(this.alpha, tf.mean(tf.square(acts.out))));
    const sl = acts.raw.shape[1]!;
    if (this.beta && sl > 1) {
      const d = tf.sub(tf.slice(acts.raw, [0, 1, 0], [-1, sl - 1, -1]), tf.slice(acts.raw, [0, 0, 0], [-1, sl - 1, -1]));
      l = tf.add(l, tf.mul(this.beta, tf.mean(tf.square(d))));
    }
    learn.lossGrad = l;
  }
}
