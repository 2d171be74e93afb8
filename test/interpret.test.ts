process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND || "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { ClassificationInterpretation } from "../lib/interpret/interpretation";
import { confusionMatrixFigure } from "../lib/interpret/charts";
import { resultCells, showResults } from "../lib/interpret/results";
import type { InterpretableLearner as LearnerLike, LoaderLike } from "../lib/learner/contracts";
import { figureToSvg } from "../lib/display/svg";

// A known prediction set, worked by hand below.
//  item: target, probs (argmax = prediction)
//   0: cat  [0.70 0.20 0.10] → cat    loss -ln .7 = 0.3567
//   1: cat  [0.30 0.60 0.10] → dog    loss -ln .3 = 1.2040
//   2: cat  [0.50 0.30 0.20] → cat    loss -ln .5 = 0.6931
//   3: dog  [0.10 0.80 0.10] → dog    loss -ln .8 = 0.2231
//   4: dog  [0.20 0.70 0.10] → dog    loss -ln .7 = 0.3567
//   5: dog  [0.60 0.30 0.10] → cat    loss -ln .3 = 1.2040
//   6: bird [0.10 0.10 0.80] → bird   loss -ln .8 = 0.2231
//   7: bird [0.20 0.70 0.10] → dog    loss -ln .1 = 2.3026
//   8: bird [0.10 0.50 0.40] → dog    loss -ln .4 = 0.9163
//   9: dog  [0.05 0.90 0.05] → dog    loss -ln .9 = 0.1054
const vocab = ["cat", "dog", "bird"];
const probs = [
  [0.7, 0.2, 0.1],
  [0.3, 0.6, 0.1],
  [0.5, 0.3, 0.2],
  [0.1, 0.8, 0.1],
  [0.2, 0.7, 0.1],
  [0.6, 0.3, 0.1],
  [0.1, 0.1, 0.8],
  [0.2, 0.7, 0.1],
  [0.1, 0.5, 0.4],
  [0.05, 0.9, 0.05],
];
const targets = [0, 0, 0, 1, 1, 1, 2, 2, 2, 1];
function captureStdoutSync(f: () => void): string {
  const orig = process.stdout.write.bind(process.stdout);
  let buf = "";
  // Tee, not swallow: the test runner reports on the same stream.
  (process.stdout as { write: unknown }).write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
    buf += String(chunk);
    return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
  };
  try {
    f();
  } finally {
    process.stdout.write = orig;
  }
  return buf;
}

async function captureStdout(f: () => Promise<void>): Promise<string> {
  const orig = process.stdout.write.bind(process.stdout);
  let buf = "";
  // Tee, not swallow: the test runner reports on the same stream.
  (process.stdout as { write: unknown }).write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
    buf += String(chunk);
    return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
  };
  try {
    await f();
  } finally {
    process.stdout.write = orig;
  }
  return buf;
}

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function fakeLoader(n: number): LoaderLike & { loads: number } {
  const dl = {
    items: Array.from({ length: n }, (_, i) => `/data/img${i}.png`),
    loads: 0,
    async loadImage(i: number) {
      dl.loads += 1;
      return tf.fill([8, 8, 3], (i + 1) / (n + 1)) as tf.Tensor3D;
    },
  };
  return dl;
}

function fakeLearner(withLoss = true): LearnerLike & { calls: { dsIdx?: number; withLoss?: boolean }[] } {
  const calls: { dsIdx?: number; withLoss?: boolean }[] = [];
  const valid = fakeLoader(probs.length);
  return {
    calls,
    dls: { vocab, train: fakeLoader(0), valid, isMultiLabel: false },
    async getPreds(opts = {}) {
      calls.push(opts);
      const losses = probs.map((r, i) => -Math.log(r[targets[i]!]!));
      return {
        preds: tf.tensor2d(probs),
        targs: tf.tensor1d(targets, "int32"),
        ...(withLoss ? { losses: tf.tensor1d(losses) } : {}),
      };
    },
  };
}

const interp = new ClassificationInterpretation({ vocab, probs, targets });

test("the confusion matrix counts actual rows against predicted columns", () => {
  assert.deepEqual(interp.confusionMatrix(), [
    [2, 1, 0],
    [1, 3, 0],
    [0, 2, 1],
  ]);
  assert.deepEqual(interp.decoded, [0, 1, 0, 1, 1, 0, 2, 1, 1, 1]);
});

test("mostConfused lists wrong pairs by count, dropping those under minVal", () => {
  assert.deepEqual(interp.mostConfused(), [
    ["bird", "dog", 2],
    ["cat", "dog", 1],
    ["dog", "cat", 1],
  ]);
  assert.deepEqual(interp.mostConfused(2), [["bird", "dog", 2]]);
  assert.deepEqual(interp.mostConfused(3), []);
});

test("the default losses are the cross-entropy of the target's probability", () => {
  close(interp.losses[7]!, -Math.log(0.1));
  close(interp.losses[9]!, -Math.log(0.9));
});

test("topLosses orders items by loss, largest first, ties by index", () => {
  const all = interp.topLosses();
  assert.deepEqual(all.indices, [7, 1, 5, 8, 2, 0, 4, 3, 6, 9]);
  close(all.losses[0]!, 2.302585092994046);
  const top3 = interp.topLosses(3);
  assert.deepEqual(top3.indices, [7, 1, 5]);
  assert.deepEqual(interp.topLosses(2, false).indices, [9, 3]);
  const cells = interp.topLossCells(2);
  assert.equal(cells[0]!.title, "dog/bird / 2.30 / 0.70");
  assert.equal(cells[1]!.title, "dog/cat / 1.20 / 0.60");
});

test("the classification report matches precision, recall, F1 and averages worked by hand", () => {
  let r = interp.classificationReport();
  const printed = captureStdoutSync(() => {
    r = interp.printClassificationReport();
  });
  assert.ok(printed.includes(r.text + "\n"));
  // What a notebook cell shows when the report is its last expression: one line, not the object.
  assert.equal(inspect(r), "ClassificationReport { accuracy: 0.600, macroF1: 0.589, weightedF1: 0.590, classes: 3, support: 10 }");
  // cat: tp 2, predicted 3, support 3; dog: tp 3, predicted 6, support 4; bird: tp 1, predicted 1, support 3.
  close(r.classes["cat"]!.precision, 2 / 3);
  close(r.classes["cat"]!.recall, 2 / 3);
  close(r.classes["cat"]!.f1, 2 / 3);
  close(r.classes["dog"]!.precision, 0.5);
  close(r.classes["dog"]!.recall, 0.75);
  close(r.classes["dog"]!.f1, 0.6);
  close(r.classes["bird"]!.precision, 1);
  close(r.classes["bird"]!.recall, 1 / 3);
  close(r.classes["bird"]!.f1, 0.5);
  assert.deepEqual(
    vocab.map((v) => r.classes[v]!.support),
    [3, 4, 3],
  );
  close(r.accuracy, 0.6);
  close(r.macroAvg.precision, (2 / 3 + 0.5 + 1) / 3);
  close(r.macroAvg.recall, (2 / 3 + 0.75 + 1 / 3) / 3);
  close(r.macroAvg.f1, (2 / 3 + 0.6 + 0.5) / 3);
  close(r.weightedAvg.precision, 0.7);
  close(r.weightedAvg.recall, 0.6);
  close(r.weightedAvg.f1, 0.59);
  assert.equal(r.macroAvg.support, 10);
  // sklearn's layout: name column as wide as "weighted avg", then 10-wide columns.
  assert.equal(
    r.text,
    [
      "              precision    recall  f1-score   support",
      "",
      "         cat       0.67      0.67      0.67         3",
      "         dog       0.50      0.75      0.60         4",
      "        bird       1.00      0.33      0.50         3",
      "",
      "    accuracy                           0.60        10",
      "   macro avg       0.72      0.58      0.59        10",
      "weighted avg       0.70      0.60      0.59        10",
    ].join("\n"),
  );
});

test("a class never predicted gets precision 0 rather than NaN", () => {
  const i2 = new ClassificationInterpretation({ vocab: ["a", "b"], probs: [[0.9, 0.1], [0.8, 0.2]], targets: [0, 1] });
  const r = i2.printClassificationReport();
  assert.equal(r.classes["b"]!.precision, 0);
  assert.equal(r.classes["b"]!.f1, 0);
  close(r.classes["a"]!.precision, 0.5);
});

test("the constructor names mismatched lengths and bad targets", () => {
  assert.throws(() => new ClassificationInterpretation({ vocab, probs, targets: targets.slice(1) }), /10 rows of probs but 9 targets/);
  assert.throws(() => new ClassificationInterpretation({ vocab, probs: [[0.5, 0.5]], targets: [0] }), /row 0 has 2 values but vocab has 3/);
  assert.throws(() => new ClassificationInterpretation({ vocab, probs: [[0.5, 0.3, 0.2]], targets: [3] }), /target 0 is 3/);
});

test("fromLearner calls getPreds once with losses and leaks no tensors", async () => {
  await ready();
  const learn = fakeLearner();
  const before = tf.memory().numTensors;
  const i1 = await ClassificationInterpretation.fromLearner(learn);
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(learn.calls, [{ dsIdx: 1, withLoss: true }]);
  // the hand-counted matrix of the first test, and the learner's losses −ln p[target] (listed at the top)
  assert.deepEqual(i1.confusionMatrix(), [
    [2, 1, 0],
    [1, 3, 0],
    [0, 2, 1],
  ]);
  assert.deepEqual(i1.items, (learn.dls.valid as LoaderLike).items);
  const want = [0.7, 0.3, 0.5, 0.8, 0.7, 0.3, 0.8, 0.1, 0.4, 0.9].map((p) => -Math.log(p));
  for (let i = 0; i < probs.length; i++) close(i1.losses[i]!, want[i]!, 1e-6);
  // Without losses from the learner, cross-entropy is computed from the probabilities.
  const i2 = await ClassificationInterpretation.fromLearner(fakeLearner(false));
  close(i2.losses[7]!, -Math.log(0.1), 1e-6);
  assert.equal(tf.memory().numTensors, before);
});

test("fromLearner names what a learner's DataLoaders lack", async () => {
  const noVocab = fakeLearner();
  (noVocab.dls as { vocab?: string[] }).vocab = undefined;
  await assert.rejects(ClassificationInterpretation.fromLearner(noVocab), /no vocab/);
  const noImages = fakeLearner();
  noImages.dls.valid = { length: 1 };
  await assert.rejects(ClassificationInterpretation.fromLearner(noImages), /the valid DataLoader has no `items` array and `loadImage\(i\)`/);
});

test("fromLearner refuses multi-label data and a prediction count that does not match the items", async () => {
  const ml = fakeLearner();
  ml.dls.isMultiLabel = true;
  await assert.rejects(ClassificationInterpretation.fromLearner(ml), /multi-label/);
  const short = fakeLearner();
  (short.dls.valid as unknown as { items: unknown[] }).items = ["/a.png"];
  const before = tf.memory().numTensors;
  await assert.rejects(ClassificationInterpretation.fromLearner(short), /10 predictions for the 1 readable items of the valid split/);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(ClassificationInterpretation.fromLearner(fakeLearner(), { dsIdx: 2 }), /dsIdx must be 0 \(train\) or 1 \(valid\), got 2/);
});

test("the training split is predicted on an unshuffled copy of its loader, in item order", async () => {
  const calls: unknown[] = [];
  const copies: unknown[] = [];
  const train: LoaderLike = {
    ...fakeLoader(probs.length),
    shuffle: true,
    new(opts) {
      copies.push(opts);
      return { ...fakeLoader(probs.length), shuffle: false, bad: new Set<number>() };
    },
  };
  const learn: LearnerLike = {
    dls: { vocab, train, valid: fakeLoader(0) },
    async getPreds(opts = {}) {
      calls.push(opts);
      return { preds: tf.tensor2d(probs), targs: tf.tensor1d(targets, "int32") };
    },
  };
  const i0 = await ClassificationInterpretation.fromLearner(learn, { dsIdx: 0 });
  assert.deepEqual(copies, [{ shuffle: false, dropLast: false, train: false }]);
  assert.equal(calls.length, 1);
  assert.equal((calls[0] as { withLoss: boolean }).withLoss, true);
  assert.ok((calls[0] as { dl?: LoaderLike }).dl, "getPreds got the unshuffled copy");
  assert.equal(i0.dsIdx, 0);
  assert.deepEqual(i0.items, train.items);
  // A shuffled loader that cannot make an unshuffled copy is refused.
  const noNew: LearnerLike = { ...learn, dls: { vocab, train: { ...fakeLoader(3), shuffle: true }, valid: fakeLoader(0) } };
  await assert.rejects(ClassificationInterpretation.fromLearner(noNew, { dsIdx: 0 }), /train DataLoader is shuffled and has no `new\(\{ shuffle: false \}\)`/);
});

test("items the loader skipped as unreadable are left out and the rest keep their images", async () => {
  // 12 items; items 2 and 5 cannot be read, so the 10 predictions belong to the other 10.
  const dl = { ...fakeLoader(12), bad: new Set([2, 5]) };
  const learn: LearnerLike = {
    dls: { vocab, train: fakeLoader(0), valid: dl },
    async getPreds() {
      return { preds: tf.tensor2d(probs), targs: tf.tensor1d(targets, "int32") };
    },
  };
  const i1 = await ClassificationInterpretation.fromLearner(learn);
  assert.deepEqual(i1.items, [0, 1, 3, 4, 6, 7, 8, 9, 10, 11].map((j) => `/data/img${j}.png`));
  // Prediction 7 (the top loss) is item 9 of the loader: its image is the one shown.
  const img = await i1.loadImage(7);
  close((await img.data())[0]!, 10 / 13, 1e-6);
  img.dispose();
});

test("plotTopLosses loads exactly the top-k images, captions them and frees them", async () => {
  const learn = fakeLearner();
  const i1 = await ClassificationInterpretation.fromLearner(learn);
  const dl = learn.dls.valid as LoaderLike & { loads: number };
  const before = tf.memory().numTensors;
  const out = await captureStdout(() => i1.plotTopLosses(4, { nrows: 2 }));
  assert.equal(tf.memory().numTensors, before);
  assert.equal(dl.loads, 4);
  // Outside a kernel the grid prints its captions, in top-loss order.
  assert.match(out, /\[4 images\] dog\/bird \/ 2\.30 \/ 0\.70 \| dog\/cat \/ 1\.20 \/ 0\.60 \| cat\/dog \/ 1\.20 \/ 0\.60 \| dog\/bird \/ 0\.92 \/ 0\.50/);
  const cells = i1.topLossCells(4);
  assert.deepEqual(cells.map((c) => c.index), [7, 1, 5, 8]);
  assert.deepEqual(cells.map((c) => `${c.predicted}/${c.actual}`), ["dog/bird", "dog/cat", "cat/dog", "dog/bird"]);
  await assert.rejects(interp.plotTopLosses(3), /needs the images/);
});

test("showResults captions the first items actual/predicted and flags the wrong ones", async () => {
  const learn = fakeLearner();
  const before = tf.memory().numTensors;
  const out = await captureStdout(() => showResults(learn, { maxN: 4 }));
  assert.equal(tf.memory().numTensors, before);
  assert.match(out, /\[4 images\] cat\/cat \| cat\/dog \| cat\/cat \| dog\/dog/);
  const cells = resultCells(await ClassificationInterpretation.fromLearner(learn), 4);
  assert.deepEqual(cells.map((c) => c.title), ["cat/cat", "cat/dog", "cat/cat", "dog/dog"]);
  assert.deepEqual(cells.map((c) => c.correct), [true, false, true, true]);
  assert.equal(resultCells(interp, 100).length, 10);
});

test("the confusion-matrix figure is a heatmap with counts or row fractions in the cells and names on both axes", () => {
  const out = captureStdoutSync(() => interp.plotConfusionMatrix({ title: "Pets" }));
  assert.match(out, /\[plot\] Pets: heatmap\(3\)/);
  const fig = interp.confusionMatrixFigure({ title: "Pets" });
  const t = fig.data[0]!;
  assert.equal(t.type, "heatmap");
  assert.deepEqual(t.x, vocab);
  assert.deepEqual(t.y, vocab);
  assert.deepEqual(t.text, [
    ["2", "1", "0"],
    ["1", "3", "0"],
    ["0", "2", "1"],
  ]);
  assert.equal(fig.layout?.yaxis?.autorange, "reversed");
  assert.equal(fig.layout?.xaxis?.type, "category");
  const norm = confusionMatrixFigure(interp.confusionMatrix(), vocab, { normalize: true });
  assert.deepEqual((norm.data[0]!.text as string[][])[1], ["0.25", "0.75", "0.00"]);
  close((norm.data[0]!.z as number[][])[2]![1]!, 2 / 3);
  // The static fallback writes the same cell text.
  const svg = figureToSvg(fig, fig.layout?.width, fig.layout?.height);
  assert.match(svg, />3<\/text>/);
  assert.match(svg, />bird<\/text>/);
});

test("the confusion-matrix figure scales cells and fonts down from 2 to 40 classes", () => {
  const mk = (n: number) =>
    confusionMatrixFigure(
      Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (r === c ? 10 : 1))),
      Array.from({ length: n }, (_, k) => `class_${k}`),
    );
  const small = mk(2);
  const big = mk(40);
  const font = (f: ReturnType<typeof mk>) => (f.data[0]!["textfont"] as { size: number }).size;
  assert.ok(font(big) < font(small), `${font(big)} < ${font(small)}`);
  assert.ok(font(big) >= 6);
  // 40 classes get smaller cells but a larger chart than 2 classes; both stay on a screen.
  assert.ok((big.layout!.width as number) > (small.layout!.width as number));
  assert.ok((big.layout!.width as number) <= 1100, String(big.layout!.width));
  assert.ok((small.layout!.width as number) >= 250, String(small.layout!.width));
});
