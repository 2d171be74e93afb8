process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { CarriedState, Embedding, LSTM, Linear, ModelResetter, Module, RNN, RNNRegularizer, lstmCell, zeroStates } from "../lib/models/rnn";
import { CrossEntropyLossFlat } from "../lib/learner/losses";
import type { Learner } from "../lib/learner/learner";
import type { Callback } from "../lib/learner/callback";
import { torchJson } from "./helpers/torch";
import { registerEngines } from "./helpers/engines";

/** A module that owns one recurrent block, to test it alone. */
class Holder extends Module {
  constructor(seed: number) {
    super({ outputShape: (s) => s, seed });
  }
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

/** PyTorch's layout of a recurrent layer's weights: [gates·h, in] matrices (ours are transposed). */
function torchWeights(layers: { wIh: { read(): tf.Tensor }; wHh: { read(): tf.Tensor }; bIh: { read(): tf.Tensor }; bHh: { read(): tf.Tensor } }[]) {
  return layers.map((w) => ({
    w_ih: (tf.transpose(w.wIh.read()) as tf.Tensor2D).arraySync(),
    w_hh: (tf.transpose(w.wHh.read()) as tf.Tensor2D).arraySync(),
    b_ih: Array.from(w.bIh.read().dataSync()),
    b_hh: Array.from(w.bHh.read().dataSync()),
  }));
}

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
}

test("LSTM and RNN give PyTorch's nn.LSTM / nn.RNN outputs and final states with the same weights (2 layers)", async () => {
  await ready();
  const [bs, sl, nIn, nH, nL] = [3, 5, 4, 6, 2];
  const owner = new Holder(3);
  const lstm = new LSTM(owner, "lstm", nIn, nH, nL);
  const rnn = new RNN(owner, "rnn", nIn, nH, nL);
  const x = tf.randomNormal([bs, sl, nIn], 0, 1, "float32", 1);
  const h0 = [0, 1].map((l) => tf.randomNormal([bs, nH], 0, 0.5, "float32", 10 + l));
  const c0 = [0, 1].map((l) => tf.randomNormal([bs, nH], 0, 0.5, "float32", 20 + l));
  const ours = lstm.forward(x, h0, c0);
  const oursRnn = rnn.forward(x, h0);
  const input = JSON.stringify({
    x: x.arraySync(), h0: h0.map((t) => t.arraySync()), c0: c0.map((t) => t.arraySync()),
    lstm: torchWeights(lstm.layers), rnn: torchWeights(rnn.layers),
  });
  const ref = torchJson<{ out: number[]; h: number[]; c: number[]; rout: number[]; rh: number[] }>(`
d = json.loads(${JSON.stringify(input)})
T = lambda v: torch.tensor(v, dtype=torch.float32)
def load(m, ws):
    for l, w in enumerate(ws):
        for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
            name = ("weight_" if k[0] == "w" else "bias_") + k[2:] + f"_l{l}"
            getattr(m, name).data.copy_(T(w[k]))
lstm = torch.nn.LSTM(${nIn}, ${nH}, ${nL}, batch_first=True); load(lstm, d["lstm"])
rnn = torch.nn.RNN(${nIn}, ${nH}, ${nL}, batch_first=True); load(rnn, d["rnn"])
with torch.no_grad():
    out, (h, c) = lstm(T(d["x"]), (T(d["h0"]), T(d["c0"])))
    rout, rh = rnn(T(d["x"]), T(d["h0"]))
print(json.dumps({"out": out.flatten().tolist(), "h": h.flatten().tolist(), "c": c.flatten().tolist(),
                  "rout": rout.flatten().tolist(), "rh": rh.flatten().tolist()}))
`);
  const flat = (ts: tf.Tensor[]) => ts.flatMap((t) => Array.from(t.dataSync()));
  assert.ok(maxDiff(Array.from(ours.out.dataSync()), ref.out) < 1e-5, "LSTM outputs");
  assert.ok(maxDiff(flat(ours.h), ref.h) < 1e-5, "LSTM final h");
  assert.ok(maxDiff(flat(ours.c), ref.c) < 1e-5, "LSTM final c");
  assert.ok(maxDiff(Array.from(oursRnn.out.dataSync()), ref.rout) < 1e-5, "RNN outputs");
  assert.ok(maxDiff(flat(oursRnn.h), ref.rh) < 1e-5, "RNN final h");
});

test("Linear and Embedding draw PyTorch's initial distributions: uniform ±1/√nIn and normal(0, 1)", async () => {
  await ready();
  const owner = new Holder(0);
  const lin = new Linear(owner, "l", 100, 50);
  const emb = new Embedding(owner, "e", 200, 50);
  const w = Array.from(lin.weight.read().dataSync());
  assert.ok(Math.max(...w.map(Math.abs)) <= 0.1 + 1e-7 && Math.max(...w.map(Math.abs)) > 0.099, "|w| up to 1/√100");
  const e = Array.from(emb.weight.read().dataSync());
  const mean = e.reduce((a, b) => a + b, 0) / e.length;
  const std = Math.sqrt(e.reduce((a, b) => a + (b - mean) ** 2, 0) / e.length);
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(std - 1) < 0.05, `embedding mean ${mean}, std ${std}`);
  assert.deepEqual(lin.forward(tf.ones([2, 3, 100])).shape, [2, 3, 50], "Linear keeps leading axes");
});

test("CarriedState cuts the gradient at the batch boundary (the book's detach), and ModelResetter clears it", async () => {
  await ready();
  class Stateful extends Module {
    state = new CarriedState();
    w = this.param("w", [1], { uniform: 0 });
    constructor() {
      super({ outputShape: (s) => s });
    }
    forward(x: tf.Tensor): tf.Tensor {
      const [h] = this.state.get(x.shape[0]!, () => zeroStates(1, x.shape[0]!, 1));
      const next = tf.add(tf.mul(h!, 2), tf.mul(x, this.w.read()));
      this.state.set([next]);
      return next;
    }
    override reset(): void {
      this.state.reset();
    }
  }
  const m = new Stateful();
  m.w.write(tf.tensor1d([1]));
  const x = tf.ones([1, 1]);
  const grad = () => {
    const { grads } = tf.variableGrads(() => tf.sum(m.forward(x)) as tf.Scalar, [m.w.read() as tf.Variable]);
    const g = Object.values(grads)[0]!.dataSync()[0]!;
    tf.dispose(Object.values(grads));
    return g;
  };
  // Batch 1: h = 2·0 + x·w → d/dw = 1. Batch 2: h = 2·h1 + x·w; with h1 detached d/dw = 1 (without detach it would be 3).
  assert.equal(grad(), 1);
  assert.equal(grad(), 1);
  assert.deepEqual(Array.from(m.forward(x).dataSync()), [7], "the value still carries over: 2·3 + 1");
  new ModelResetter().beforeValidate({ model: m.asModel() } as unknown as Learner);
  assert.deepEqual(Array.from(m.forward(x).dataSync()), [1], "after reset the state starts from zero");
});

test("RNNRegularizer adds alpha·mean(out²) and beta·mean((raw[t+1] − raw[t])²) to lossGrad while training only, not to the recorded loss (worked by hand)", async () => {
  await ready();
  // raw [1, 2, 2] = [[1, 2], [3, 5]]: TAR = mean((3−1)², (5−2)²) = (4 + 9) / 2 = 6.5
  // out = raw · 2 (dropout's scaling, nothing dropped): AR = mean(4, 16, 36, 100) = 39
  const raw = tf.tensor3d([[[1, 2], [3, 5]]]);
  const layer = { activations: { raw: raw, out: tf.mul(raw, 2) } as { raw: tf.Tensor; out: tf.Tensor } | undefined };
  const loss = tf.scalar(Math.log(2));
  const learn = { training: true, loss: loss, lossGrad: loss, model: { layers: [{}, layer] } } as unknown as Learner;
  new RNNRegularizer({ alpha: 2, beta: 1 }).afterLoss(learn);
  assert.ok(Math.abs(learn.lossGrad!.dataSync()[0]! - (Math.log(2) + 2 * 39 + 1 * 6.5)) < 1e-4, "found on the model's layer");
  assert.equal(learn.loss, loss, "the recorded loss stays the plain loss, as fastai");
  learn.lossGrad = loss;
  new RNNRegularizer({ alpha: 0, beta: 1, source: layer }).afterLoss(learn);
  assert.ok(Math.abs(learn.lossGrad!.dataSync()[0]! - (Math.log(2) + 6.5)) < 1e-4, "TAR only, from an explicit source");
  learn.lossGrad = loss;
  (learn as { training: boolean }).training = false;
  new RNNRegularizer().afterLoss(learn);
  assert.equal(learn.lossGrad, loss, "validation: untouched");
  (learn as { training: boolean }).training = true;
  layer.activations = undefined;
  new RNNRegularizer().afterLoss(learn);
  assert.equal(learn.lossGrad, loss, "no activations kept this batch: untouched");
  const bare = { training: true, loss: loss, lossGrad: loss, model: { layers: [{}] } } as unknown as Learner;
  assert.throws(() => new RNNRegularizer().afterLoss(bare), /no layer of the model keeps `activations`/);
  assert.throws(() => new RNNRegularizer({ alpha: -1 }), /alpha is a weight ≥ 0/);
});

test("RNNRegularizer in a fit: the gradients include AR (a different step than without it), the recorded training loss does not", async () => {
  await ready();
  const { Learner } = await import("../lib/learner/learner");
  const { tensorDataLoaders } = await import("../lib/data/tensors");
  class Tiny extends Module {
    emb = new Embedding(this, "emb", 4, 3);
    activations?: { raw: tf.Tensor; out: tf.Tensor };
    constructor() {
      super({ outputShape: (s) => [s[0]!, s[1]!, 4] });
    }
    forward(x: tf.Tensor, training: boolean): tf.Tensor {
      const h = this.emb.forward(x);
      this.activations = training ? { raw: h, out: h } : undefined;
      return tf.matMul(tf.reshape(h, [-1, 3]), this.emb.weight.read() as tf.Tensor2D, false, true).reshape([x.shape[0]!, x.shape[1]!, 4]);
    }
  }
  const x = tf.randomUniform([8, 5], 0, 4, "int32", 3);
  const y = tf.randomUniform([8, 5], 0, 4, "int32", 4);
  const run = async (cbs: Callback[]) => {
    const m = new Tiny();
    const losses: number[] = [];
    const learn = new Learner(tensorDataLoaders([x, y], [x, y], { bs: 8, shuffle: false }), m.asModel(), {
      lossFunc: CrossEntropyLossFlat(), progress: false, cbs: [...cbs, { afterLoss: (l: Learner) => void losses.push(l.loss!.dataSync()[0]!) }],
    });
    await learn.fit(1, 1e-1);
    const w = Array.from(m.emb.weight.read().dataSync());
    learn.dispose();
    return { w, first: losses[0]! };
  };
  const plain = await run([]);
  const reg = await run([new RNNRegularizer({ alpha: 2, beta: 0 })]);
  assert.ok(Math.abs(plain.first - reg.first) < 1e-6, `the recorded loss of the first batch is the plain loss (${plain.first} vs ${reg.first})`);
  assert.ok(plain.w.some((v, i) => Math.abs(v - reg.w[i]!) > 1e-4), "AR changed the step");
});

test("the Learner trains a model with a parameter the loss never reaches (left out of the step, as PyTorch skips a None grad)", async () => {
  await ready();
  class PartlyUsed extends Module {
    used = new Linear(this, "used", 3, 4);
    unused = new Linear(this, "unused", 3, 4);
    constructor() {
      super({ outputShape: (s) => [s[0]!, 4] });
    }
    forward(x: tf.Tensor): tf.Tensor {
      return this.used.forward(tf.cast(x, "float32"));
    }
  }
  const { Learner } = await import("../lib/learner/learner");
  const { tensorDataLoaders } = await import("../lib/data/tensors");
  const x = tf.randomUniform([64, 3], 0, 4, "int32", 1);
  const y = tf.randomUniform([64], 0, 4, "int32", 2);
  const m = new PartlyUsed();
  const before = Array.from(m.unused.weight.read().dataSync());
  const usedBefore = Array.from(m.used.weight.read().dataSync());
  const learn = new Learner(tensorDataLoaders([x, y], [x, y], { bs: 16 }), m.asModel(), { lossFunc: CrossEntropyLossFlat(), progress: false });
  await learn.fit(1, 1e-2);
  assert.deepEqual(Array.from(m.unused.weight.read().dataSync()), before, "the unused weight is not touched (no decay either)");
  assert.notDeepEqual(Array.from(m.used.weight.read().dataSync()), usedBefore, "the used one trains");
  learn.dispose();
});

test("lstmCell's gradients are PyTorch autograd's on every engine: an LSTM's loss over its outputs and both final states, to every weight, the input and both initial states (2 layers)", async () => {
  const engines = await registerEngines();
  const [bs, sl, nIn, nH, nL] = [3, 4, 5, 6, 2];
  const owner = new Holder(5);
  const lstm = new LSTM(owner, "lstm", nIn, nH, nL);
  const x = tf.randomNormal([bs, sl, nIn], 0, 1, "float32", 2);
  const h0 = [0, 1].map((l) => tf.randomNormal([bs, nH], 0, 0.5, "float32", 30 + l));
  const c0 = [0, 1].map((l) => tf.randomNormal([bs, nH], 0, 0.5, "float32", 40 + l));
  // weights for each output, so that each part of the gradient is different
  const rOut = tf.randomNormal([bs, sl, nH], 0, 1, "float32", 3), rH = tf.randomNormal([nL, bs, nH], 0, 1, "float32", 4), rC = tf.randomNormal([nL, bs, nH], 0, 1, "float32", 5);
  const vars = lstm.layers.flatMap((w) => [w.wIh, w.wHh, w.bIh, w.bHh].map((v) => v.read() as tf.Variable));
  const loss = (xi: tf.Tensor, ...states: tf.Tensor[]) => {
    const r = lstm.forward(xi, states.slice(0, nL), states.slice(nL));
    return tf.addN([tf.sum(tf.mul(r.out, rOut)), tf.sum(tf.mul(tf.stack(r.h), rH)), tf.sum(tf.mul(tf.stack(r.c), rC))]) as tf.Scalar;
  };
  const input = JSON.stringify({
    x: x.arraySync(), h0: h0.map((t) => t.arraySync()), c0: c0.map((t) => t.arraySync()),
    rOut: rOut.arraySync(), rH: rH.arraySync(), rC: rC.arraySync(), lstm: torchWeights(lstm.layers),
  });
  const ref = torchJson<Record<string, number[]>>(`
d = json.loads(${JSON.stringify(input)})
T = lambda v: torch.tensor(v, dtype=torch.float32, requires_grad=True)
lstm = torch.nn.LSTM(${nIn}, ${nH}, ${nL}, batch_first=True)
for l, w in enumerate(d["lstm"]):
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
        getattr(lstm, ("weight_" if k[0] == "w" else "bias_") + k[2:] + f"_l{l}").data.copy_(torch.tensor(w[k]))
x, h0, c0 = T(d["x"]), T(d["h0"]), T(d["c0"])
out, (h, c) = lstm(x, (h0, c0))
loss = (out * torch.tensor(d["rOut"])).sum() + (h * torch.tensor(d["rH"])).sum() + (c * torch.tensor(d["rC"])).sum()
loss.backward()
res = {"x": x.grad.flatten().tolist(), "h0": h0.grad.flatten().tolist(), "c0": c0.grad.flatten().tolist()}
for l in range(${nL}):
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        g = getattr(lstm, f"{k}_l{l}").grad
        res[f"{k}_l{l}"] = (g.t() if k.startswith("weight") else g).flatten().tolist()
print(json.dumps(res))
`);
  const close = (got: tf.Tensor | tf.Tensor[], want: number[], what: string) => {
    const g = (Array.isArray(got) ? got : [got]).flatMap((t) => Array.from(t.dataSync()));
    const d = maxDiff(g, want);
    assert.ok(d < 1e-5 * Math.max(1, ...want.map(Math.abs)), `${what}: differs by ${d}`);
  };
  // on the native engine the cell's arrays come from its pool, holding earlier values: run twice there
  for (const e of engines.flatMap((n) => (n === "native" ? [n, n] : [n]))) {
    await tf.setBackend(e);
    const { grads: wGrads } = tf.variableGrads(() => loss(x, ...h0, ...c0), vars);
    const inGrads = tf.grads(loss)([x, ...h0, ...c0]);
    close(inGrads[0]!, ref["x"]!, `${e}: input`);
    close(inGrads.slice(1, 1 + nL), ref["h0"]!, `${e}: initial h`);
    close(inGrads.slice(1 + nL), ref["c0"]!, `${e}: initial c`);
    lstm.layers.forEach((w, l) => {
      close(wGrads[(w.wIh.read() as tf.Variable).name]!, ref[`weight_ih_l${l}`]!, `${e}: W_ih of layer ${l}`);
      close(wGrads[(w.wHh.read() as tf.Variable).name]!, ref[`weight_hh_l${l}`]!, `${e}: W_hh of layer ${l}`);
      close(wGrads[(w.bIh.read() as tf.Variable).name]!, ref[`bias_ih_l${l}`]!, `${e}: b_ih of layer ${l}`);
      close(wGrads[(w.bHh.read() as tf.Variable).name]!, ref[`bias_hh_l${l}`]!, `${e}: b_hh of layer ${l}`);
    });
    tf.dispose([...inGrads, ...Object.values(wGrads)]);
  }
  await tf.setBackend("cpu");
});

test("lstmCell on pooled arrays (native, 64 × 128: large enough for the pool): the same values and gradients as on cpu, h_{t-1}'s gradient exactly 0", async () => {
  const engines = await registerEngines();
  if (!engines.includes("native")) return;
  const [bs, h] = [64, 128];
  const gates = tf.randomNormal([bs, 4 * h], 0, 1, "float32", 50) as tf.Tensor2D;
  const state = tf.randomNormal([bs, 2 * h], 0, 1, "float32", 51) as tf.Tensor2D;
  const r = tf.randomNormal([bs, 2 * h], 0, 1, "float32", 52);
  const run = () => {
    const [dg, ds] = tf.grads((g: tf.Tensor, st: tf.Tensor) => tf.sum(tf.mul(lstmCell(g as tf.Tensor2D, st as tf.Tensor2D), r)))([gates, state]);
    const out = [lstmCell(gates, state), dg!, ds!].map((t) => t.dataSync().slice() as Float32Array);
    return out;
  };
  await tf.setBackend("cpu");
  const want = run();
  await tf.setBackend("native");
  for (let i = 0; i < 3; i++) {
    // arrays of these sizes disposed in between: the pool hands them out again with their old values
    tf.dispose(tf.tidy(() => [tf.fill([bs, 4 * h], 7), tf.fill([bs, 2 * h], 7)]));
    const got = run();
    got.forEach((v, k) => assert.deepEqual(v, want[k], `round ${i}, output ${k}`));
    for (let b = 0; b < bs; b++) for (let j = 0; j < h; j++) assert.equal(got[2]![b * 2 * h + j], 0);
  }
  await tf.setBackend("cpu");
  tf.dispose([gates, state, r]);
});

test("lstmCell by hand: gates 0 (σ = 0.5, tanh = 0) and c_{t-1} = 2 give c_t = 1, h_t = 0.5·tanh(1); a bad shape is an error", async () => {
  await ready();
  const y = lstmCell(tf.zeros([1, 4]) as tf.Tensor2D, tf.tensor2d([[7, 2]]));
  const [h, c] = Array.from(y.dataSync());
  assert.equal(c, 1);
  assert.equal(h, Math.fround(0.5 * Math.tanh(1)));
  assert.throws(() => lstmCell(tf.zeros([1, 6]) as tf.Tensor2D, tf.zeros([1, 2]) as tf.Tensor2D), /gates \[bs, 4h\] and state \[bs, 2h\], got \[1,6\]/);
});

test("an LSTM over a one-step sequence has gradients (a one-way split would break tfjs's SplitV gradient)", async () => {
  await ready();
  const owner = new Holder(1);
  const lstm = new LSTM(owner, "one", 3, 4, 1);
  const vars = lstm.layers.flatMap((w) => [w.wIh, w.wHh, w.bIh, w.bHh].map((v) => v.read() as tf.Variable));
  const x = tf.randomNormal([2, 1, 3], 0, 1, "float32", 7);
  const { grads } = tf.variableGrads(() => tf.sum(lstm.forward(x, zeroStates(1, 2, 4), zeroStates(1, 2, 4)).out) as tf.Scalar, vars);
  const wIhGrad = grads[vars[0]!.name]!;
  assert.deepEqual(wIhGrad.shape, [3, 16]);
  assert.ok(Array.from(wIhGrad.dataSync()).some((v) => v !== 0));
});

test("a Module's activations outlive the model call that disposes its intermediate tensors, until its next call (RNNRegularizer reads them after it)", async () => {
  await ready();
  class Acts extends Module {
    emb = new Embedding(this, "emb", 4, 3);
    activations?: { raw: tf.Tensor; out: tf.Tensor };
    constructor() {
      super({ outputShape: (s) => [s[0]!, s[1]!, 3] });
    }
    forward(x: tf.Tensor, training: boolean): tf.Tensor {
      const h = this.emb.forward(x);
      const raw = tf.mul(h, 2); // intermediate: the model's call disposes it
      this.activations = training ? { raw, out: h } : undefined;
      return tf.add(raw, 1);
    }
  }
  const m = new Acts();
  const model = tf.sequential({ layers: [m, tf.layers.dense({ units: 2 })] });
  const x = tf.tensor2d([[0, 1], [2, 3]], [2, 2], "int32");
  const table = m.emb.weight.read().arraySync() as number[][];
  const before = tf.memory().numTensors;
  const calls: { raw: tf.Tensor; out: tf.Tensor }[] = [];
  for (let i = 0; i < 3; i++) {
    tf.tidy(() => {
      model.apply(x, { training: true });
      const acts = m.activations!;
      assert.ok(!acts.raw.isDisposed && !acts.out.isDisposed, "alive after the call returned");
      // raw = 2 · the embedding rows of ids 0, 1, 2, 3 (worked from the table)
      const want = [[table[0]!, table[1]!], [table[2]!, table[3]!]].map((r) => r.map((row) => row.map((v) => 2 * v)));
      const got = acts.raw.arraySync() as number[][][];
      got.flat(2).forEach((v, k) => assert.ok(Math.abs(v - want.flat(2)[k]!) < 1e-6));
      calls.push(acts);
    });
    if (i > 0) assert.ok(calls[i - 1]!.raw.isDisposed && calls[i - 1]!.out.isDisposed, "the previous call's are disposed by the next");
  }
  assert.equal(tf.memory().numTensors - before, 2, "only the last call's raw and out stay");
  tf.tidy(() => void model.apply(x, { training: false }));
  assert.equal(m.activations, undefined);
  assert.ok(calls[2]!.raw.isDisposed && calls[2]!.out.isDisposed, "a call without activations disposes the kept ones");
  assert.equal(tf.memory().numTensors, before);
  tf.tidy(() => void model.apply(x, { training: true }));
  const last = m.activations!;
  assert.ok(!last.raw.isDisposed);
  model.dispose();
  assert.ok(last.raw.isDisposed && last.out.isDisposed, "disposing the model disposes the kept ones");
});
