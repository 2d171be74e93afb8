/**
 * visionLearner + fineTune from the shipped digits-0-4 checkpoint on digits 5-9 with 20 labels per
 * class (the model card's transfer task), with the real Learner, on the wasm backend (with tsfast's training kernels).
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "wasm";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { xresnet18 } from "../lib/models/archs";
import { accuracy } from "../lib/learner/metrics";
import { modelSummary } from "../lib/learner/summary";
import { visionLearner, visionSplit } from "../lib/models/vision";
import { loadMnistDigits, mnistSplit, subset, ROOT, type ImageSet } from "./fixtures/models/digits";
import { torchJson } from "./helpers/torch";

/** A seeded shuffle (mulberry32) so epochs differ but runs repeat. */
function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

/** In-memory DataLoaders with the data floor's shape (train/valid loaders, vocab, Normalize batch tfm). */
function arrayDls(train: ImageSet, valid: ImageSet, bs: number) {
  let norm: { mean: number[]; std: number[] } | undefined;
  let epoch = 0;
  const loader = (s: ImageSet, shuffle: boolean) => ({
    n: s.n,
    bs,
    length: Math.ceil(s.n / bs),
    async *[Symbol.asyncIterator]() {
      const order = shuffle ? shuffled(s.n, 1000 + epoch++) : Array.from({ length: s.n }, (_, i) => i);
      for (let i = 0; i < s.n; i += bs) {
        const b = subset(s, order.slice(i, i + bs));
        const xb = tf.tidy(() => {
          const x = tf.tensor4d(b.x, [b.n, 28, 28, 1]);
          return norm ? tf.div(tf.sub(x, norm.mean[0]!), norm.std[0]!) : x;
        }) as tf.Tensor4D;
        yield { xb, yb: tf.tensor1d(b.y, "int32") };
      }
    },
  });
  const dls = {
    train: loader(train, true),
    valid: loader(valid, false),
    vocab: ["5", "6", "7", "8", "9"],
    c: 5,
    isMultiLabel: false,
    get normalize() {
      return norm;
    },
    addBatchTfm(t: { type: "Normalize"; mean: number[]; std: number[] }) {
      norm = { mean: t.mean, std: t.std };
    },
    async oneBatch() {
      for await (const b of dls.train) return b;
      throw new Error("empty");
    },
  };
  return dls;
}

test("visionLearner + fineTune(1) from the shipped checkpoint reaches PyTorch's accuracy with the same recipe on digits 5-9", async () => {
  await ready();
  // The reference: PyTorch's fastai-style fine_tune(1) (scripts/pretrain_fmnist.py, which made the model
  // card's numbers) from the same checkpoint on the same 100 training and 200 validation digits, seeds 0 and 1.
  const torchAcc = torchJson<number[]>(`
import sys
sys.path.insert(0, ${JSON.stringify(path.join(ROOT, "scripts"))})
import pretrain_fmnist as P
from pretrain_models import ResNet, load_safetensors
torch.set_num_threads(1)
sd, meta = load_safetensors(${JSON.stringify(path.join(ROOT, "checkpoints", "digits04-xresnet18-tiny.safetensors"))})
norm = (json.loads(meta["tsfast.mean"])[0], json.loads(meta["tsfast.std"])[0])
o = json.loads(meta["tsfast.arch_options"])
mx, my = P.load_mnist()
tr, va = P.mnist_split(my, 20, 40)
tr, va = tr[my[tr] >= 5], va[my[va] >= 5]
accs = []
for seed in (0, 1):
    torch.manual_seed(100 + seed)
    body = ResNet("xresnet18", n_in=1, n_out=o["nOut"], widen=o["widen"], stem_szs=o["stemSzs"])
    body.load_state_dict(sd)
    m = P.make_learner_model(body, 5).to(memory_format=torch.channels_last)
    P.fine_tune(m, mx[tr], my[tr] - 5, 1, 2e-3, 16, norm, seed=seed)
    accs.append(P.accuracy(m, mx[va], my[va] - 5, norm))
print(json.dumps(accs))`);
  assert.equal(torchAcc.length, 2);
  const torchMin = Math.min(...torchAcc);
  assert.ok(torchMin > 0.5, `PyTorch's fine_tune reached only ${torchAcc}`);
  const digits = loadMnistDigits();
  // 40 validation digits per class (not the card's 100) keep this test short on the pure-JS backend
  const { train, valid } = mnistSplit(digits.y, 20, 40);
  const five = (idx: number[]) => idx.filter((i) => digits.y[i]! >= 5);
  const relabel = (s: ImageSet): ImageSet => ({ ...s, y: s.y.map((v) => v - 5) });
  const dls = arrayDls(relabel(subset(digits, five(train))), relabel(subset(digits, five(valid))), 16);
  const learn = await visionLearner(dls, xresnet18, { pretrained: "digits04-xresnet18-tiny", metrics: accuracy, progress: false });
  assert.equal(dls.normalize?.mean.length, 1, "visionLearner added the checkpoint's 1-channel stats");
  const groups = visionSplit(learn.model);
  assert.match(modelSummary(learn.model, groups), /Model frozen up to parameter group #2/);
  const t0 = Date.now();
  await learn.fineTune(1);
  const [loss, acc] = await learn.validate();
  console.log(`fineTune(1): valid loss ${loss}, accuracy ${acc} (PyTorch: ${torchAcc}), ${(Date.now() - t0) / 1000} s`);
  assert.match(modelSummary(learn.model, groups), /Model unfrozen/);
  assert.ok(acc! >= torchMin - 0.06, `accuracy ${acc} vs PyTorch's ${torchAcc}`);
  learn.freeze();
  assert.match(modelSummary(learn.model, groups), /Group 1: [\d,]+ params, frozen except/);
});
