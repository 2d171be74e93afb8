/**
 * The shipped checkpoint (checkpoints/fmnist-xresnet18-tiny.safetensors): it loads with its own
 * architecture options and stats, gives PyTorch's predictions on Fashion-MNIST, and its frozen
 * features transfer to MNIST digits with 20 labels per class far better than random features.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "wasm";
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { archMeta, xresnet18 } from "../lib/models/archs";
import { shippedCheckpoint } from "../lib/models/pretrained";
import { createHead } from "../lib/models/vision";
import { loadFashionTest, loadMnistDigits, mnistSplit, subset, ROOT, type ImageSet } from "./fixtures/models/digits";

const FMNIST_CKPT = "fmnist-xresnet18-tiny";
const DIGITS_CKPT = "digits04-xresnet18-tiny";

function normalized(s: ImageSet, mean: number, std: number): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(tf.tensor4d(s.x, [s.n, 28, 28, 1]), mean), std) as tf.Tensor4D);
}

function predictInBatches(model: tf.LayersModel, x: tf.Tensor4D, bs = 250): tf.Tensor {
  const outs: tf.Tensor[] = [];
  for (let i = 0; i < x.shape[0]; i += bs) {
    outs.push(tf.tidy(() => model.predict(tf.slice(x, i, Math.min(bs, x.shape[0] - i))) as tf.Tensor));
  }
  const y = tf.concat(outs);
  tf.dispose(outs);
  return y;
}

test("the shipped checkpoint loads with its stats and gives PyTorch's Fashion-MNIST predictions", async () => {
  await ready();
  const file = shippedCheckpoint(FMNIST_CKPT);
  const model = await xresnet18({ weights: file });
  const meta = archMeta(model)!;
  assert.deepEqual(meta.options.nIn, 1);
  assert.equal(model.outputs[0]!.shape[1], 10);
  const stats = meta.stats!;
  const n = 1000;
  const data = loadFashionTest(n);
  const x = normalized(data, stats.mean[0]!, stats.std[0]!);
  const pred = Array.from(tf.tidy(() => tf.argMax(predictInBatches(model, x), 1)).dataSync());
  x.dispose();
  const py = `
import sys, json, gzip, numpy as np, torch
sys.path.insert(0, ${JSON.stringify(path.join(ROOT, "scripts"))})
from pretrain_models import ResNet, load_safetensors
torch.set_num_threads(1)
sd, meta = load_safetensors(${JSON.stringify(file)})
o = json.loads(meta["tsfast.arch_options"])
m = ResNet("xresnet18", n_in=1, n_out=10, widen=o["widen"], stem_szs=o["stemSzs"]); m.load_state_dict(sd); m.eval()
raw = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
lab = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
x = (torch.from_numpy(raw.astype(np.float32) / 255).reshape(-1, 1, 28, 28) - json.loads(meta["tsfast.mean"])[0]) / json.loads(meta["tsfast.std"])[0]
with torch.no_grad(): pred = torch.cat([m(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
print(json.dumps({"pred": pred[:${n}].tolist(), "acc": float((pred.numpy() == lab).mean())}))
`;
  // PyTorch's predictions on the first n images, and its accuracy on all 10,000 test images
  const ref = JSON.parse(execFileSync("/usr/bin/python3", ["-c", py], { encoding: "utf8" })) as { pred: number[]; acc: number };
  const agree = pred.filter((p, i) => p === ref.pred[i]).length / n;
  const acc = pred.filter((p, i) => p === data.y[i]).length / n;
  assert.ok(agree >= 0.998, `tsfast and PyTorch agree on ${agree * 100}% of predictions`);
  assert.ok(acc > ref.acc - 0.03, `accuracy on the first ${n} test images ${acc} vs PyTorch's ${ref.acc} on all 10k`);
  // the accuracy the checkpoint's metadata (and the model card) states is what PyTorch measures
  const cardAcc = Number(meta.fileMetadata?.["tsfast.test_accuracy"]);
  assert.ok(Math.abs(cardAcc - ref.acc) < 5e-4, `metadata says ${cardAcc}, PyTorch measures ${ref.acc}`);
  model.dispose();
});

/** Train fastai's head alone on fixed features (Adam, 30 epochs, full batch): a transfer probe. */
async function headProbe(features: tf.Tensor4D, y: Int32Array, validF: tf.Tensor4D, validY: Int32Array): Promise<number> {
  const input = tf.input({ shape: features.shape.slice(1) as number[] });
  const head = tf.model({ inputs: input, outputs: createHead(input, 5, { seed: 1 }) });
  // the head outputs logits: fit a softmax on top through a wrapper model
  const probs = tf.model({ inputs: input, outputs: tf.layers.softmax().apply(head.outputs[0]!) as tf.SymbolicTensor });
  probs.compile({ optimizer: tf.train.adam(3e-3), loss: "sparseCategoricalCrossentropy" });
  const ys = tf.tensor1d(Array.from(y), "float32");
  await probs.fit(features, ys, { epochs: 30, batchSize: 50, shuffle: false, verbose: 0 });
  ys.dispose();
  const pred = tf.tidy(() => tf.argMax(probs.predict(validF) as tf.Tensor, 1).dataSync());
  const acc = Array.from(pred).filter((p, i) => p === validY[i]).length / validY.length;
  head.dispose();
  return acc;
}

test("frozen digits-0-4 features transfer to digits 5-9 (20 labels per class) far better than random ones", async () => {
  await ready();
  const digits = loadMnistDigits();
  const { train, valid } = mnistSplit(digits.y, 20, 100);
  const five = (idx: number[]) => idx.filter((i) => digits.y[i]! >= 5);
  const relabel = (s: ImageSet): ImageSet => ({ ...s, y: s.y.map((v) => v - 5) });
  const tr = relabel(subset(digits, five(train)));
  const va = relabel(subset(digits, five(valid)));
  const accs: Record<string, number> = {};
  for (const kind of ["pretrained", "random"] as const) {
    const body = await xresnet18(kind === "pretrained"
      ? { weights: DIGITS_CKPT, includeTop: false } // a shipped checkpoint by name
      : { nIn: 1, widen: 0.25, stemSzs: [16, 16, 32], includeTop: false, seed: 3 });
    const stats = archMeta(body)?.stats ?? { mean: [0.13], std: [0.3] };
    const xt = normalized(tr, stats.mean[0]!, stats.std[0]!);
    const xv = normalized(va, stats.mean[0]!, stats.std[0]!);
    const ft = predictInBatches(body, xt) as tf.Tensor4D;
    const fv = predictInBatches(body, xv) as tf.Tensor4D;
    accs[kind] = await headProbe(ft, tr.y, fv, va.y);
    tf.dispose([xt, xv, ft, fv]);
    body.dispose();
  }
  console.log(`head-only probe, digits 5-9, ${tr.n} train / ${va.n} valid: ${JSON.stringify(accs)}`);
  assert.ok(accs["pretrained"]! > 0.7, `pretrained features: ${accs["pretrained"]}`);
  assert.ok(accs["pretrained"]! > accs["random"]! + 0.3, `pretrained ${accs["pretrained"]} vs random ${accs["random"]}`);
});
