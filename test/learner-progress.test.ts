process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { ProgressCallback } from "../lib/learner/progress";
import { accuracy } from "../lib/learner/metrics";
import { ArrayLoader, toyDls, toyModel } from "./helpers/learner-data";

type Msg = { data: Record<string, string>; transient: { display_id?: string } };

/** Pretend to be a tslab kernel: capture display_data / update_display_data messages. */
async function inFakeKernel(f: () => Promise<void>): Promise<{ msg: Msg; update: boolean }[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const jupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
  const out: { msg: Msg; update: boolean }[] = [];
  jupyter.lastWriteDisplayData = (msg: Msg, update: boolean) => out.push({ msg, update });
  try {
    await f();
  } finally {
    jupyter.lastWriteDisplayData = null;
  }
  return out;
}

test("in a kernel, ProgressCallback updates one progress/table display and one loss chart in place", async () => {
  await ready();
  const learn = new Learner(toyDls(), toyModel().model, { progress: false, metrics: accuracy, cbs: [new ProgressCallback({ every: 2 })] });
  const out = await inFakeKernel(() => learn.fit(2));
  const ids = new Set(out.map((o) => o.msg.transient.display_id).filter((x) => x));
  assert.equal(ids.size, 2, "a table display and a chart display");
  const [tableId] = [...ids];
  const table = out.filter((o) => o.msg.transient.display_id === tableId);
  assert.equal(table[0]!.update, false);
  assert.ok(table.slice(1).every((o) => o.update), "later messages update in place");
  assert.ok(table.some((o) => o.msg.data["text/html"]!.includes("<progress")));
  const last = table[table.length - 1]!.msg.data;
  assert.match(last["text/html"]!, /<th[^>]*>accuracy<\/th>/);
  assert.equal((last["text/html"]!.match(/<tr>/g) ?? []).length, 3, "header + 2 epoch rows");
  const chart = out.filter((o) => o.msg.transient.display_id && o.msg.transient.display_id !== tableId);
  assert.ok(chart.length >= 2 && chart[chart.length - 1]!.msg.data["image/svg+xml"]!.includes("<svg"));
});

/** The lines `f` prints with console.log (and nothing printed meanwhile). */
async function printed(f: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    await f();
  } finally {
    console.log = orig;
  }
  return lines;
}

test("in a terminal, ProgressCallback prints a header and one line per epoch", async () => {
  await ready();
  const lines = await printed(async () => {
    const learn = new Learner(toyDls(), toyModel().model, { metrics: accuracy });
    await learn.fit(2);
  });
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^epoch\s+train_loss\s+valid_loss\s+accuracy\s+time/);
  assert.match(lines[2]!, /^1\s+\d\.\d{6}\s+\d\.\d{6}\s+\d\.\d{6}\s+00:0\d/);
});

test("an epoch without a validation pass shows None in the validation columns (as fastai), and NaN stays in recorder.values", async () => {
  await ready();
  const lines = await printed(async () => {
    const dls = toyDls();
    const learn = new Learner({ ...dls, valid: new ArrayLoader([], [], 16, [2, 2, 1]) }, toyModel().model, { metrics: accuracy });
    await learn.fit(1);
    assert.deepEqual(learn.recorder.log.slice(2, 4), ["None", "None"]);
    assert.ok(Number.isFinite(learn.recorder.log[1] as number), "the training loss is shown");
    assert.ok(learn.recorder.values[0]!.slice(1).every((v) => Number.isNaN(v)));
    // with validation, numbers again
    const withValid = new Learner(dls, toyModel().model, { metrics: accuracy, progress: false });
    await withValid.fit(1);
    assert.ok(withValid.recorder.log.slice(1, 4).every((v) => typeof v === "number" && Number.isFinite(v)));
  });
  assert.match(lines[1]!, /^0\s+\d\.\d{6}\s+None\s+None\s+00:0\d/);
});

test("in a terminal, a metric name longer than a column stays apart from the next one", async () => {
  await ready();
  const lines = await printed(async () => {
    const longName = { ...accuracy, name: "foreground_accuracy" };
    const learn = new Learner(toyDls(), toyModel().model, { metrics: [longName, accuracy] });
    await learn.fit(1);
  });
  assert.match(lines[0]!, /^epoch\s+train_loss\s+valid_loss\s+foreground_accuracy\s+accuracy\s+time/);
  // each value starts under its name
  const header = lines[0]!, row = lines[1]!;
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index!);
  assert.equal(starts.length, 6);
  for (const at of starts.slice(1)) {
    assert.ok(row[at - 1] === " " && row[at] !== " ", `a column at ${at}: ${JSON.stringify(header)} / ${JSON.stringify(row)}`);
  }
});

test("recorder.plotLoss and plotSched build plotly figures from what was recorded", async () => {
  await ready();
  const learn = new Learner(toyDls(), toyModel().model, { progress: false });
  await learn.fitOneCycle(2);
  const orig = process.stdout.write.bind(process.stdout);
  const printed: string[] = [];
  process.stdout.write = ((s: string) => (printed.push(String(s)), true)) as typeof process.stdout.write;
  try {
    learn.recorder.plotLoss();
    learn.recorder.plotSched();
    const f = learn.recorder.lossFigure();
    assert.equal(f.data[0]!.y!.length, 8 - 5);
    assert.deepEqual(f.data[1]!.x, [8]); // fastai drops valid points before skipStart (iters [4, 8])
    const s = learn.recorder.schedFigure();
    assert.deepEqual(s.data[0]!.y, learn.recorder.lrs);
    assert.deepEqual(s.data[1]!.y, learn.recorder.moms);
    // and those are the one-cycle values worked by hand in schedule.test.ts, scaled from lrMax 1e-2
    // to the default 1e-3 (every lr is proportional to lrMax: start lrMax/25, end lrMax/1e5)
    const lrs = [4e-4, 5.2e-3, 1e-2, 0.009330133717652005, 7.500025e-3, 5.00005e-3, 2.500075e-3, 0.000669966282347995].map((v) => v / 10);
    const moms = [0.95, 0.9, 0.85, 0.856698729810778, 0.875, 0.9, 0.925, 0.9433012701892219];
    assert.equal((s.data[0]!.y as number[]).length, 8);
    (s.data[0]!.y as number[]).forEach((v, i) => assert.ok(Math.abs(v - lrs[i]!) <= 1e-12, `lr ${i}: ${v} vs ${lrs[i]}`));
    (s.data[1]!.y as number[]).forEach((v, i) => assert.ok(Math.abs(v - moms[i]!) <= 1e-9, `mom ${i}: ${v} vs ${moms[i]}`));
  } finally {
    process.stdout.write = orig;
  }
  assert.match(printed.join(""), /\[plot\] .*train\(3\), valid\(1\)/);
});

test("a kernel interrupt (SIGINT in tslab) stops fit before the next batch and fit works again", async () => {
  await ready();
  const learn = new Learner(toyDls(), toyModel().model, { progress: false });
  let batches = 0;
  learn.addCbs([{ afterBatch: (l) => { if (l.training && ++batches === 3) process.emit("SIGINT"); } }]);
  await inFakeKernel(async () => {
    await assert.rejects(learn.fit(3), /training interrupted at epoch 0, training batch 3; .*fit can be called again/);
  });
  assert.equal(batches, 3);
  assert.equal(process.listenerCount("SIGINT"), 0, "listener removed");
  await learn.fit(1);
  assert.equal(learn.recorder.values.length, 1);
});
