/**
 * `loadLearner` refuses an export that cannot be right (issue 20, item 6): each case edits a real
 * export of a tiny model the way a careless tool or an attacker would, and expects a sentence that
 * names the file and the field, never a model that loads and predicts nonsense.
 */
process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { loadLearner } from "../lib/learner/export";
import { toyDls, toyModel } from "./helpers/learner-data";

let dir: string;
let good: string;

before(async () => {
  await ready();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-validate-export-"));
  const learn = new Learner(toyDls(), toyModel().model, { progress: false, path: dir });
  await learn.export("good");
  good = path.join(dir, "good");
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");

/** A copy of the good export, with `edit` applied to the parsed JSON file `name`. */
function variant(label: string, name: "tsfast.json" | "model.json", edit: (j: Record<string, any>) => unknown, resign = false): string {
  const d = path.join(dir, label);
  fs.cpSync(good, d, { recursive: true });
  const p = path.join(d, name);
  const j = JSON.parse(fs.readFileSync(p, "utf8")) as Record<string, any>;
  const out = edit(j) ?? j;
  fs.writeFileSync(p, JSON.stringify(out));
  // Recording the edited file's new checksum: what a tool that rewrites files consistently would do.
  if (resign) {
    const m = path.join(d, "tsfast.json");
    const meta = JSON.parse(fs.readFileSync(m, "utf8")) as Record<string, any>;
    meta["files"] = { ...(meta["files"] ?? {}), [name]: sha(fs.readFileSync(p)) };
    fs.writeFileSync(m, JSON.stringify(meta));
  }
  return d;
}

test("export records the sha256 of every file, and the untouched export loads and predicts", async () => {
  const meta = JSON.parse(fs.readFileSync(path.join(good, "tsfast.json"), "utf8"));
  for (const f of ["model.json", "weights.bin"]) assert.equal(meta.files[f], sha(fs.readFileSync(path.join(good, f))), f);
  const learn = await loadLearner(good);
  assert.deepEqual(learn.vocab, ["neg", "pos"]);
  learn.model.dispose();
});

test("a vocab whose length differs from the model's outputs is refused", async () => {
  const d = variant("vocab3", "tsfast.json", (m) => void (m["vocab"] = ["neg", "pos", "extra"]));
  await assert.rejects(loadLearner(d), /"vocab" has 3 classes but the model outputs 2/);
});

test("a missing vocab, loss or inferenceSpec is refused by name", async () => {
  await assert.rejects(loadLearner(variant("novocab", "tsfast.json", (m) => void delete m["vocab"])), /tsfast\.json has no "vocab"/);
  await assert.rejects(loadLearner(variant("noloss", "tsfast.json", (m) => void delete m["loss"])), /tsfast\.json has no "loss"/);
  await assert.rejects(loadLearner(variant("nospec", "tsfast.json", (m) => void delete m["inferenceSpec"])), /tsfast\.json has no "inferenceSpec"/);
});

test("swapped weight names in model.json fail the checksum", async () => {
  const d = variant("swapped", "model.json", (j) => {
    const ws = j["weightsManifest"][0].weights as { name: string; shape: number[] }[];
    // two weights of shape [8]: the first dense layer's bias and the BatchNorm gamma
    const [a, b] = ws.filter((w) => w.shape.length === 1 && w.shape[0] === 8);
    [a!.name, b!.name] = [b!.name, a!.name];
  });
  await assert.rejects(loadLearner(d), /model\.json does not match the sha256 recorded in tsfast\.json/);
});

test("model.json = {} and a shape that disagrees with the architecture get clear errors (even with a matching checksum)", async () => {
  await assert.rejects(loadLearner(variant("empty", "model.json", () => ({}), true)), /model\.json has no "modelTopology"/);
  const d = variant(
    "reshaped",
    "model.json",
    (j) => {
      const w = (j["weightsManifest"][0].weights as { shape: number[] }[]).find((x) => x.shape.length === 1 && x.shape[0] === 8)!;
      w.shape = [2, 4]; // same byte count, wrong shape
    },
    true,
  );
  await assert.rejects(loadLearner(d), /has shape \[2, 4\] but the architecture needs \[8\]/);
});

test("a file path instead of the export folder is named as such", async () => {
  await assert.rejects(loadLearner(path.join(good, "weights.bin")), /weights\.bin is a file, not an export folder/);
});
