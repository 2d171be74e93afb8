process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { BCEWithLogitsLossFlat, CrossEntropyLossFlat, L1LossFlat, LabelSmoothingCrossEntropy, MSELossFlat } from "../lib/learner/losses";
import { torchJson } from "./helpers/torch";

const LOGITS = [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [1.5, 1.5, -2.0]];
const TARGS = [0, 2, 1, 1];

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

function value(t: tf.Tensor): number[] {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

test("CrossEntropyLossFlat and label smoothing match torch.nn.functional.cross_entropy", async () => {
  await ready();
  const ref = torchJson<{ ce: number; ls: number; none: number[] }>(`
import torch.nn.functional as F
x = torch.tensor(${JSON.stringify(LOGITS)}); y = torch.tensor(${JSON.stringify(TARGS)})
print(json.dumps({"ce": F.cross_entropy(x, y).item(), "ls": F.cross_entropy(x, y, label_smoothing=0.1).item(),
                  "none": F.cross_entropy(x, y, reduction="none").tolist()}))`);
  const x = tf.tensor2d(LOGITS);
  const y = tf.tensor1d(TARGS, "int32");
  close(value(CrossEntropyLossFlat().forward(x, y))[0]!, ref.ce);
  close(value(LabelSmoothingCrossEntropy({ eps: 0.1 }).forward(x, y))[0]!, ref.ls);
  close(value(CrossEntropyLossFlat({ labelSmoothing: 0.1 }).forward(x, y))[0]!, ref.ls);
  value(CrossEntropyLossFlat().forward(x, y, "none")).forEach((v, i) => close(v, ref.none[i]!));
  // hand check of item 0: log(e^2 + e^-1 + e^0.5) − 2
  close(value(CrossEntropyLossFlat().forward(x, y, "none"))[0]!, Math.log(Math.exp(2) + Math.exp(-1) + Math.exp(0.5)) - 2);
  tf.dispose([x, y]);
});

test("CrossEntropyLossFlat over pixels (segmentation) matches torch's cross_entropy on [n, classes, h, w], channels last or with axis 1", async () => {
  await ready();
  const logits = tf.tidy(() => tf.randomNormal([2, 3, 4, 5], 0, 2, "float32", 11)); // [n, h, w, classes]
  const targ = tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([2, 3, 4], 0, 5, "float32", 12)), "int32"));
  const x = Array.from(logits.dataSync()), y = Array.from(targ.dataSync());
  const ref = torchJson<{ ce: number; ls: number }>(`
import torch.nn.functional as F
x = torch.tensor(${JSON.stringify(x)}).reshape(2, 3, 4, 5).permute(0, 3, 1, 2); y = torch.tensor(${JSON.stringify(y)}).reshape(2, 3, 4)
print(json.dumps({"ce": F.cross_entropy(x, y).item(), "ls": F.cross_entropy(x, y, label_smoothing=0.1).item()}))`);
  close(value(CrossEntropyLossFlat().forward(logits, targ))[0]!, ref.ce);
  close(value(CrossEntropyLossFlat({ labelSmoothing: 0.1 }).forward(logits, targ))[0]!, ref.ls);
  const nchw = tf.transpose(logits, [0, 3, 1, 2]);
  const ce1 = CrossEntropyLossFlat({ axis: 1 });
  close(value(ce1.forward(nchw, targ))[0]!, ref.ce);
  // activation and decodes work along the same axis: softmax sums to 1 over classes, argmax = channels-last argmax
  const probs = ce1.activation(nchw);
  value(tf.sum(probs, 1)).forEach((v) => close(v, 1));
  assert.deepEqual(value(ce1.decodes(probs)), value(tf.argMax(logits, -1)));
  assert.throws(() => CrossEntropyLossFlat({ axis: 4 }).forward(logits, targ), /axis 4 is not an axis of predictions of shape \[2,3,4,5\]/);
  tf.dispose([logits, targ, nchw, probs]);
});

test("BCEWithLogitsLossFlat matches torch's binary_cross_entropy_with_logits; decodes with thresh", async () => {
  await ready();
  const t = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]];
  const ref = torchJson<{ m: number; none: number[] }>(`
import torch.nn.functional as F
x = torch.tensor(${JSON.stringify(LOGITS)}); t = torch.tensor(${JSON.stringify(t)}, dtype=torch.float32)
print(json.dumps({"m": F.binary_cross_entropy_with_logits(x, t).item(),
                  "none": F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1).tolist()}))`);
  const x = tf.tensor2d(LOGITS);
  const y = tf.tensor2d(t);
  const loss = BCEWithLogitsLossFlat({ thresh: 0.6 });
  close(value(loss.forward(x, y))[0]!, ref.m);
  value(loss.forward(x, y, "none")).forEach((v, i) => close(v, ref.none[i]!));
  // sigmoid(0.3) = 0.574 < 0.6 → 0; sigmoid(0.5) = 0.62 → 1
  const probs = loss.activation(x);
  assert.deepEqual(value(loss.decodes(probs)), [1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0]);
  tf.dispose([x, y, probs]);
});

test("MSELossFlat and L1LossFlat average over flattened values", async () => {
  await ready();
  const p = tf.tensor2d([[1, 2], [3, 4]]);
  const t = tf.tensor1d([1.5, 2, 2, 6]);
  close(value(MSELossFlat().forward(p, t))[0]!, (0.25 + 0 + 1 + 4) / 4);
  close(value(L1LossFlat().forward(p, t))[0]!, (0.5 + 0 + 1 + 2) / 4);
  assert.deepEqual(value(MSELossFlat().forward(p, t, "none")), [0.125, 2.5]);
  assert.throws(() => MSELossFlat().forward(p, tf.tensor1d([1, 2, 3])), /MSELossFlat: pred shape \[2,2\] and targ shape \[3\] differ in size/);
  tf.dispose([p, t]);
});
