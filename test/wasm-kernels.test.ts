/**
 * tsfast's wasm training kernels, checked against finite differences and against tfjs's cpu backend.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "../lib/engine/tf";
import { initWasm } from "../lib/engine/wasm";
import { setWasmSimd, simdKernels } from "../lib/engine/wasm/simd";
import { asWasm } from "../lib/engine/wasm/backend";
import "@tensorflow/tfjs-backend-cpu";

/** Deterministic values in [-0.5, 0.5) (an LCG; no Math.random in tests). */
function values(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Largest |a − b| relative to the largest |b| (or 1). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let err = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}

/** Run `f` on a backend and return the flattened results. */
async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = f();
  const vals = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return vals;
}

type Forward = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor;

/**
 * Check d/dx and d/dw of L = ½ Σ forward(x, w)² on wasm:
 *   1. against the cpu backend's gradients (all entries)
 *   2. against central finite differences of L on wasm (a sample of entries; L is quadratic in
 *      each argument, so the central difference is exact up to float rounding)
 */
async function checkGradients(name: string, xShape: number[], wShape: number[], forward: Forward): Promise<void> {
  const xv = values(size(xShape), 11);
  const wv = values(size(wShape), 29);
  const grads = () =>
    tf.tidy(() => {
      const x = tf.tensor4d(xv, xShape as [number, number, number, number]);
      const w = tf.tensor4d(wv, wShape as [number, number, number, number]);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.mul(0.5, tf.sum(tf.square(forward(a as tf.Tensor4D, b as tf.Tensor4D)))));
      return g([x, w]);
    });
  const [cdx, cdw] = await on("cpu", grads);
  const [wdx, wdw] = await on("wasm", grads);
  assert.ok(relErr(wdx!, cdx!) < 1e-5, `${name}: dx differs from cpu by ${relErr(wdx!, cdx!)}`);
  assert.ok(relErr(wdw!, cdw!) < 1e-5, `${name}: dw differs from cpu by ${relErr(wdw!, cdw!)}`);

  // Finite differences, with the loss summed in float64 from wasm's float32 forward pass.
  const loss = (xa: Float32Array, wa: Float32Array): number =>
    tf.tidy(() => {
      const y = forward(
        tf.tensor4d(xa, xShape as [number, number, number, number]),
        tf.tensor4d(wa, wShape as [number, number, number, number]),
      ).dataSync();
      let s = 0;
      for (const v of y) s += 0.5 * v * v;
      return s;
    });
  const eps = 0.05;
  for (const [which, base, grad] of [
    ["dx", xv, wdx!],
    ["dw", wv, wdw!],
  ] as const) {
    const stride = Math.max(1, Math.floor(base.length / 12));
    for (let i = 0; i < base.length; i += stride) {
      const plus = Float32Array.from(base);
      const minus = Float32Array.from(base);
      plus[i]! += eps;
      minus[i]! -= eps;
      const fd =
        which === "dx" ? (loss(plus, wv) - loss(minus, wv)) / (2 * eps) : (loss(xv, plus) - loss(xv, minus)) / (2 * eps);
      const tol = 2e-3 * Math.max(1, Math.abs(fd));
      assert.ok(Math.abs(fd - grad[i]!) < tol, `${name}: ${which}[${i}] = ${grad[i]} but finite difference gives ${fd}`);
    }
  }
}

before(async () => {
  await initWasm();
});

test("the wasm backend has tsfast's training kernels registered", () => {
  for (const k of [
    "Conv2DBackpropFilter",
    "Conv2DBackpropInput",
    "DepthwiseConv2dNativeBackpropFilter",
    "DepthwiseConv2dNativeBackpropInput",
    "UnsortedSegmentSum",
  ]) {
    assert.ok(tf.getKernel(k, "wasm"), `${k} is not registered for wasm`);
  }
});

const convCases: [string, number[], number[], number | [number, number], "same" | "valid" | tf.backend_util.ExplicitPadding][] = [
  ["3x3 stride 1 same", [2, 9, 9, 3], [3, 3, 3, 4], 1, "same"],
  ["3x3 stride 2 same, odd size", [2, 9, 9, 3], [3, 3, 3, 4], 2, "same"],
  ["3x3 stride 2 same, even size", [2, 8, 8, 3], [3, 3, 3, 4], 2, "same"],
  ["1x1 stride 2 valid (ResNet shortcut)", [2, 8, 8, 3], [1, 1, 3, 4], 2, "valid"],
  ["7x7 stride 2 same (ResNet stem)", [1, 11, 10, 2], [7, 7, 2, 3], 2, "same"],
  ["3x3 stride 1 valid", [3, 8, 8, 5], [3, 3, 5, 6], 1, "valid"],
  ["2x3 strides [2, 3] valid", [2, 10, 9, 4], [2, 3, 4, 3], [2, 3], "valid"],
  ["3x3 explicit uneven padding", [2, 7, 7, 3], [3, 3, 3, 2], 1, [[0, 0], [2, 1], [0, 2], [0, 0]]],
  ["3x3 stride 2 explicit padding larger than the filter", [1, 6, 6, 2], [3, 3, 2, 2], 2, [[0, 0], [3, 0], [1, 3], [0, 0]]],
];
for (const [name, xs, ws, strides, pad] of convCases) {
  test(`conv2d gradients match cpu and finite differences: ${name}`, async () => {
    await checkGradients(name, xs, ws, (x, w) => tf.conv2d(x, w, strides, pad));
  });
}

test("fused conv2d (bias + relu) gradients match cpu and finite differences", async () => {
  const bias = tf.tensor1d([0.1, -0.2, 0.05, 0]);
  await checkGradients("fused", [2, 8, 8, 3], [3, 3, 3, 4], (x, w) =>
    tf.fused.conv2d({ x, filter: w, strides: 2, pad: "same", bias, activation: "relu" }),
  );
  bias.dispose();
});

const depthwiseCases: [string, number[], number[], number, "same" | "valid"][] = [
  ["3x3 stride 1 same", [2, 9, 9, 3], [3, 3, 3, 1], 1, "same"],
  ["3x3 stride 2 same, channel multiplier 2", [2, 9, 8, 3], [3, 3, 3, 2], 2, "same"],
  ["5x5 stride 2 valid", [1, 9, 9, 4], [5, 5, 4, 1], 2, "valid"],
  ["3x3 stride 2 same, even size (MobileNet downsampling)", [2, 8, 8, 5], [3, 3, 5, 1], 2, "same"],
  // 21 channels: one 16-channel SIMD block, one 4-channel block and one scalar channel
  ["3x3 stride 1 same, 21 channels", [2, 9, 9, 21], [3, 3, 21, 1], 1, "same"],
  ["3x3 stride 2 valid, odd size, batch 1, 36 channels", [1, 11, 9, 36], [3, 3, 36, 1], 2, "valid"],
  ["2x4 stride 1 valid, 17 channels", [2, 6, 7, 17], [2, 4, 17, 1], 1, "valid"],
  ["3x3 stride 2 same, channel multiplier 3 (18 channels after repeating)", [1, 7, 7, 6], [3, 3, 6, 3], 2, "same"],
  ["1x1 stride 2 valid, 8 channels", [2, 5, 5, 8], [1, 1, 8, 1], 2, "valid"],
];
for (const [name, xs, ws, strides, pad] of depthwiseCases) {
  test(`depthwise conv2d gradients match cpu and finite differences: ${name}`, async () => {
    await checkGradients(name, xs, ws, (x, w) => tf.depthwiseConv2d(x, w, strides, pad));
  });
}

/** The depthwise filter gradient kernel called directly (dy of any shape) on `backend`. */
async function depthwiseFilterGrad(
  backend: string,
  xShape: number[],
  dyShape: number[],
  attrs: { strides: number; pad: "same" | "valid"; dilations: number; filterShape: number[] },
): Promise<Float32Array> {
  const [g] = await on(backend, () =>
    tf.tidy(() => [
      tf.engine().runKernel(
        "DepthwiseConv2dNativeBackpropFilter",
        { x: tf.tensor(values(size(xShape), 7), xShape), dy: tf.tensor(values(size(dyShape), 8), dyShape) },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor,
    ]),
  );
  return g!;
}

test("depthwise filter gradient with a dy larger than the output reads dy's top-left, as cpu does", async () => {
  // 7×7 'same' stride 2 gives 4×4 outputs; dy is 5×6
  const attrs = { strides: 2, pad: "same" as const, dilations: 1, filterShape: [3, 3, 20, 1] };
  const c = await depthwiseFilterGrad("cpu", [2, 7, 7, 20], [2, 5, 6, 20], attrs);
  const w = await depthwiseFilterGrad("wasm", [2, 7, 7, 20], [2, 5, 6, 20], attrs);
  assert.ok(relErr(w, c) < 1e-5, `differs from cpu by ${relErr(w, c)}`);
});

test("the wasm backend's heap takes tsfast's SIMD module (else every depthwise test above ran the JavaScript fallback)", async () => {
  await tf.setBackend("wasm");
  // Node >= 16 has WebAssembly SIMD and tfjs-backend-wasm 4.22 exports its memory; if either changes, this says so
  assert.ok(typeof WebAssembly.validate === "function");
  assert.notEqual(simdKernels(asWasm(tf.backend()).wasm.asm?.memory), null, "no SIMD kernels: the backend's wasm.asm.memory is missing or the module does not link");
});

// tfjs has no gradient for dilated depthwise convolutions and cpu's kernel ignores dilation, so the
// dilated case is checked against the JavaScript loop (the kernel before the SIMD one).
for (const [name, xShape, dyShape, filterShape, dilations] of [
  ["multiplier 2, 22 channels after repeating", [3, 8, 9, 11], [3, 8, 9, 22], [3, 3, 11, 2], 1],
  ["dilation 2, 21 channels", [2, 9, 9, 21], [2, 9, 9, 21], [3, 3, 21, 1], 2],
] as const) {
  test(`depthwise filter gradient: the JavaScript fallback matches the SIMD kernels (${name})`, async () => {
    const attrs = { strides: 1, pad: "same" as const, dilations, filterShape: [...filterShape] };
    const simd = await depthwiseFilterGrad("wasm", [...xShape], [...dyShape], attrs);
    setWasmSimd(false);
    try {
      const js = await depthwiseFilterGrad("wasm", [...xShape], [...dyShape], attrs);
      assert.ok(relErr(js, simd) < 1e-5, `differs by ${relErr(js, simd)}`);
    } finally {
      setWasmSimd(true);
    }
  });
}

test("unsortedSegmentSum adds rows by segment and drops out-of-range ids", async () => {
  await tf.setBackend("wasm");
  const out = tf.tidy(() => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);
    return tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, -1, 5], "int32"), 4);
  });
  // segment 0: row 1; segment 2: rows 0 + 2; ids −1 and 5 fall outside [0, 4)
  assert.deepEqual(Array.from(out.dataSync()), [3, 4, 0, 0, 6, 8, 0, 0]);
  out.dispose();
});

test("embedding (gather) gradients match cpu and finite differences", async () => {
  const table = values(10 * 4, 5);
  const ids = [1, 3, 3, 9, 0, 1];
  const grad = () =>
    tf.tidy(() => [
      tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor2d(ids, [2, 3], "int32")))))(tf.tensor2d(table, [10, 4])),
    ]);
  const [c] = await on("cpu", grad);
  const [w] = await on("wasm", grad);
  assert.ok(relErr(w!, c!) < 1e-6);
  // d/dt Σ gather(t)² = 2 · t[r] · (times row r is gathered): row 3 twice, row 1 twice, rows 0 and 9 once.
  const counts = new Map<number, number>();
  for (const r of ids) counts.set(r, (counts.get(r) ?? 0) + 1);
  for (let r = 0; r < 10; r++) {
    for (let k = 0; k < 4; k++) {
      const want = 2 * table[r * 4 + k]! * (counts.get(r) ?? 0);
      assert.ok(Math.abs(w![r * 4 + k]! - want) < 1e-6, `row ${r} col ${k}: ${w![r * 4 + k]} vs ${want}`);
    }
  }
});

test("conv2dTranspose on wasm matches cpu (the replaced Conv2DBackpropInput as a forward op)", async () => {
  const f = () =>
    tf.tidy(() => [
      tf.conv2dTranspose(
        tf.tensor4d(values(2 * 4 * 4 * 6, 3), [2, 4, 4, 6]),
        tf.tensor4d(values(3 * 3 * 5 * 6, 4), [3, 3, 5, 6]),
        [2, 8, 8, 5],
        2,
        "same",
      ),
    ]);
  const [c] = await on("cpu", f);
  const [w] = await on("wasm", f);
  assert.ok(relErr(w!, c!) < 1e-5);
});

test("tile (block-copy kernel) matches cpu for float32, int32 and bool, incl. the batch-norm gradient pattern", async () => {
  const cases: [number[], number[], tf.DataType][] = [
    [[1, 1, 1, 5], [3, 4, 2, 1], "float32"], // per-channel statistics tiled to an activation's shape
    [[2, 3], [2, 3], "int32"],
    [[3, 1, 2], [1, 4, 3], "bool"],
    [[4], [1], "float32"],
    [[2, 0, 3], [2, 2, 2], "float32"],
  ];
  for (const [shape, reps, dtype] of cases) {
    const f = () =>
      tf.tidy(() => {
        const t = tf.round(tf.mul(tf.tensor(values(size(shape), 9), shape), 10));
        // bool via a comparison: wasm's Cast to bool keeps non-0/1 values (a stock-backend quirk).
        const x = dtype === "bool" ? tf.greater(t, 0) : tf.cast(t, dtype);
        return [tf.cast(tf.tile(x, reps), "float32")];
      });
    const [c] = await on("cpu", f);
    const [w] = await on("wasm", f);
    assert.deepEqual(Array.from(w!), Array.from(c!), `tile ${shape} by ${reps} (${dtype})`);
  }
});
