process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Adam, SGD, disposeState, evenMults, expandPerGroup, slice, type Param } from "../lib/learner/optimizer";
import { Learner } from "../lib/learner/learner";
import { toyDls, toyModel } from "./helpers/learner-data";
import { torchJson } from "./helpers/torch";

const closeArr = (a: ArrayLike<number>, b: number[], tol = 1e-6) =>
  b.forEach((v, i) => assert.ok(Math.abs(a[i]! - v) <= tol * Math.max(1, Math.abs(v)), `[${i}] ${a[i]} vs ${v}`));

function param(values: number[], doWd = true): Param {
  return { variable: tf.variable(tf.tensor1d(values)), doWd };
}

test("Adam's first step matches the hand-computed AdamW update (decoupled decay, debiasing, eps outside the sqrt)", async () => {
  await ready();
  const p = param([1, -2]);
  const opt = Adam([[p]], { lr: 0.1 });
  const g = tf.tensor1d([0.5, 0.1]);
  opt.step(new Map([[p.variable, g]]));
  // 1. p·(1 − 0.1·0.01) = [0.999, −1.998]
  // 2. m = 0.1·g, v = 0.01·g² → debiased m̂ = g, √v̂ = |g|
  // 3. p −= 0.1·g/(|g| + 1e-5) = [0.1·0.5/0.50001, 0.1·0.1/0.10001]
  closeArr(p.variable.dataSync(), [0.999 - (0.1 * 0.5) / 0.50001, -1.998 - (0.1 * 0.1) / 0.10001], 1e-6);
  tf.dispose([g, p.variable]);
  opt.dispose();
});

test("Adam equals torch.optim.AdamW(betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01) over several steps", async () => {
  await ready();
  const grads = [[0.3, -1.2, 0.05], [-0.1, 0.4, 2.0], [0.7, 0.7, -0.3], [0.0, -0.5, 0.1]];
  const ref = torchJson<number[]>(`
p = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
opt = torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
for g in ${JSON.stringify(grads)}:
    p.grad = torch.tensor(g); opt.step()
print(json.dumps(p.detach().tolist()))`);
  const p = param([0.5, -1.0, 2.0]);
  const opt = Adam([[p]], { lr: 0.01 });
  for (const g of grads) {
    const t = tf.tensor1d(g);
    opt.step(new Map([[p.variable, t]]));
    t.dispose();
  }
  closeArr(p.variable.dataSync(), ref, 1e-6);
  p.variable.dispose();
  opt.dispose();
});

test("SGD with momentum equals torch.optim.SGD(momentum=0.9) and the hand-computed steps", async () => {
  await ready();
  const p = param([1]);
  const opt = SGD([[p]], { lr: 0.1, mom: 0.9 });
  const g = tf.tensor1d([0.5]);
  opt.step(new Map([[p.variable, g]])); // m = 0.5, p = 0.95
  opt.step(new Map([[p.variable, g]])); // m = 0.9·0.5 + 0.5 = 0.95, p = 0.855
  closeArr(p.variable.dataSync(), [0.855], 1e-7);
  const ref = torchJson<number[]>(`
p = torch.nn.Parameter(torch.tensor([1.0]))
opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
for _ in range(2):
    p.grad = torch.tensor([0.5]); opt.step()
print(json.dumps(p.detach().tolist()))`);
  closeArr(p.variable.dataSync(), ref, 1e-7);
  tf.dispose([g, p.variable]);
  opt.dispose();
});

test("weight decay skips parameters marked doWd: false (batch norm and bias by default)", async () => {
  await ready();
  const a = param([2, 2]);
  const b = param([2, 2], false);
  const opt = Adam([[a, b]], { lr: 0.1, wd: 0.5 });
  const z = tf.zeros([2]);
  // a zero gradient isolates the decay: p·(1 − lr·wd) = 2·0.95 for a, unchanged for b
  opt.step(new Map([[a.variable, z], [b.variable, z]]));
  closeArr(a.variable.dataSync(), [1.9, 1.9], 1e-7);
  closeArr(b.variable.dataSync(), [2, 2], 1e-7);
  tf.dispose([z, a.variable, b.variable]);
  opt.dispose();
  // the learner marks BN gamma/beta and biases doWd: false unless wdBnBias
  const m = toyModel();
  const learn = new Learner(toyDls(), m.model, { progress: false });
  const flags = learn.paramGroups().flat().map((p) => `${p.layerVariable.originalName.split("/").pop()}:${p.doWd}`);
  assert.deepEqual(flags, ["kernel:true", "bias:false", "gamma:false", "beta:false", "kernel:true", "bias:false"]);
  const m2 = toyModel();
  const learn2 = new Learner(toyDls(), m2.model, { progress: false, wdBnBias: true });
  assert.ok(learn2.paramGroups().flat().every((p) => p.doWd));
});

test("per-group hypers: slice and evenMults follow fastai's set_hyper", () => {
  assert.deepEqual(evenMults(1e-4, 1e-2, 1), [1e-2]);
  const e = evenMults(1e-4, 1e-2, 3);
  closeArr(e, [1e-4, 1e-3, 1e-2], 1e-12);
  closeArr(expandPerGroup(slice(1e-2), 3), [1e-3, 1e-3, 1e-2], 1e-12);
  assert.deepEqual(expandPerGroup(0.5, 2), [0.5, 0.5]);
  assert.throws(() => expandPerGroup([1, 2], 3), /lr has 2 values but the optimizer has 3 parameter groups/);
});

test("optimizer state round-trips through stateDict: continued steps are identical", async () => {
  await ready();
  const mk = () => param([0.3, -0.7]);
  const a = mk();
  const optA = Adam([[a]], { lr: 0.05 });
  const g1 = tf.tensor1d([0.2, -0.4]);
  const g2 = tf.tensor1d([-0.3, 0.1]);
  optA.step(new Map([[a.variable, g1]]));
  const st = optA.stateDict();
  const b = param(Array.from(a.variable.dataSync()));
  const optB = Adam([[b]], { lr: 999 });
  optB.loadStateDict(st);
  disposeState(st);
  assert.equal(optB.hypers[0]!.lr, 0.05);
  optA.step(new Map([[a.variable, g2]]));
  optB.step(new Map([[b.variable, g2]]));
  assert.deepEqual(Array.from(b.variable.dataSync()), Array.from(a.variable.dataSync()));
  // and both are where torch.optim.AdamW takes the same two steps (not two equally wrong values)
  const ref = torchJson<number[]>(`
p = torch.nn.Parameter(torch.tensor([0.3, -0.7]))
opt = torch.optim.AdamW([p], lr=0.05, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
for g in [[0.2, -0.4], [-0.3, 0.1]]:
    p.grad = torch.tensor(g); opt.step()
print(json.dumps(p.detach().tolist()))`);
  closeArr(b.variable.dataSync(), ref, 1e-6);
  const before = tf.memory().numTensors;
  optB.dispose();
  assert.equal(tf.memory().numTensors, before - 2, "two state tensors released");
  tf.dispose([g1, g2, a.variable, b.variable]);
  optA.dispose();
});

test("SGD created with mom 0 ignores a scheduled momentum, as fastai's SGD", async () => {
  await ready();
  const p = param([1]);
  const opt = SGD([[p]], { lr: 0.1 });
  opt.setHyper("mom", 0.9);
  const g = tf.tensor1d([0.5]);
  opt.step(new Map([[p.variable, g]]));
  opt.step(new Map([[p.variable, g]]));
  closeArr(p.variable.dataSync(), [0.9], 1e-7); // two plain steps of 0.05
  tf.dispose([g, p.variable]);
  opt.dispose();
});
