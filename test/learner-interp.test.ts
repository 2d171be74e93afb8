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
  // top losses are the learner's per-item losses
  const { preds, targs, losses } = await learn.getPreds({ withLoss: true });
  const l = Array.from(losses!.dataSync());
  const top = interp.topLosses(3);
  top.indices.forEach((idx, k) => assert.ok(Math.abs(l[idx]! - top.losses[k]!) < 1e-6));
  tf.dispose([preds, targs, losses!]);
});
