/**
 * Optimizers with parameter groups and per-step hyper-parameters, as fastai defines them.
 *
 * Each group has its own hyper-parameters (`lr`, `mom`, `wd`, ...) so discriminative learning rates
 * and one-cycle schedules can set them per batch. State (moving averages) is keyed by variable and
 * can be serialised (`stateDict`) for checkpoints.
 */
import * as tf from "../engine/tf";

/** Hyper-parameters of one parameter group (the fields an optimizer uses). */
export interface Hypers {
  /** Learning rate. */
  lr: number;
  /** Momentum (Adam's beta1; SGD's momentum). */
  mom: number;
  /** Adam's beta2 (the moving average of squared gradients). */
  sqrMom: number;
  /** Adam's epsilon, added to the square root of the debiased second moment. */
  eps: number;
  /** Weight decay (decoupled: `p *= 1 - lr*wd` before the step). */
  wd: number;
}

/** A parameter to optimise: the variable and whether weight decay applies to it. */
export interface Param {
  variable: tf.Variable;
  /** False for batch-norm and bias parameters unless the learner's `wdBnBias` is set. */
  doWd: boolean;
}

/** The learning rate argument fastai accepts: a number, one per group, or a `slice`. */
export type LrSpec = number | number[] | Slice;

/** fastai's `slice(start, stop)`: learning rates spread over parameter groups. */
export interface Slice {
  start?: number;
  stop: number;
}

/**
 * fastai's `slice`: `slice(lr)` gives `lr/10` to every group but the last, which gets `lr`;
 * `slice(lo, hi)` spreads `lo..hi` geometrically over the groups.
 */
export function slice(a: number, b?: number): Slice {
  return b === undefined ? { stop: a } : { start: a, stop: b };
}

function isSlice(v: unknown): v is Slice {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "stop" in v;
}

/** `n` values from `start` to `stop` spaced geometrically (fastai's `even_mults`). */
export function evenMults(start: number, stop: number, n: number): number[] {
  if (n === 1) return [stop];
  const step = Math.pow(stop / start, 1 / (n - 1));
  return Array.from({ length: n }, (_, i) => start * Math.pow(step, i));
}

/** Expand a number, array or slice into one value per group, as fastai's `set_hyper` does. */
export function expandPerGroup(v: LrSpec, nGroups: number, what = "lr"): number[] {
  let out: number[];
  if (isSlice(v)) {
    if (v.start) out = evenMults(v.start, v.stop, nGroups);
    else out = [...Array(nGroups - 1).fill(v.stop / 10), v.stop];
  } else if (Array.isArray(v)) {
    out = v;
  } else {
    out = [v];
  }
  if (out.length === 1 && nGroups > 1) out = Array(nGroups).fill(out[0]);
  if (out.length !== nGroups) {
    throw new Error(`${what} has ${out.length} values but the optimizer has ${nGroups} parameter groups`);
  }
  for (const x of out) {
    if (typeof x !== "number" || !Number.isFinite(x)) throw new Error(`${what} must be finite numbers, got ${JSON.stringify(v)}`);
  }
  return out;
}

/** Per-variable optimizer state: named tensors plus the step count. */
interface ParamState {
  step: number;
  tensors: Map<string, tf.Variable>;
}

/** Serialised optimizer state: hypers per group and, per parameter (in group order), its tensors. */
export interface OptimizerState {
  kind: string;
  hypers: Hypers[];
  params: { step: number; tensors: Record<string, tf.Tensor> }[];
}

/** Base optimizer: parameter groups, hypers per group, state keyed by variable. */
export abstract class Optimizer {
  /** The parameter groups (all parameters, trained or frozen). */
  readonly paramGroups: Param[][];
  /** One hyper-parameter record per group. */
  readonly hypers: Hypers[];
  protected readonly state = new Map<tf.Variable, ParamState>();
  /** A short name saved with the state (`Adam`, `SGD`). */
  abstract readonly kind: string;

  constructor(paramGroups: Param[][], defaults: Hypers) {
    if (paramGroups.length === 0) throw new Error("an optimizer needs at least one parameter group");
    this.paramGroups = paramGroups;
    this.hypers = paramGroups.map(() => ({ ...defaults }));
  }

  /** Set hyper-parameter `key` for every group from a number, per-group array or `slice`. */
  setHyper(key: keyof Hypers, v: LrSpec): void {
    const vals = expandPerGroup(v, this.hypers.length, key);
    this.hypers.forEach((h, i) => (h[key] = vals[i]!));
  }

  /** Apply one step given gradients for the parameters being trained (missing ones are skipped). */
  step(grads: Map<tf.Variable, tf.Tensor>): void {
    this.paramGroups.forEach((group, gi) => {
      const h = this.hypers[gi]!;
      for (const p of group) {
        const g = grads.get(p.variable);
        if (!g) continue;
        let st = this.state.get(p.variable);
        if (!st) {
          st = { step: 0, tensors: new Map() };
          this.state.set(p.variable, st);
        }
        st.step += 1;
        this.update(p, g, h, st);
      }
    });
  }

  /** One parameter's update; subclasses implement it with `tf.tidy` and `variable.assign`. */
  protected abstract update(p: Param, g: tf.Tensor, h: Hypers, st: ParamState): void;

  /** The state tensor `name` of a parameter, created as zeros on first use. */
  protected slot(p: Param, st: ParamState, name: string): tf.Variable {
    let v = st.tensors.get(name);
    if (!v) {
      v = tf.variable(tf.zerosLike(p.variable), false);
      st.tensors.set(name, v);
    }
    return v;
  }

  /** Forget all state (moving averages, step counts). */
  clearState(): void {
    for (const st of this.state.values()) for (const t of st.tensors.values()) t.dispose();
    this.state.clear();
  }

  /** A copy of the state (clones; caller disposes with `disposeState`), parameters in group order. */
  stateDict(): OptimizerState {
    const params: OptimizerState["params"] = [];
    for (const group of this.paramGroups) {
      for (const p of group) {
        const st = this.state.get(p.variable);
        const tensors: Record<string, tf.Tensor> = {};
        if (st) for (const [k, t] of st.tensors) tensors[k] = t.clone();
        params.push({ step: st?.step ?? 0, tensors });
      }
    }
    return { kind: this.kind, hypers: this.hypers.map((h) => ({ ...h })), params };
  }

  /** Restore state saved by `stateDict` (tensors are copied; the given ones stay the caller's). */
  loadStateDict(s: OptimizerState): void {
    const all = this.paramGroups.flat();
    if (s.params.length !== all.length) {
      throw new Error(`optimizer state has ${s.params.length} parameters but this model has ${all.length}`);
    }
    if (s.hypers.length !== this.hypers.length) {
      throw new Error(`optimizer state has ${s.hypers.length} parameter groups but this learner has ${this.hypers.length}`);
    }
    this.clearState();
    s.hypers.forEach((h, i) => Object.assign(this.hypers[i]!, h));
    all.forEach((p, i) => {
      const ps = s.params[i]!;
      if (ps.step === 0 && Object.keys(ps.tensors).length === 0) return;
      const tensors = new Map<string, tf.Variable>();
      for (const [k, t] of Object.entries(ps.tensors)) {
        if (!tf.util.arraysEqual(t.shape, p.variable.shape)) {
          throw new Error(`optimizer state "${k}" of parameter ${i} has shape [${t.shape}] but ${p.variable.name} has [${p.variable.shape}]`);
        }
        tensors.set(k, tf.variable(t, false));
      }
      this.state.set(p.variable, { step: ps.step, tensors });
    });
  }

  /** Release all state tensors. */
  dispose(): void {
    this.clearState();
  }
}

/** Dispose the tensors of a state returned by `stateDict`. */
export function disposeState(s: OptimizerState): void {
  for (const p of s.params) for (const t of Object.values(p.tensors)) t.dispose();
}

/** Options of `Adam` (fastai's defaults). */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** beta1 (default 0.9). */
  mom?: number;
  /** beta2 (default 0.99). */
  sqrMom?: number;
  /** Added to the denominator (default 1e-5). */
  eps?: number;
  /** Decoupled weight decay (default 0.01). */
  wd?: number;
}

/**
 * fastai's Adam with decoupled weight decay (AdamW), per parameter:
 *   1. p ← p·(1 − lr·wd)                         (only when the parameter takes weight decay)
 *   2. m ← mom·m + (1 − mom)·g;   v ← sqrMom·v + (1 − sqrMom)·g²
 *   3. p ← p − lr/(1 − mom^t) · m / (√(v/(1 − sqrMom^t)) + eps)
 * This equals `torch.optim.AdamW(betas=(mom, sqrMom), eps, weight_decay=wd)`.
 */
export class AdamOptimizer extends Optimizer {
  readonly kind = "Adam";
  constructor(groups: Param[][], opts: AdamOptions = {}) {
    super(groups, {
      lr: opts.lr ?? 1e-3,
      mom: opts.mom ?? 0.9,
      sqrMom: opts.sqrMom ?? 0.99,
      eps: opts.eps ?? 1e-5,
      wd: opts.wd ?? 0.01,
    });
  }
  protected update(p: Param, g: tf.Tensor, h: Hypers, st: ParamState): void {
    const m = this.slot(p, st, "gradAvg");
    const v = this.slot(p, st, "sqrAvg");
    tf.tidy(() => {
      let w: tf.Tensor = p.variable;
      if (p.doWd && h.wd !== 0) w = tf.mul(w, 1 - h.lr * h.wd);
      const m1 = tf.add(tf.mul(m, h.mom), tf.mul(g, 1 - h.mom));
      const v1 = tf.add(tf.mul(v, h.sqrMom), tf.mul(tf.square(g), 1 - h.sqrMom));
      const debias1 = 1 - Math.pow(h.mom, st.step);
      const debias2 = 1 - Math.pow(h.sqrMom, st.step);
      const denom = tf.add(tf.sqrt(tf.div(v1, debias2)), h.eps);
      const w1 = tf.sub(w, tf.mul(tf.div(m1, denom), h.lr / debias1));
      m.assign(m1);
      v.assign(v1);
      p.variable.assign(w1);
    });
  }
}

/** Options of `SGD` (fastai's defaults). */
export interface SGDOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Momentum, undampened: `m ← mom·m + g` (default 0: plain SGD). */
  mom?: number;
  /** Decoupled weight decay (default 0). */
  wd?: number;
}

/** fastai's SGD: 1. p ← p·(1 − lr·wd); 2. m ← mom·m + g (when mom ≠ 0); 3. p ← p − lr·m. */
export class SGDOptimizer extends Optimizer {
  readonly kind = "SGD";
  /** As in fastai, momentum is used only when created with `mom ≠ 0` (a one-cycle `mom` schedule then varies it). */
  readonly useMom: boolean;
  constructor(groups: Param[][], opts: SGDOptions = {}) {
    super(groups, { lr: opts.lr ?? 1e-3, mom: opts.mom ?? 0, sqrMom: 0, eps: 0, wd: opts.wd ?? 0 });
    this.useMom = (opts.mom ?? 0) !== 0;
  }
  protected update(p: Param, g: tf.Tensor, h: Hypers, st: ParamState): void {
    const m = this.useMom ? this.slot(p, st, "gradAvg") : undefined;
    tf.tidy(() => {
      let w: tf.Tensor = p.variable;
      if (p.doWd && h.wd !== 0) w = tf.mul(w, 1 - h.lr * h.wd);
      let dir: tf.Tensor = g;
      if (m) {
        dir = tf.add(tf.mul(m, h.mom), g);
        m.assign(dir);
      }
      p.variable.assign(tf.sub(w, tf.mul(dir, h.lr)));
    });
  }
}

/** Builds an optimizer over parameter groups; `opts.lr` is the learner's learning rate. */
export type OptFunc = (groups: Param[][], opts: { lr: number }) => Optimizer;

/** fastai's `Adam` as an `optFunc` (AdamW: mom 0.9, sqrMom 0.99, eps 1e-5, wd 0.01); wrap to change defaults. */
export const Adam = (groups: Param[][], opts: AdamOptions = {}): Optimizer => new AdamOptimizer(groups, opts);

/** fastai's `SGD` as an `optFunc` (mom 0, wd 0); wrap to change defaults, e.g. `(g, o) => SGD(g, { ...o, mom: 0.9 })`. */
export const SGD = (groups: Param[][], opts: SGDOptions = {}): Optimizer => new SGDOptimizer(groups, opts);
