process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { ArrayLoader, rng } from "./helpers/learner-data";
import { torchJson } from "./helpers/torch";

test("four Learner steps (cross-entropy + fastai Adam, no decay on biases) match PyTorch's AdamW with two param groups", async () => {
  await ready();
  const r = rng(11);
  const xs = Array.from({ length: 8 }, () => [0, 0, 0, 0].map(() => r() * 2 - 1));
  const ys = [0, 1, 2, 1, 0, 2, 2, 1];
  const w1 = Array.from({ length: 4 }, () => Array.from({ length: 5 }, () => r() - 0.5));
  const b1 = Array.from({ length: 5 }, () => r() - 0.5);
  const w2 = Array.from({ length: 5 }, () => Array.from({ length: 3 }, () => r() - 0.5));
  const b2 = Array.from({ length: 3 }, () => r() - 0.5);
  const ref = torchJson<{ w1: number[][]; b1: number[]; w2: number[][]; b2: number[] }>(`
import torch.nn.functional as F
x = torch.tensor(${JSON.stringify(xs)}); y = torch.tensor(${JSON.stringify(ys)})
w1 = torch.nn.Parameter(torch.tensor(${JSON.stringify(w1)})); b1 = torch.nn.Parameter(torch.tensor(${JSON.stringify(b1)}))
w2 = torch.nn.Parameter(torch.tensor(${JSON.stringify(w2)})); b2 = torch.nn.Parameter(torch.tensor(${JSON.stringify(b2)}))
opt = torch.optim.AdamW([{"params": [w1, w2], "weight_decay": 0.01}, {"params": [b1, b2], "weight_decay": 0.0}],
                        lr=0.01, betas=(0.9, 0.99), eps=1e-5)
for epoch in range(2):
    for i in range(0, 8, 4):
        xb, yb = x[i:i+4], y[i:i+4]
        loss = F.cross_entropy(torch.relu(xb @ w1 + b1) @ w2 + b2, yb)
        opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"w1": w1.tolist(), "b1": b1.tolist(), "w2": w2.tolist(), "b2": b2.tolist()}))`);
  const input = tf.input({ shape: [2, 2, 1] });
  const d1 = tf.layers.dense({ units: 5, activation: "relu" });
  const d2 = tf.layers.dense({ units: 3 });
  const out = d2.apply(d1.apply(tf.layers.flatten().apply(input))) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  d1.setWeights([tf.tensor2d(w1), tf.tensor1d(b1)]);
  d2.setWeights([tf.tensor2d(w2), tf.tensor1d(b2)]);
  const dls = { train: new ArrayLoader(xs, ys, 4, [2, 2, 1]), valid: new ArrayLoader(xs, ys, 4, [2, 2, 1]) };
  const learn = new Learner(dls, model, { progress: false });
  await learn.fit(2, 0.01);
  const got = [...d1.getWeights(), ...d2.getWeights()].map((t) => Array.from(t.dataSync()));
  const want = [ref.w1.flat(), ref.b1, ref.w2.flat(), ref.b2];
  got.forEach((g, k) => want[k]!.forEach((v, i) => assert.ok(Math.abs(g[i]! - v) < 2e-6, `tensor ${k}[${i}]: ${g[i]} vs ${v}`)));
});
