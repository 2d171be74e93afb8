import { test } from "node:test";
import assert from "node:assert/strict";
import { lossAt, lossFigure, lrFindFigure, schedFigure } from "../lib/display/charts";
import { figureToSvg } from "../lib/display/svg";

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("lossFigure plots train loss per batch after skipStart and valid loss at each epoch's end", () => {
  const losses = Array.from({ length: 20 }, (_, i) => 2 - i * 0.05);
  const fig = lossFigure({ losses, values: [[1.6, 1.5, 0.5], [1.1, 1.0, 0.7]] }, { skipStart: 5 });
  assert.deepEqual(fig.data[0]!.x, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  assert.equal((fig.data[0]!.y as number[])[0], 1.75);
  assert.deepEqual(fig.data[1]!.x, [10, 20]);
  assert.deepEqual(fig.data[1]!.y, [1.5, 1.0]);
  const noValid = lossFigure({ losses }, { withValid: false });
  assert.equal(noValid.data.length, 1);
});

test("lrFindFigure uses a log x-axis, drops skipEnd points and marks suggestions on the curve", () => {
  const lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];
  const losses = [2.0, 1.9, 1.5, 1.0, 1.2, 5.0];
  const fig = lrFindFigure(lrs, losses, { valley: 1e-3, slide: Math.sqrt(1e-3 * 1e-2) }, { skipEnd: 1 });
  assert.equal(fig.layout?.xaxis?.type, "log");
  assert.deepEqual(fig.data[0]!.x, lrs.slice(0, 5));
  assert.equal(fig.data.length, 3);
  assert.deepEqual(fig.data[1]!.y, [1.5]);
  // Halfway between 1e-3 and 1e-2 in log space: halfway between 1.5 and 1.0.
  close((fig.data[2]!.y as number[])[0]!, 1.25, 1e-9);
  assert.match(String(fig.data[1]!.name), /valley: 1\.00e-3/);
  close(lossAt(lrs, losses, 1e-6), 2.0);
  const listed = lrFindFigure(lrs, losses, [{ name: "minimum", lr: 1e-2, loss: 0.99 }]);
  assert.deepEqual(listed.data[1]!.y, [0.99]);
  assert.match(figureToSvg(fig), /<circle/);
});

test("schedFigure draws one panel per hyper-parameter", () => {
  const fig = schedFigure({ lr: [1e-4, 1e-3, 1e-4], mom: [0.95, 0.85, 0.95] });
  assert.equal(fig.data.length, 2);
  assert.equal(fig.data[1]!["yaxis"], "y2");
  assert.ok(fig.layout?.["xaxis2"]);
  assert.throws(() => schedFigure({}), /at least one schedule/);
});

test("lossFigure takes a Recorder as it is: valid losses sit at the recorded epoch ends", () => {
  const recorder = { losses: [3, 2.5, 2, 1.8, 1.6, 1.5, 1.4, 1.3], values: [[2, 1.9, 0.4], [1.4, 1.2, 0.6]], iters: [3, 8], lrs: [], moms: [] };
  const fig = lossFigure(recorder, { skipStart: 2 });
  assert.deepEqual(fig.data[0]!.x, [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(fig.data[1]!.x, [3, 8]);
  assert.deepEqual(fig.data[1]!.y, [1.9, 1.2]);
  // An epoch that ended before skipStart is left out, like fastai.
  assert.deepEqual(lossFigure(recorder, { skipStart: 4 }).data[1]!.x, [8]);
});
