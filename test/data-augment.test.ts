process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  applyBatchTfms,
  augTransforms,
  drawAffine,
  imagenetStats,
  lightingFn,
  logit,
  Normalize,
  projectiveResample,
  type AffineAugTfm,
} from "../lib/data/augment";
import { IDENTITY, dihedralMat, matMul3, rotateMat, warpMat, zoomMat, type Mat3 } from "../lib/data/geometry";
import type { RawImage } from "../lib/data/pixels";
import { Rng } from "../lib/data/random";
import { gradient } from "./fixtures/data/make";

function img(w: number, h: number): RawImage {
  return { data: gradient(w, h, 10, 7), width: w, height: h };
}

function sample(src: RawImage, m: Mat3, oh: number, ow: number, pad: "zeros" | "border" | "reflection" = "reflection"): Float32Array {
  const out = new Float32Array(oh * ow * 3);
  projectiveResample(src, m, oh, ow, pad, out, 0);
  return out;
}

/** Source pixel (x, y) channel c, as a [0, 1] float. */
function px(src: RawImage, x: number, y: number, c: number): number {
  return src.data[(y * src.width + x) * 3 + c]! / 255;
}

test("the identity matrix reproduces the image exactly", () => {
  const src = img(6, 4);
  const out = sample(src, IDENTITY, 4, 6);
  for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i]! - src.data[i]! / 255) < 1e-6);
});

test("a horizontal flip maps pixel (x, y) to (W-1-x, y)", () => {
  const src = img(5, 4);
  const out = sample(src, dihedralMat(1), 4, 5);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 5; x++) {
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[(y * 5 + x) * 3 + c]! - px(src, 4 - x, y, c)) < 1e-6);
    }
  }
});

test("a 90 degree rotation maps output (row i, col j) to source (row N-1-j, col i)", () => {
  const N = 5;
  const src = img(N, N);
  const out = sample(src, rotateMat(90), N, N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(out[(i * N + j) * 3 + c]! - px(src, i, N - 1 - j, c)) < 1e-5);
    }
  }
});

test("a centred 2x zoom samples the middle half: output (0,0) is source (1,1), output (0,1) is halfway to (2,1)", () => {
  const src = img(5, 5);
  const out = sample(src, zoomMat(2, 0.5, 0.5), 5, 5);
  assert.ok(Math.abs(out[0]! - px(src, 1, 1, 0)) < 1e-6);
  assert.ok(Math.abs(out[1]! - px(src, 1, 1, 1)) < 1e-6);
  assert.ok(Math.abs(out[3]! - (px(src, 1, 1, 0) + px(src, 2, 1, 0)) / 2) < 1e-6);
  // centre stays the centre
  assert.ok(Math.abs(out[(2 * 5 + 2) * 3]! - px(src, 2, 2, 0)) < 1e-6);
});

test("a 2x zoom with colPct=1 shows the right half: output column 0 is source column 2", () => {
  const src = img(5, 5);
  const out = sample(src, zoomMat(2, 1, 0.5), 5, 5);
  // source x = 0.5·x + 0.5 in [-1, 1] → pixel (0.5·x + 1.5)·2: x=-1 → 2, x=1 → 4.
  assert.ok(Math.abs(out[(2 * 5 + 0) * 3]! - px(src, 2, 2, 0)) < 1e-6);
  assert.ok(Math.abs(out[(2 * 5 + 4) * 3]! - px(src, 4, 2, 0)) < 1e-6);
});

test("reflection padding mirrors about the edge pixel centres: a shift of -2 px gives columns 2,1,0,1,2", () => {
  const src = img(5, 1);
  // In [-1, 1], one pixel is 2/(W-1) = 0.5; shift by -2 px = -1.
  const out = sample(src, [1, 0, -1, 0, 1, 0, 0, 0, 1], 1, 5, "reflection");
  const cols = [2, 1, 0, 1, 2];
  cols.forEach((c, j) => assert.ok(Math.abs(out[j * 3]! - px(src, c, 0, 0)) < 1e-6, `column ${j}`));
  const zeros = sample(src, [1, 0, -1, 0, 1, 0, 0, 0, 1], 1, 5, "zeros");
  assert.deepEqual([zeros[0], zeros[3], zeros[6]], [0, 0, 0]);
  const border = sample(src, [1, 0, -1, 0, 1, 0, 0, 0, 1], 1, 5, "border");
  assert.ok(Math.abs(border[0]! - px(src, 0, 0, 0)) < 1e-6);
});

test("the warp homography sends fastai's target corners to the image corners, and is the identity at 0", () => {
  const m = warpMat(0.1, -0.15);
  const corners: [number, number][] = [[-1, -1], [-1, 1], [1, -1], [1, 1]];
  for (const [a, b] of corners) {
    const tx = a - a * b * -0.15;
    const ty = b + b * 0.1;
    const z = m[6]! * tx + m[7]! * ty + m[8]!;
    assert.ok(Math.abs((m[0]! * tx + m[1]! * ty + m[2]!) / z - a) < 1e-9);
    assert.ok(Math.abs((m[3]! * tx + m[4]! * ty + m[5]!) / z - b) < 1e-9);
  }
  warpMat(0, 0).forEach((v, i) => assert.ok(Math.abs(v - IDENTITY[i]!) < 1e-12));
});

test("brightness and contrast act in logit space as fastai: sigmoid((logit(x) + logit(b)) * c)", () => {
  assert.ok(Math.abs(lightingFn(0.5, 0.5, 1) - 0.5) < 1e-12);
  assert.ok(Math.abs(lightingFn(0.5, 0.6, 1) - 0.6) < 1e-12); // brightness moves mid-grey to b
  const x = 0.3;
  const c = 1.25;
  assert.ok(Math.abs(lightingFn(x, 0.5, c) - 1 / (1 + Math.exp(-Math.log(x / (1 - x)) * c))) < 1e-12);
  assert.ok(Math.abs(logit(0) - Math.log(1e-7 / (1 - 1e-7))) < 1e-9); // clamped like fastai
});

test("batch lighting through the lookup table matches the exact formula to 1e-3 (a quarter of a grey level)", () => {
  // every 8-bit value, so the steep ends near 0 and 1 are covered
  const src: RawImage = { data: Uint8Array.from({ length: 16 * 16 * 3 }, (_, i) => i % 256), width: 16, height: 16 };
  const tfms = augTransforms({ doFlip: false, maxRotate: 0, maxZoom: 1, maxWarp: 0, maxLighting: 0.4, pLighting: 1 });
  const rngA = new Rng(5);
  const res = applyBatchTfms([src], tfms, true, rngA);
  // Replay the draws: the affine part draws nothing here; lighting draws b, p, c, p.
  const r = new Rng(5);
  const b = r.uniform(0.5 * 0.6, 0.5 * 1.4);
  r.next();
  const c = Math.exp(r.uniform(Math.log(0.6), -Math.log(0.6)));
  // fastai's formula written out: sigmoid((logit(x) + logit(b))·c), logit clamped to [1e-7, 1 − 1e-7]
  const lg = (p: number) => {
    const q = Math.min(Math.max(p, 1e-7), 1 - 1e-7);
    return Math.log(q / (1 - q));
  };
  for (let i = 0; i < res.data.length; i++) {
    const want = 1 / (1 + Math.exp(-(lg(src.data[i]! / 255) + lg(b)) * c));
    assert.ok(Math.abs(res.data[i]! - want) < 1e-3, `value ${i}: ${res.data[i]} vs ${want}`);
  }
});

test("Normalize.fromStats gives (x - mean) / std per channel", () => {
  const src: RawImage = { data: new Uint8Array([255, 0, 51]), width: 1, height: 1 };
  const res = applyBatchTfms([src], [Normalize.fromStats(...imagenetStats)], false, new Rng(0));
  const expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.2 - 0.406) / 0.225];
  expected.forEach((e, k) => assert.ok(Math.abs(res.data[k]! - e) < 1e-6));
  assert.throws(() => Normalize.fromStats([0.5], [0.2]), /3 means and 3 stds/);
});

test("augmentation is train-only: valid gives the same resize for every seed, train changes with the seed", () => {
  const src = img(20, 20);
  const tfms = augTransforms({ size: 10 });
  const v1 = applyBatchTfms([src], tfms, false, new Rng(1)).data;
  const v2 = applyBatchTfms([src], tfms, false, new Rng(2)).data;
  assert.deepEqual(v1, v2);
  // valid: the whole 20×20 image resampled to 10×10 with aligned corners, output (i, j) at source
  // (j·19/9, i·19/9); R = 10x and G = 10y are linear there, so bilinear sampling gives them exactly
  assert.equal(v1.length, 10 * 10 * 3);
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 10; j++) {
      const want = [(10 * j * 19) / 9 / 255, (10 * i * 19) / 9 / 255, 7 / 255];
      want.forEach((w, ch) => assert.ok(Math.abs(v1[(i * 10 + j) * 3 + ch]! - w) < 1e-6, `(${i}, ${j}, ${ch}): ${v1[(i * 10 + j) * 3 + ch]} vs ${w}`));
    }
  }
  const t1 = applyBatchTfms([src], tfms, true, new Rng(1)).data;
  const t1b = applyBatchTfms([src], tfms, true, new Rng(1)).data;
  const t2 = applyBatchTfms([src], tfms, true, new Rng(3)).data;
  assert.deepEqual(t1, t1b);
  assert.notDeepEqual(t1, t2);
});

test("minScale crops a square of at least minScale of the area (valid: the centred largest square)", () => {
  const tfm = augTransforms({ size: 8, minScale: 0.5, doFlip: false, maxRotate: 0, maxZoom: 1, maxWarp: 0 })[0] as AffineAugTfm;
  const rng = new Rng(9);
  for (let k = 0; k < 50; k++) {
    const m = drawAffine(tfm, 40, 30, true, rng);
    const side = m[0]! * 39 + 1; // crop width in pixels
    assert.ok(side * side >= 0.5 * 40 * 30 - 40 && side <= 30 + 1e-9, `side ${side}`);
    assert.ok(Math.abs(m[4]! * 29 + 1 - side) < 1e-9); // square
  }
  const v = drawAffine(tfm, 40, 30, false, new Rng(0));
  assert.ok(Math.abs(v[0]! * 39 + 1 - 30) < 1e-9 && Math.abs(v[2]!) < 1e-9 && Math.abs(v[5]!) < 1e-9);
});

test("projective resampling matches PyTorch grid_sample (bilinear, reflection, align_corners=True)", () => {
  const W = 9;
  const H = 7;
  const rng = new Rng(11);
  const data = new Uint8Array(W * H * 3).map(() => rng.int(256));
  const src: RawImage = { data, width: W, height: H };
  const m = matMul3(warpMat(0.15, -0.1), matMul3(rotateMat(23), zoomMat(0.8, 0.3, 0.6)));
  const oh = 6;
  const ow = 8;
  const ours = sample(src, m, oh, ow, "reflection");
  const py = `
import json, sys, torch
import torch.nn.functional as F
torch.set_num_threads(2)
a = json.loads(sys.stdin.read())
W, H, oh, ow, m = a["W"], a["H"], a["oh"], a["ow"], a["m"]
img = torch.tensor(a["data"], dtype=torch.float64).view(H, W, 3).permute(2, 0, 1)[None] / 255
ys = torch.linspace(-1, 1, oh, dtype=torch.float64)
xs = torch.linspace(-1, 1, ow, dtype=torch.float64)
gy, gx = torch.meshgrid(ys, xs, indexing="ij")
z = m[6] * gx + m[7] * gy + m[8]
sx = (m[0] * gx + m[1] * gy + m[2]) / z
sy = (m[3] * gx + m[4] * gy + m[5]) / z
grid = torch.stack([sx, sy], -1)[None]
out = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
print(json.dumps(out[0].permute(1, 2, 0).reshape(-1).tolist()))
`;
  const r = spawnSync("/usr/bin/python3", ["-c", py], {
    input: JSON.stringify({ W, H, oh, ow, m, data: Array.from(data) }),
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `python3 with torch is needed for this test: ${r.stderr}`);
  const ref = JSON.parse(r.stdout) as number[];
  assert.equal(ref.length, ours.length);
  let maxErr = 0;
  ref.forEach((v, i) => (maxErr = Math.max(maxErr, Math.abs(v - ours[i]!))));
  assert.ok(maxErr < 1e-5, `max abs difference ${maxErr}`);
});

test("augTransforms refuses impossible options, naming them", () => {
  assert.throws(() => augTransforms({ minScale: 0.5 }), /minScale < 1 needs a size/);
  assert.throws(() => augTransforms({ minZoom: 2, maxZoom: 1 }), /minZoom=2, maxZoom=1/);
});
