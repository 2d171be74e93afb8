process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import type { Callback } from "../lib/learner/callback";
import { combinedCos, minimum, slide, slideWith, steep, valley, npGradient } from "../lib/learner/schedule";
import { suggest } from "../lib/learner/lrfind";
import { toyDls, toyModel } from "./helpers/learner-data";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test("combinedCos follows fastai's two cosine phases", () => {
  // pct 0.25, 1 → 10 → 0: at pos 0.125 (half of phase 1) the value is 1 + (1+cos(π/2))/2·9 = 5.5
  const f = combinedCos(0.25, 1, 10, 0);
  close(f(0) as number, 1);
  close(f(0.125) as number, 5.5);
  close(f(0.25) as number, 10);
  // phase 2 at 1/3: 10 + (1+cos(2π/3))/2·(0−10) = 10 − 2.5
  close(f(0.5) as number, 7.5);
  close(f(1) as number, 0);
});

test("fitOneCycle sets lr and momentum per batch exactly as fastai's one-cycle", async () => {
  await ready();
  const dls = toyDls({ n: 64, bs: 16 }); // 4 batches per epoch, 2 epochs → 8 steps, pos = i/8
  const learn = new Learner(dls, toyModel().model, { progress: false });
  await learn.fitOneCycle(2, { lrMax: 1e-2 });
  // hand-computed: start lrMax/25 = 4e-4, end lrMax/1e5 = 1e-7, pctStart 0.25;
  // i=1: 4e-4 + ½·(1e-2 − 4e-4) = 5.2e-3; i=3: inner 1/6, 1e-2 − (1+cos(5π/6))/2·(1e-2 − 1e-7);
  // i=4: inner 1/3 → 1e-2 − ¼·(1e-2 − 1e-7) = 7.500025e-3; i=5: inner ½ → 5.00005e-3
  const lrs = [4e-4, 5.2e-3, 1e-2, 0.009330133717652005, 7.500025e-3, 5.00005e-3, 2.500075e-3, 0.000669966282347995];
  const moms = [0.95, 0.9, 0.85, 0.856698729810778, 0.875, 0.9, 0.925, 0.9433012701892219];
  assert.equal(learn.recorder.lrs.length, 8);
  learn.recorder.lrs.forEach((v, i) => close(v, lrs[i]!, 1e-9));
  learn.recorder.moms.forEach((v, i) => close(v, moms[i]!, 1e-9));
});

test("fineTune runs fastai's algorithm: frozen one-cycle at slice(baseLr), then unfrozen at slice(baseLr/2/lrMult, baseLr/2)", async () => {
  await ready();
  const dls = toyDls({ n: 64, bs: 16 });
  const { model, body, head } = toyModel();
  const learn = new Learner(dls, model, { progress: false, splitter: () => [body, head] });
  const seen: { fit: number; lrs: number[]; frozen: boolean }[] = [];
  let fit = -1;
  const spy: Callback = {
    order: 65,
    beforeFit: () => void fit++,
    beforeBatch: (l) => {
      if (l.training) seen.push({ fit, lrs: l.opt!.hypers.map((h) => h.lr), frozen: !body[1]!.trainable });
    },
  };
  learn.addCbs([spy]);
  await learn.fineTune(1, { baseLr: 2e-3 });
  const p1 = seen.filter((s) => s.fit === 0);
  const p2 = seen.filter((s) => s.fit === 1);
  assert.equal(p1.length, 4);
  assert.equal(p2.length, 4);
  assert.ok(p1.every((s) => s.frozen) && p2.every((s) => !s.frozen));
  // phase 1: slice(2e-3) → [2e-4, 2e-3], div 25 → starts at [8e-6, 8e-5]; pctStart 0.99 → still warming up at step 3
  close(p1[0]!.lrs[0]!, 8e-6);
  close(p1[0]!.lrs[1]!, 8e-5);
  // steps 2 and 3 (pos 0.5, 0.75) are on the warm-up: 8e-5 + (1 + cos(π·(1 − pos/0.99)))/2·(2e-3 − 8e-5)
  const warm = (pos: number) => 8e-5 + ((1 + Math.cos(Math.PI * (1 - pos / 0.99))) / 2) * (2e-3 - 8e-5);
  close(p1[2]!.lrs[1]!, warm(0.5)); // ≈ 1.0397e-3
  close(p1[3]!.lrs[1]!, warm(0.75)); // ≈ 1.6989e-3
  // phase 2: slice(1e-5, 1e-3) → [1e-5, 1e-3], div 5 → [2e-6, 2e-4]; pctStart 0.3: step 1 (pos 0.25) at 5/6 of warm-up
  close(p2[0]!.lrs[0]!, 2e-6);
  close(p2[0]!.lrs[1]!, 2e-4);
  const w = (1 + Math.cos(Math.PI * (1 - 0.25 / 0.3))) / 2;
  close(p2[1]!.lrs[1]!, 2e-4 + w * (1e-3 - 2e-4));
});

// A hand-made curve: lrs 10^(-6 + i/2), i = 0..11.
const LRS = Array.from({ length: 12 }, (_, i) => Math.pow(10, -6 + i / 2));
const LOSSES = [3, 3, 2.9, 2.6, 2.0, 1.5, 1.2, 1.1, 1.3, 2.0, 4.0, 8.0];

test("minimum suggests a tenth of the lr at the lowest loss", () => {
  const s = minimum(LRS, LOSSES, 100);
  close(s.lr, Math.pow(10, -3.5)); // argmin at i=7 (lr 10^-2.5)
  assert.deepEqual(s.point, [LRS[7], 1.1]);
});

test("steep suggests the lr where the loss falls fastest per log(lr)", () => {
  // differences: 0, −.1, −.3, −.6 (2.6 → 2.0, i=3), −.5, ...
  const s = steep(LRS, LOSSES, 100);
  assert.equal(s.lr, LRS[3]);
});

test("valley suggests the point ½ of the way into the longest decreasing run", () => {
  // longest strictly decreasing subsequence ends at i=7 with length 7 → maxStart 0, sections 7/3 → idx 2 + 1 = 3
  const s = valley(LRS, LOSSES, 100);
  assert.equal(s.lr, LRS[3]);
  assert.deepEqual(s.point, [LRS[3], 2.6]);
});

test("slide walks left until the loss gradients at both interval ends agree", () => {
  // numpy gradient of the curve
  const g = npGradient(LOSSES);
  [0, -0.05, -0.2, -0.45, -0.55, -0.4, -0.2, 0.05, 0.45, 1.35, 3, 4].forEach((v, i) => close(g[i]!, v, 1e-12));
  // lrDiff 3, thresh 0.3: pairs (11,8) (10,7) (9,6) (8,5) (7,4) differ by > 0.3; (6,3) by 0.25 → stop, lr = lrs[4]
  const s = slideWith({ lrDiff: 3, thresh: 0.3 })(LRS, LOSSES, 100);
  close(s.lr, 1e-4);
  close(s.point[1], 2.0);
  // default lrDiff 15 on 12 points: the interval starts at the first point (l = −12); the gradients at
  // its ends, g[11] = 4 and g[0] = 0, differ by more than 0.005, so localMin = lrs[0] and the loop
  // runs off the left end: lr = lrs[0] = 1e-6, marked at its own loss, 3
  const d = slide(LRS, LOSSES, 100);
  close(d.lr, 1e-6);
  assert.deepEqual(d.point, [LRS[0], 3]);
});

test("suggest skips the first numIt/10 and last 5 points and drops everything from the first NaN", () => {
  const lrs = Array.from({ length: 30 }, (_, i) => Math.pow(10, -7 + i / 3));
  const losses = lrs.map((_, i) => (i === 20 ? NaN : 10 - i * 0.1 + (i > 15 ? (i - 15) ** 2 : 0)));
  const r = suggest(lrs, losses, 20, [minimum]);
  // window [2, 25) minus NaN at 20 → [2, 20): minimum at i=15 (value 8.5)
  close(r.suggestions["minimum"]!, lrs[15]! / 10);
});

test("lrFind sweeps lr exponentially, stops on divergence, restores weights and optimizer state, leaks nothing", async () => {
  await ready();
  const dls = toyDls({ n: 64, bs: 16 });
  const { model } = toyModel();
  const learn = new Learner(dls, model, { progress: false });
  await learn.fit(1);
  const w0 = model.weights.map((w) => Array.from(w.read().dataSync()));
  const st0 = learn.opt!.stateDict();
  const opt0 = st0.params.map((p) => ({ step: p.step, t: Object.fromEntries(Object.entries(p.tensors).map(([k, t]) => [k, Array.from(t.dataSync())])) }));
  tf.dispose(st0.params.flatMap((p) => Object.values(p.tensors)));
  const before = tf.memory().numTensors;
  const r = await learn.lrFind({ numIt: 20, suggestFuncs: [valley, minimum, steep, slide], showPlot: false });
  assert.equal(tf.memory().numTensors, before, "tensors after lrFind");
  // cycled the 4-batch loader: up to 20 batches, lr_i = 1e-7·(1e8)^(i/20)
  assert.ok(r.lrs.length <= 20 && r.lrs.length >= 8, `${r.lrs.length}`);
  r.lrs.forEach((lr, i) => close(lr, 1e-7 * Math.pow(1e8, i / 20), 1e-9));
  for (const k of ["valley", "minimum", "steep", "slide"]) assert.ok(r.suggestions[k]! > 0, k);
  model.weights.forEach((w, i) => assert.deepEqual(Array.from(w.read().dataSync()), w0[i], w.originalName));
  const st1 = learn.opt!.stateDict();
  st1.params.forEach((p, i) => {
    assert.equal(p.step, opt0[i]!.step);
    for (const [k, t] of Object.entries(p.tensors)) assert.deepEqual(Array.from(t.dataSync()), opt0[i]!.t[k]);
  });
  tf.dispose(st1.params.flatMap((p) => Object.values(p.tensors)));
  // stopDiv: a huge end lr makes the smoothed loss exceed 4× its best before numIt
  const r2 = await learn.lrFind({ startLr: 1e-3, endLr: 1e6, numIt: 60, suggestFuncs: [minimum], showPlot: false });
  assert.ok(r2.lrs.length < 60, `stopped after ${r2.lrs.length} batches`);
  assert.ok(r.figure.data.length === 5);
});

test("an lrFind result prints like fastai's SuggestedLRs and exposes each suggestion by name", () => {
  const r = suggest(LRS.concat(LRS.map((x) => x * 10)), LOSSES.concat(LOSSES), 10, [minimum, steep]);
  // 24 points, numIt 10: skip the first one and the last five → points 1..18 (losses LOSSES[1..11], LOSSES[0..6]).
  // minimum: the lowest loss 1.1 at point 7 (lr 10^-2.5) → 10^-3.5. steep: the largest fall per log(lr)
  // is 2.6 → 2.0 (−0.6 over ½·ln 10), first at point 3 → lr 10^-4.5 (the jump 8 → 3 at the seam goes
  // to a lower lr, so its slope is positive).
  close(r.minimum!, Math.pow(10, -3.5));
  close(r.steep!, Math.pow(10, -4.5));
  assert.equal(r.minimum, r.suggestions["minimum"]);
  assert.equal(String(r), "SuggestedLRs(minimum=0.0003162, steep=0.00003162)");
  assert.equal(require("node:util").inspect(r), String(r));
  assert.deepEqual(Object.keys(r), ["minimum", "steep"]);
});

test("lrFind skips validation (LRFinder cancels it) and hides the progress output", async () => {
  await ready();
  const dls = toyDls({ n: 64, bs: 16 });
  const learn = new Learner(dls, toyModel().model);
  let validBatches = 0;
  learn.addCbs([{ beforeBatch: (l) => void (l.training || validBatches++) }]);
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    await learn.lrFind({ numIt: 10, showPlot: false });
  } finally {
    console.log = orig;
  }
  assert.equal(validBatches, 0);
  assert.deepEqual(lines, []);
  assert.equal(learn.cbs.filter((c) => c.name === "ProgressCallback").length, 1, "progress callback back in place");
});
