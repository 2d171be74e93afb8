/**
 * ResNets against PyTorch: torchvision's resnet18/34/50 (and our PyTorch xresnet18) with random
 * weights and non-trivial BatchNorm statistics give the same logits in tsfast.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] || "wasm";
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { resnet18, resnet34, resnet50, xresnet18 } from "../lib/models/archs";
import type { Arch } from "../lib/models/archs";
import { readSafetensors } from "../lib/models/safetensors";

const PY = "/usr/bin/python3";
const FIXTURE = path.join(__dirname, "..", "..", "test", "fixtures", "models", "make_torch_fixture.py");
const dir = mkdtempSync(path.join(os.tmpdir(), "tsfast-models-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// tag → arch:size:batch:nIn:nOut, all made by one Python process
const SPECS: Record<string, string> = {
  r18: "resnet18:64:2:3:1000",
  r34: "resnet34:65:2:3:1000",
  r50: "resnet50:64:2:3:1000",
  x18: "xresnet18:35:2:3:10",
  r18gray: "resnet18:48:2:1:7",
};
let made = false;

function torchReferences(): void {
  if (made) return;
  made = true;
  try {
    execFileSync(PY, [FIXTURE, dir, ...Object.entries(SPECS).map(([t, s]) => `${t}:${s}`)], { stdio: "pipe" });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`making the PyTorch reference failed (needs Debian python3-torch + python3-torchvision at ${PY}): ${err.stderr?.toString() ?? err.message}`);
  }
}

async function checkLogits(arch: Arch, tag: string): Promise<number> {
  await ready();
  torchReferences();
  const model = await arch({ weights: path.join(dir, `${tag}.safetensors`) });
  const io = await readSafetensors(path.join(dir, `${tag}.io.safetensors`));
  const x = io.tensors.get("x")!;
  const want = io.tensors.get("logits")!;
  assert.deepEqual(model.outputs[0]!.shape, [null, want.shape[1]], "nOut is taken from the weights file");
  const got = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor(x.data, x.shape), [0, 2, 3, 1]);
    return (model.predict(nhwc) as tf.Tensor).dataSync();
  });
  let maxErr = 0;
  let scale = 0;
  want.data.forEach((v, i) => {
    maxErr = Math.max(maxErr, Math.abs(v - got[i]!));
    scale = Math.max(scale, Math.abs(v));
  });
  model.dispose();
  assert.ok(scale > 0.05, `reference logits are not trivial (max |logit| ${scale})`);
  return maxErr;
}

test("resnet18 loads torchvision weights and matches PyTorch logits at 64 px", async () => {
  const err = await checkLogits(resnet18, "r18");
  assert.ok(err < 1e-4, `max |tsfast - torch| = ${err}`);
});

test("resnet34 matches PyTorch logits at an odd size (65 px)", async () => {
  const err = await checkLogits(resnet34, "r34");
  assert.ok(err < 1e-4, `max |tsfast - torch| = ${err}`);
});

test("resnet50 (bottleneck) matches PyTorch logits at 64 px", async () => {
  const err = await checkLogits(resnet50, "r50");
  assert.ok(err < 1e-4, `max |tsfast - torch| = ${err}`);
});

test("xresnet18 (deep stem, avg-pool shortcut) matches its PyTorch twin at 35 px", async () => {
  const err = await checkLogits(xresnet18, "x18");
  assert.ok(err < 1e-4, `max |tsfast - torch| = ${err}`);
});

test("resnet18 with one input channel takes grayscale directly", async () => {
  const err = await checkLogits(resnet18, "r18gray");
  assert.ok(err < 1e-4, `max |tsfast - torch| = ${err}`);
});
