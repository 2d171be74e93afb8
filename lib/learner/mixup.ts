/**
 * fastai's `callback/mixup.py`: `MixUp` and `CutMix`, callbacks that change the batch and the loss.
 *
 * Each training batch is paired with a shuffled copy of itself (the partner batch):
 *   1. draw λ from Beta(α, α) and a permutation of the batch;
 *   2. `beforeBatch` mixes the inputs: MixUp blends whole images, x = λ·x + (1 − λ)·x[perm]
 *      (one λ per item, max(λ, 1 − λ), so an item stays mostly itself); CutMix pastes a box of
 *      x[perm] into x and corrects λ to the share of the image left uncovered;
 *   3. the loss becomes the λ-mix of the losses against both targets,
 *      λ·loss(pred, y) + (1 − λ)·loss(pred, y[perm]), taken per item and averaged (`afterLoss`,
 *      inside the gradient computation). A loss whose targets are not class indices (no `yInt`,
 *      e.g. `BCEWithLogitsLossFlat`, `MSELossFlat`) gets mixed targets instead, as in fastai.
 * Validation batches are left alone (`runValid: false`), so metrics are always on un-mixed targets.
 */
import * as tf from "../engine/tf";
import { Rng } from "../data/random";
import type { Callback } from "./callback";
import type { Learner } from "./learner";

/** One MixUp draw for a batch of `bs` items. */
export interface MixUpDraw {
  /** λ of each item as drawn from Beta(α, α), before max(λ, 1 − λ). */
  lam: number[];
  /** The partner of each item: a permutation of 0..bs-1. */
  perm: number[];
}

/** One CutMix draw for a batch of `bs` items of `h`×`w` pixels. */
export interface CutMixDraw {
  /** λ as drawn from Beta(α, α): the box covers about 1 − λ of the image. */
  lam: number;
  /** The partner of each item: a permutation of 0..bs-1. */
  perm: number[];
  /** The box's centre, integers in [0, w) and [0, h). */
  cx: number;
  cy: number;
}

/** Options of `MixUp` and `CutMix`. */
export interface MixOptions<D> {
  /** Seed of the draws (default 0). */
  seed?: number;
  /** Replaces the random draw (tests, or a schedule of your own); default: Beta(α, α) and a seeded permutation. */
  draw?: (bs: number, h: number, w: number) => D;
}

/** A sample of Beta(a, b) from two Gamma draws: X/(X + Y), X ~ Γ(a), Y ~ Γ(b). */
export function sampleBeta(rng: Rng, a: number, b: number): number {
  const x = sampleGamma(rng, a);
  const y = sampleGamma(rng, b);
  return x / (x + y);
}

/** Γ(shape, 1) by Marsaglia and Tsang; shape < 1 through Γ(shape + 1)·U^(1/shape). */
function sampleGamma(rng: Rng, shape: number): number {
  if (shape < 1) return sampleGamma(rng, shape + 1) * Math.pow(1 - rng.next(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      // a standard normal by Box-Muller
      x = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/**
 * The box CutMix pastes (fastai's `rand_bbox`): a cut of round(w·√(1 − λ)) × round(h·√(1 − λ))
 * centred on (cx, cy), clipped to the image; `[x1, y1, x2, y2)`.
 */
export function cutMixBox(w: number, h: number, lam: number, cx: number, cy: number): [number, number, number, number] {
  const cutRat = Math.sqrt(1 - lam);
  // torch.round rounds ties to even, Math.round up: 2k and 2k + 1 have the same half, so the box is the same
  const halfW = Math.floor(Math.round(w * cutRat) / 2);
  const halfH = Math.floor(Math.round(h * cutRat) / 2);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return [clamp(cx - halfW, w), clamp(cy - halfH, h), clamp(cx + halfW, w), clamp(cy + halfH, h)];
}

/** fastai's `MixHandler`: the partner batch and the loss mixing shared by `MixUp` and `CutMix`; subclasses mix the inputs. */
export abstract class MixHandler<D extends { perm: number[] }> implements Callback {
  runValid = false;
  learn?: Learner;
  /** λ of the current batch: one per item ([bs]) or one for the batch ([1]); the weight of the item's own target. */
  lam?: tf.Tensor;
  /** The partner targets y[perm] of the current batch. */
  yb1?: tf.Tensor;
  protected readonly rng: Rng;
  protected readonly drawFn?: (bs: number, h: number, w: number) => D;
  private stackY = true;

  constructor(
    /** α of Beta(α, α). */
    readonly alpha: number,
    opts: MixOptions<D>,
  ) {
    if (!(alpha > 0) || !Number.isFinite(alpha)) throw new Error(`${this.constructor.name}: alpha must be a positive number, got ${alpha}`);
    this.rng = new Rng(opts.seed ?? 0);
    this.drawFn = opts.draw;
  }

  /** A random draw for a batch of `bs` items of `h`×`w`. */
  protected abstract draw(bs: number, h: number, w: number): D;
  /** The mixed inputs from the batch and its partners (inside a `tidy`), and λ: one per item, or one for the batch. */
  protected abstract mix(xb: tf.Tensor, partner: tf.Tensor, d: D): { x: tf.Tensor; lam: number[] };
  /** Refuse inputs this mix cannot handle (default: anything goes). */
  protected checkInputs(_xb: tf.Tensor): void {}

  /** 1-2. Draw, gather the partners, mix `learn.xb` (and set `lam`, `yb1`). */
  private mixInputs(learn: Learner): void {
    const xb = learn.xb!;
    this.checkInputs(xb);
    const bs = xb.shape[0]!;
    const [h, w] = [xb.shape[1] ?? 1, xb.shape[2] ?? 1];
    const d = this.drawFn ? this.drawFn(bs, h, w) : this.draw(bs, h, w);
    const perm = d.perm;
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== bs || sorted.some((v, i) => v !== i)) throw new Error(`${this.constructor.name}: draw().perm must be a permutation of 0..${bs - 1}, got [${perm}]`);
    const idx = tf.tensor1d(perm, "int32");
    try {
      const { x, lam, yb1 } = tf.tidy(() => ({ ...this.mix(xb, tf.gather(xb, idx), d), yb1: tf.gather(learn.yb!, idx) }));
      this.lam = tf.tensor1d(lam);
      this.yb1 = yb1;
      xb.dispose();
      learn.xb = x;
    } finally {
      idx.dispose();
    }
  }

  beforeBatch(learn: Learner): void {
    this.clear();
    const lossFunc = learn.lossFunc;
    const yb = learn.yb!;
    // fastai's `stack_y`: class-index targets are not mixed, the losses are
    this.stackY = lossFunc.yInt ?? (yb.dtype === "int32");
    if (!this.stackY && yb.dtype === "int32") {
      throw new Error(`${this.constructor.name}: the targets are integers but the loss ${lossFunc.name} does not say they are class indices (yInt); give the learner a loss with yInt: true`);
    }
    this.mixInputs(learn);
    if (!this.stackY) {
      // a loss on numbers or multi-hot vectors is taken against mixed targets: y = λ·y + (1 − λ)·y[perm]
      const mixed = lerpItems(this.yb1!, yb, this.lam!);
      yb.dispose();
      learn.yb = mixed;
    }
  }

  afterLoss(learn: Learner): void {
    if (!this.stackY || !learn.training) return;
    // 3. λ·loss(pred, y) + (1 − λ)·loss(pred, y[perm]), per item, then the mean
    const name = this.constructor.name;
    let own: tf.Tensor;
    let other: tf.Tensor;
    try {
      own = learn.lossFunc.forward(learn.pred!, learn.yb!, "none");
      other = learn.lossFunc.forward(learn.pred!, this.yb1!, "none");
    } catch (e) {
      throw new Error(
        `${name} mixes per-item losses, but the loss ${learn.lossFunc.name} has no per-item form (reduction "none"): ${(e as Error).message}; ` +
          "give the learner a Loss object such as CrossEntropyLossFlat()",
      );
    }
    const bs = learn.yb!.shape[0]!;
    if (own.size !== bs) {
      throw new Error(`${name}: the loss ${learn.lossFunc.name} gives ${own.size} per-item values for a batch of ${bs}; ${name} mixes whole items (one target each)`);
    }
    const mixed = tf.mean(lerpItems(other, own, this.lam!));
    learn.loss = mixed;
    learn.lossGrad = mixed;
  }

  afterBatch(): void {
    this.clear();
  }
  afterFit(): void {
    this.clear();
  }
  afterCancelFit(): void {
    this.clear();
  }

  private clear(): void {
    tf.dispose([this.lam, this.yb1].filter((t): t is tf.Tensor => t !== undefined));
    this.lam = this.yb1 = undefined;
  }
}

/** torch.lerp(a, b, λ) = a + λ·(b − a), λ one per item (or one for all) broadcast over the other axes. */
function lerpItems(a: tf.Tensor, b: tf.Tensor, lam: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const w = tf.reshape(lam, [lam.size, ...Array(Math.max(0, b.rank - 1)).fill(1)]);
    const af = tf.cast(a, "float32");
    return tf.add(af, tf.mul(w, tf.sub(tf.cast(b, "float32"), af)));
  });
}

/** Options of `MixUp`. */
export interface MixUpOptions extends MixOptions<MixUpDraw> {
  /** α of Beta(α, α) (default 0.4, as fastai). */
  alpha?: number;
}

/** fastai's `MixUp` (https://arxiv.org/abs/1710.09412): each training image blended with a shuffled partner, the losses mixed alike. */
export class MixUp extends MixHandler<MixUpDraw> {
  constructor(opts: MixUpOptions = {}) {
    super(opts.alpha ?? 0.4, opts);
  }

  protected mix(xb: tf.Tensor, partner: tf.Tensor, d: MixUpDraw): { x: tf.Tensor; lam: number[] } {
    const bs = xb.shape[0]!;
    if (d.lam.length !== bs) throw new Error(`MixUp: draw().lam must hold one λ per item (${bs}), got ${d.lam.length}`);
    // fastai keeps max(λ, 1 − λ): every item stays at least half itself
    const lam = d.lam.map((l) => Math.max(l, 1 - l));
    return { x: lerpItems(partner, xb, tf.tensor1d(lam)), lam };
  }

  protected draw(bs: number): MixUpDraw {
    return { lam: Array.from({ length: bs }, () => sampleBeta(this.rng, this.alpha, this.alpha)), perm: this.rng.permutation(bs) };
  }
}

/** Options of `CutMix`. */
export interface CutMixOptions extends MixOptions<CutMixDraw> {
  /** α of Beta(α, α) (default 1, as fastai). */
  alpha?: number;
}

/** fastai's `CutMix` (https://arxiv.org/abs/1905.04899): a box of a shuffled partner pasted into each training image, λ its uncovered share. */
export class CutMix extends MixHandler<CutMixDraw> {
  constructor(opts: CutMixOptions = {}) {
    super(opts.alpha ?? 1, opts);
  }

  protected override checkInputs(xb: tf.Tensor): void {
    if (xb.rank !== 4) {
      throw new Error(`CutMix cuts a box out of images: the batch's inputs have shape [${xb.shape}]; it needs [batch, height, width, channels]`);
    }
  }

  protected mix(xb: tf.Tensor, partner: tf.Tensor, d: CutMixDraw): { x: tf.Tensor; lam: number[] } {
    const [h, w] = [xb.shape[1]!, xb.shape[2]!];
    const [x1, y1, x2, y2] = cutMixBox(w, h, d.lam, d.cx, d.cy);
    const inBox = (n: number, lo: number, hi: number) => tf.tensor1d(Array.from({ length: n }, (_, i) => (i >= lo && i < hi ? 1 : 0)));
    const mask = tf.reshape(tf.outerProduct(inBox(h, y1, y2), inBox(w, x1, x2)), [1, h, w, 1]);
    // λ corrected to the share of the image the box leaves
    return { x: tf.add(tf.mul(xb, tf.sub(1, mask)), tf.mul(partner, mask)), lam: [1 - ((x2 - x1) * (y2 - y1)) / (w * h)] };
  }

  protected draw(bs: number, h: number, w: number): CutMixDraw {
    return { lam: sampleBeta(this.rng, this.alpha, this.alpha), perm: this.rng.permutation(bs), cx: this.rng.int(w), cy: this.rng.int(h) };
  }
}
