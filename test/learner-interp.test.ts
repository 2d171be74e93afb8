process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { accuracy } from "../lib/learner/metrics";
import { ClassificationInterpretation } from "../lib/interpret/interpretation";
import { toyDls, toyModel } from "./helpers/learner-data";

test("a trained Learner feeds ClassificationInterpretation: confusion matrix agrees with the accuracy metric", async () => {
  await ready();
  const dls = toyDls({ n: 128 });
  const learn = new Learner(dls, toyModel().model, { progress: false, metrics: accuracy, lr: 1e-2 });
  await learn.fit(2);
  const before = tf.memory().numTensors;
  const interp = await ClassificationInterpretation.fromLearner(learn);
  assert.equal(tf.memory().numTensors, before);
  const cm = interp.confusionMatrix();
  const total = cm.flat().reduce((a, b) => a + b, 0);
  assert.equal(total, dls.valid.n);
  const acc = (cm[0]![0]! + cm[1]![1]!) / total;
  assert.ok(Math.abs(acc - learn.recorder.values.at(-1)![2]!) < 1e-9, `${acc} vs ${learn.recorder.values.at(-1)![2]}`);
  // an independent count from the raw predictions: matrix cell [target][argmax], and −ln p[target]
  const { preds, targs, losses } = await learn.getPreds({ withLoss: true });
  const p = preds.arraySync() as number[][];
  const t = Array.from(targs.dataSync());
  const counted = [[0, 0], [0, 0]];
  p.forEach((row, i) => counted[t[i]!]![row[1]! > row[0]! ? 1 : 0]!++);
  assert.deepEqual(cm, counted);
  assert.ok(acc > 0.5, `accuracy ${acc}`);
  const top = interp.topLosses(3);
  const own = p.map((row, i) => -Math.log(row[t[i]!]!));
  assert.deepEqual(top.indices, own.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 3).map(([, i]) => i));
  top.indices.forEach((idx, k) => assert.ok(Math.abs(own[idx]! - top.losses[k]!) < 1e-5, `${own[idx]} vs ${top.losses[k]}`));
  tf.dispose([preds, targs, losses!]);
});
