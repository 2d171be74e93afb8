process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Adam, Optimizer, RMSProp, SGD, type Param } from "../lib/learner/optimizer";
import { adamStep, averageGrad, momentumStep, partial, sgdStep, stepStat, averageSqrGrad, type Stepper } from "../lib/learner/steppers";
import { torchJson } from "./helpers/torch";

// A small model, the same in both frameworks: y = x·W + b, mean squared error, fixed data.
// Each optimizer takes STEPS real steps (the gradients depend on the weights it reached), and the
// weights after every step must equal PyTorch's.
const STEPS = 6;
const W0 = [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]];
const B0 = [0.05, -0.1];
const X = [[1, 2, -1], [0.5, -1, 2], [-2, 0.3, 0.7], [1.5, 1, 1]];
const Y = [[1, 0], [0, 1], [-1, 0.5], [2, -1]];

interface Case {
  name: string;
  /** Our optimizer over [W (takes weight decay), b (does not)]. */
  make: (w: Param, b: Param) => Optimizer;
  /** The PyTorch optimizer over groups [W], [b] (b with weight_decay=0). */
  torch: string;
}

const cases: Case[] = [
  { name: "plain SGD (sgdStep)", make: (w, b) => SGD([w, b], { lr: 0.1 }), torch: "torch.optim.SGD(groups, lr=0.1)" },
  {
    name: "SGD with momentum and L2 weight decay (l2Reg, averageGrad, momentumStep)",
    make: (w, b) => SGD([w, b], { lr: 0.05, mom: 0.9, wd: 0.1, decoupleWd: false }),
    torch: "torch.optim.SGD(groups, lr=0.05, momentum=0.9, weight_decay=0.1)",
  },
  {
    name: "RMSProp (averageSqrGrad, rmsPropStep)",
    make: (w, b) => RMSProp([w, b], { lr: 0.01 }),
    torch: "torch.optim.RMSprop(groups, lr=0.01, alpha=0.99, eps=1e-8)",
  },
  {
    name: "RMSProp with L2 weight decay",
    make: (w, b) => RMSProp([w, b], { lr: 0.01, sqrMom: 0.9, wd: 0.1, decoupleWd: false }),
    torch: "torch.optim.RMSprop(groups, lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.1)",
  },
  {
    name: "Adam with decoupled weight decay (weightDecay, dampened averageGrad, averageSqrGrad, stepStat, adamStep)",
    make: (w, b) => Adam([w, b], { lr: 0.05, wd: 0.1 }),
    torch: "torch.optim.AdamW(groups, lr=0.05, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1)",
  },
  {
    name: "Adam with L2 weight decay",
    make: (w, b) => Adam([w, b], { lr: 0.05, wd: 0.1, decoupleWd: false }),
    torch: "torch.optim.Adam(groups, lr=0.05, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1)",
  },
  {
    name: "a hand-written stepper list: momentum as new Optimizer(params, [averageGrad, momentumStep])",
    make: (w, b) => new Optimizer([w, b], [averageGrad, momentumStep], { lr: 0.05, mom: 0.8 }),
    torch: "torch.optim.SGD(groups, lr=0.05, momentum=0.8)",
  },
];

function torchTrajectories(): number[][][] {
  const run = (c: Case) => `
W = torch.nn.Parameter(torch.tensor(${JSON.stringify(W0)}))
b = torch.nn.Parameter(torch.tensor(${JSON.stringify(B0)}))
groups = [{"params": [W]}, {"params": [b], "weight_decay": 0.0}]
opt = ${c.torch}
traj = []
for _ in range(${STEPS}):
    opt.zero_grad()
    loss = ((X @ W + b - Y) ** 2).mean()
    loss.backward()
    opt.step()
    traj.append(W.detach().flatten().tolist() + b.detach().tolist())
out.append(traj)`;
  return torchJson<number[][][]>(`
X = torch.tensor(${JSON.stringify(X)})
Y = torch.tensor(${JSON.stringify(Y)})
out = []
${cases.map(run).join("\n")}
print(json.dumps(out))`);
}

/** A variable holding `t` (which it takes over). */
function variableOf(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t);
  t.dispose();
  return v;
}

function ourTrajectory(c: Case): number[][] {
  const w = { variable: variableOf(tf.tensor2d(W0)), doWd: true };
  const b = { variable: variableOf(tf.tensor1d(B0)), doWd: false };
  const x = tf.tensor2d(X);
  const y = tf.tensor2d(Y);
  const opt = c.make(w, b);
  const traj: number[][] = [];
  for (let s = 0; s < STEPS; s++) {
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, w.variable), b.variable), y))) as tf.Scalar);
    opt.step(grads); // by variable name, as tf.variableGrads gives them
    tf.dispose([value, ...Object.values(grads)]);
    traj.push([...w.variable.dataSync(), ...b.variable.dataSync()]);
  }
  opt.dispose();
  tf.dispose([w.variable, b.variable, x, y]);
  return traj;
}

test("every stepper, composed into SGD, momentum, RMSProp and Adam (± weight decay), matches PyTorch step by step", async () => {
  await ready();
  const ref = torchTrajectories();
  const before = tf.memory().numTensors;
  cases.forEach((c, ci) => {
    const ours = ourTrajectory(c);
    ours.forEach((got, s) =>
      got.forEach((v, i) => {
        const want = ref[ci]![s]![i]!;
        assert.ok(Math.abs(v - want) <= 2e-6 * Math.max(1, Math.abs(want)), `${c.name}, step ${s + 1}, weight ${i}: ${v} vs PyTorch ${want}`);
      }),
    );
    // the weights really moved: the comparison is not between two unchanged copies
    assert.ok(Math.abs(ours[STEPS - 1]![0]! - W0[0]![0]!) > 1e-3, `${c.name} did not train`);
  });
  assert.equal(tf.memory().numTensors, before, "optimizer steps leave no tensors behind");
});

test("a stepper list missing the state a stepper needs says which stepper to add", async () => {
  await ready();
  const v = tf.variable(tf.ones([2]));
  const g = tf.ones([2]);
  const noStep = new Optimizer([v], [partial(averageGrad, { dampening: true }), averageSqrGrad, adamStep]);
  assert.throws(() => noStep.step(new Map([[v, g]])), /adamStep needs the state "step": put stepStat before adamStep/);
  const noAvg = new Optimizer([v], [momentumStep]);
  assert.throws(() => noAvg.step(new Map([[v, g]])), /momentumStep needs the state "gradAvg": put averageGrad before momentumStep/);
  tf.dispose([v, g]);
});

test("bad optimizer inputs are refused with what to fix", async () => {
  await ready();
  const v = tf.variable(tf.ones([2]));
  assert.throws(() => new Optimizer([], [sgdStep]), /an optimizer needs parameters/);
  assert.throws(() => new Optimizer([tf.ones([2]) as unknown as tf.Variable], [sgdStep]), /parameter 0 is not a tf.Variable.*tf.variable/);
  assert.throws(() => new Optimizer([v], []), /at least one stepper, e.g. new Optimizer\(params, \[sgdStep\]/);
  assert.throws(() => new Optimizer([v], ["sgdStep" as unknown as Stepper]), /stepper 0 is not a function/);
  assert.throws(() => new Optimizer([v], [sgdStep], { lr: NaN }), /lr must be a finite number, got NaN/);
  assert.throws(() => new Optimizer([v], [sgdStep], { momentum: 0.9 } as never), /unknown optimizer option "momentum"; the hyper-parameters are lr, mom/);
  const opt = new Optimizer([v], [sgdStep, stepStat], { lr: 0.5 });
  const wrong = tf.ones([3]);
  assert.throws(() => opt.step(new Map([[v, wrong]])), /gradient of .* has shape \[3\] but the parameter has \[2\]/);
  const stranger = tf.variable(tf.ones([2]));
  assert.throws(() => opt.step({ [stranger.name]: wrong }), /none of the 1 gradients .* belongs to this optimizer's parameters/);
  assert.throws(() => opt.step([wrong] as never), /step needs the gradients as a Map from variable to gradient/);
  const g = tf.ones([2]);
  opt.step(new Map([[v, g]]));
  assert.deepEqual([...v.dataSync()], [0.5, 0.5]);
  assert.equal(opt.stateDict().params[0]!.step, 1, "stepStat's count is the saved step");
  tf.dispose([v, wrong, g, stranger]);
});
