/**
 * Optimizers with parameter groups and per-step hyper-parameters, built from steppers as fastai defines them.
 *
 * Each group has its own hyper-parameters (`lr`, `mom`, `wd`, ...) so discriminative learning rates
 * and one-cycle schedules can set them per batch. State (moving averages) is keyed by variable and
 * can be serialised (`stateDict`) for checkpoints.
 */
import * as tf from "../engine/tf";
import { adamStep, averageGrad, averageSqrGrad, l2Reg, momentumStep, partial, rmsPropStep, sgdStep, stepStat, weightDecay } from "./steppers";
import type { StepArgs, Stepper } from "./steppers";
import { nativeAdamStep } from "../engine/native/optimizer";

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

/** What `new Optimizer` optimises: variables (one group, all with weight decay), `Param`s, or groups of `Param`s. */
export type ParamsArg = tf.Variable[] | Param[] | Param[][];

/** Gradients for `step`: by variable, or by variable name as `tf.variableGrads` returns them. */
export type GradsArg = Map<tf.Variable, tf.Tensor> | tf.NamedTensorMap;

/** Options of `new Optimizer`: the hyper-parameters' starting values and a name. */
export interface OptimizerOptions extends Partial<Hypers> {
  /** A short name saved with the state (default "Optimizer"). */
  kind?: string;
}

/** Hyper-parameters an `Optimizer` starts with when not given (each optimizer function sets its own). */
export const hyperDefaults: Hypers = { lr: 1e-3, mom: 0, sqrMom: 0.99, eps: 1e-5, wd: 0 };

/** The state keys a stepper may return that are saved between steps. */
const STATE_TENSORS = ["gradAvg", "sqrAvg"] as const;

function isVariable(v: unknown): v is tf.Variable {
  return v instanceof tf.Variable;
}

/** Normalise `ParamsArg` into parameter groups, or say what was wrong with it. */
function toGroups(params: ParamsArg): Param[][] {
  if (!Array.isArray(params) || params.length === 0) {
    throw new Error("an optimizer needs parameters: an array of tf.Variable, of { variable, doWd }, or of such arrays (groups)");
  }
  if (params.every(isVariable)) return [params.map((variable) => ({ variable, doWd: true }))];
  const isParam = (x: unknown): x is Param => typeof x === "object" && x !== null && isVariable((x as Param).variable);
  if (params.every(isParam)) return [params];
  if (params.every((g) => Array.isArray(g) && g.every(isParam))) return params as Param[][];
  const i = params.findIndex((x) => !isVariable(x) && !isParam(x) && !(Array.isArray(x) && x.every(isParam)));
  throw new Error(
    `optimizer parameter ${i >= 0 ? i : 0} is not a tf.Variable, a { variable, doWd } or an array of them ` +
      `(mixing the three kinds is not allowed either); make trainable values with tf.variable(...)`,
  );
}

/**
 * fastai's `Optimizer`: parameter groups with hyper-parameters per group (`lr`, `mom`, ... so
 * discriminative learning rates and one-cycle schedules can set them per batch), and a list of
 * `steppers` (see `steppers.ts`) run in order for every parameter at each `step`.
 * `new Optimizer(params, [weightDecay, sgdStep], { lr: 0.1 })` is plain SGD.
 */
export class Optimizer {
  /** The parameter groups (all parameters, trained or frozen). */
  readonly paramGroups: Param[][];
  /** One hyper-parameter record per group. */
  readonly hypers: Hypers[];
  /** The steppers run, in order, for each parameter. */
  readonly steppers: Stepper[];
  /** A short name saved with the state (`Adam`, `SGD`). */
  readonly kind: string;
  protected readonly state = new Map<tf.Variable, ParamState>();

  constructor(params: ParamsArg, steppers: Stepper[], opts: OptimizerOptions = {}) {
    this.paramGroups = toGroups(params);
    if (!Array.isArray(steppers) || steppers.length === 0) {
      throw new Error("an optimizer needs at least one stepper, e.g. new Optimizer(params, [sgdStep], { lr: 0.1 })");
    }
    steppers.forEach((s, i) => {
      if (typeof s !== "function") throw new Error(`stepper ${i} is not a function (got ${typeof s}); steppers are functions like sgdStep`);
    });
    this.steppers = steppers;
    const { kind, ...given } = opts;
    this.kind = kind ?? "Optimizer";
    const start: Hypers = { ...hyperDefaults };
    for (const [k, v] of Object.entries(given)) {
      if (v === undefined) continue;
      if (!(k in hyperDefaults)) throw new Error(`unknown optimizer option "${k}"; the hyper-parameters are ${Object.keys(hyperDefaults).join(", ")}`);
      if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`optimizer option ${k} must be a finite number, got ${v}`);
      start[k as keyof Hypers] = v;
    }
    this.hypers = this.paramGroups.map(() => ({ ...start }));
  }

  /** Set hyper-parameter `key` for every group from a number, per-group array or `slice`. */
  setHyper(key: keyof Hypers, v: LrSpec): void {
    const vals = expandPerGroup(v, this.hypers.length, key);
    this.hypers.forEach((h, i) => (h[key] = vals[i]!));
  }

  /** Apply one step given gradients for the parameters being trained (parameters without one are skipped). */
  step(grads: GradsArg): void {
    const byVar = grads instanceof Map;
    if (!byVar && (typeof grads !== "object" || grads === null || Array.isArray(grads) || grads instanceof tf.Tensor)) {
      throw new Error("step needs the gradients as a Map from variable to gradient, or by variable name as tf.variableGrads returns them");
    }
    const given = byVar ? grads.size : Object.keys(grads).length;
    let used = 0;
    this.paramGroups.forEach((group, gi) => {
      const h = this.hypers[gi]!;
      for (const p of group) {
        const g = byVar ? grads.get(p.variable) : (grads as tf.NamedTensorMap)[p.variable.name];
        if (!g) continue;
        if (!tf.util.arraysEqual(g.shape, p.variable.shape)) {
          throw new Error(`the gradient of ${p.variable.name} has shape [${g.shape}] but the parameter has [${p.variable.shape}]`);
        }
        let st = this.state.get(p.variable);
        if (!st) {
          st = { step: 0, tensors: new Map() };
          this.state.set(p.variable, st);
        }
        this.update(p, g, h, st);
        used += 1;
      }
    });
    if (given > 0 && used === 0) {
      const names = byVar ? [...grads.keys()].map((v) => v.name) : Object.keys(grads);
      throw new Error(
        `none of the ${given} gradients (${names.slice(0, 3).join(", ")}${given > 3 ? ", ..." : ""}) belongs to this optimizer's parameters; ` +
          `compute them with respect to the variables the optimizer was made with`,
      );
    }
  }

  /** One parameter's update: run the steppers in one `tf.tidy`, then write back the parameter and the state. */
  protected update(p: Param, g: tf.Tensor, h: Hypers, st: ParamState): void {
    const st0 = st;
    tf.tidy(() => {
      const args: StepArgs = { p: p.variable, grad: g, doWd: p.doWd, ...h, step: st0.step || undefined };
      for (const name of STATE_TENSORS) {
        const t = st0.tensors.get(name);
        if (t) args[name] = t;
      }
      for (const stepper of this.steppers) Object.assign(args, stepper(args) ?? {});
      if (args.p !== p.variable) p.variable.assign(args.p);
      for (const name of STATE_TENSORS) {
        const t = args[name];
        if (!t || t === st0.tensors.get(name)) continue;
        const slot = st0.tensors.get(name);
        if (slot) slot.assign(t);
        else st0.tensors.set(name, tf.variable(t, false));
      }
      st0.step = args.step ?? 0;
    });
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

/** Options every optimizer function takes. */
export interface BaseOptimizerOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decoupled weight decay, AdamW's `p ← p·(1 − lr·wd)` (default true); false adds `wd·p` to the gradient (L2, PyTorch's `weight_decay`). */
  decoupleWd?: boolean;
}

/** `weightDecay` (decoupled, the default) or `l2Reg`. */
function wdStepper(o: BaseOptimizerOptions): Stepper {
  return (o.decoupleWd ?? true) ? weightDecay : l2Reg;
}

/** Options of `Adam` (fastai's defaults). */
export interface AdamOptions extends BaseOptimizerOptions {
  /** beta1 (default 0.9). */
  mom?: number;
  /** beta2 (default 0.99). */
  sqrMom?: number;
  /** Added to the denominator (default 1e-5). */
  eps?: number;
  /** Weight decay (default 0.01). */
  wd?: number;
}

/**
 * fastai's Adam with decoupled weight decay (AdamW): the steppers `weightDecay`, dampened
 * `averageGrad`, `averageSqrGrad`, `stepStat`, `adamStep`. Per parameter:
 *   1. p ← p·(1 − lr·wd)                         (only when the parameter takes weight decay)
 *   2. m ← mom·m + (1 − mom)·g;   v ← sqrMom·v + (1 − sqrMom)·g²
 *   3. p ← p − lr/(1 − mom^t) · m / (√(v/(1 − sqrMom^t)) + eps)
 * This equals `torch.optim.AdamW(betas=(mom, sqrMom), eps, weight_decay=wd)`.
 */
export class AdamOptimizer extends Optimizer {
  private readonly decoupled: boolean;

  constructor(params: ParamsArg, opts: AdamOptions = {}) {
    const wd = wdStepper(opts);
    super(params, [wd, partial(averageGrad, { dampening: true }), averageSqrGrad, stepStat, adamStep], {
      kind: "Adam",
      lr: opts.lr ?? 1e-3,
      mom: opts.mom ?? 0.9,
      sqrMom: opts.sqrMom ?? 0.99,
      eps: opts.eps ?? 1e-5,
      wd: opts.wd ?? 0.01,
    });
    this.decoupled = wd === weightDecay;
  }

  /** On the native engine the five steppers run as one fused pass (same formula); elsewhere op by op. */
  protected override update(p: Param, g: tf.Tensor, h: Hypers, st: ParamState): void {
    if (this.decoupled && tf.getBackend() === "native") {
      const zeros = () => tf.tidy(() => tf.variable(tf.zerosLike(p.variable), false));
      const m = st.tensors.get("gradAvg") ?? st.tensors.set("gradAvg", zeros()).get("gradAvg")!;
      const v = st.tensors.get("sqrAvg") ?? st.tensors.set("sqrAvg", zeros()).get("sqrAvg")!;
      const hs = { lr: h.lr, mom: h.mom, sqrMom: h.sqrMom, eps: h.eps, wd: p.doWd ? h.wd : 0, step: st.step + 1 };
      if (nativeAdamStep(p.variable, m, v, g, hs)) {
        st.step += 1;
        return;
      }
    }
    super.update(p, g, h, st);
  }
}

/** Options of `SGD` (fastai's defaults). */
export interface SGDOptions extends BaseOptimizerOptions {
  /** Momentum, undampened: `m ← mom·m + g` (default 0: plain SGD). */
  mom?: number;
  /** Weight decay (default 0). */
  wd?: number;
}

/**
 * fastai's SGD: `weightDecay`, then `sgdStep`, or with momentum `averageGrad` + `momentumStep`:
 * 1. p ← p·(1 − lr·wd); 2. m ← mom·m + g (when mom ≠ 0); 3. p ← p − lr·m.
 * As in fastai, momentum is used only when created with `mom ≠ 0` (a one-cycle `mom` schedule then varies it).
 */
export class SGDOptimizer extends Optimizer {
  constructor(params: ParamsArg, opts: SGDOptions = {}) {
    const mom = opts.mom ?? 0;
    const wd = wdStepper(opts);
    super(params, mom !== 0 ? [wd, averageGrad, momentumStep] : [wd, sgdStep], { kind: "SGD", lr: opts.lr ?? 1e-3, mom, sqrMom: 0, eps: 0, wd: opts.wd ?? 0 });
  }
}

/** Options of `RMSProp` (fastai's defaults). */
export interface RMSPropOptions extends BaseOptimizerOptions {
  /** The weight of the old squared-gradient average (default 0.99; PyTorch's `alpha`). */
  sqrMom?: number;
  /** Momentum of the gradient average (default 0: none). */
  mom?: number;
  /** Added to the root of the squared-gradient average (default 1e-8). */
  eps?: number;
  /** Weight decay (default 0). */
  wd?: number;
}

/**
 * fastai's RMSProp: `weightDecay`, `averageSqrGrad` (plus `averageGrad` when `mom ≠ 0`), `rmsPropStep`:
 * 1. v ← sqrMom·v + (1 − sqrMom)·g²;  2. p ← p − lr·(m or g)/(√v + eps).
 * Without momentum it equals `torch.optim.RMSprop(alpha=sqrMom, eps)`; with momentum PyTorch
 * averages the scaled step instead of the gradient, so the two differ.
 */
export class RMSPropOptimizer extends Optimizer {
  constructor(params: ParamsArg, opts: RMSPropOptions = {}) {
    const mom = opts.mom ?? 0;
    const wd = wdStepper(opts);
    const avg = mom !== 0 ? [averageGrad, averageSqrGrad] : [averageSqrGrad];
    super(params, [wd, ...avg, rmsPropStep], {
      kind: "RMSProp",
      lr: opts.lr ?? 1e-3,
      mom,
      sqrMom: opts.sqrMom ?? 0.99,
      eps: opts.eps ?? 1e-8,
      wd: opts.wd ?? 0,
    });
  }
}

/** Builds an optimizer over parameter groups; `opts.lr` is the learner's learning rate. */
export type OptFunc = (groups: Param[][], opts: { lr: number }) => Optimizer;

/** fastai's `Adam` as an `optFunc` (AdamW: mom 0.9, sqrMom 0.99, eps 1e-5, wd 0.01); wrap to change defaults. */
export const Adam = (params: ParamsArg, opts: AdamOptions = {}): Optimizer => new AdamOptimizer(params, opts);

/** fastai's `SGD` as an `optFunc` (mom 0, wd 0); wrap to change defaults, e.g. `(g, o) => SGD(g, { ...o, mom: 0.9 })`. */
export const SGD = (params: ParamsArg, opts: SGDOptions = {}): Optimizer => new SGDOptimizer(params, opts);

/** fastai's `RMSProp` as an `optFunc` (sqrMom 0.99, mom 0, eps 1e-8, wd 0). */
export const RMSProp = (params: ParamsArg, opts: RMSPropOptions = {}): Optimizer => new RMSPropOptimizer(params, opts);
