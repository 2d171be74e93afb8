/**
 * Depthwise convolution on the wasm engine: forward (tfjs-backend-wasm's XNNPACK kernel) against
 * tsfast's two gradient kernels (lib/engine/wasm/depthwise-grad.ts), for MobileNet/ResNet-like
 * shapes (3×3 filters, 'same' padding).
 *
 * usage: node dist/bench/depthwise-wasm.js [--reps 7] [--only <shape substring>] [--train-steps 5]
 * Prints per shape the median ms of the forward pass, the filter gradient (SIMD kernel, and the
 * JavaScript loop it replaced, `setWasmSimd(false)`) and the input gradient, and their ratios to
 * the forward pass. All are timed interleaved, in the same process, so the ratios hold even when
 * the machine is busy; the absolute times do not.
 * Then one training step (forward + backward + Adam) of a small MobileNet-style net, 56 px,
 * batch 32, with the SIMD filter gradient and with the JavaScript loop, interleaved.
 */
import * as tf from "../lib/engine/tf";
import { initWasm } from "../lib/engine/wasm";
import { setWasmSimd } from "../lib/engine/wasm/simd";
import { Rng } from "../lib/data/random";

interface Shape {
  n: number;
  size: number;
  c: number;
  mult: number;
  stride: number;
}

const SHAPES: Shape[] = [
  { n: 32, size: 56, c: 32, mult: 1, stride: 1 },
  { n: 32, size: 56, c: 64, mult: 1, stride: 2 },
  { n: 32, size: 28, c: 128, mult: 1, stride: 1 },
  { n: 32, size: 28, c: 128, mult: 1, stride: 2 },
  { n: 32, size: 14, c: 256, mult: 1, stride: 1 },
  { n: 64, size: 7, c: 256, mult: 1, stride: 1 },
  { n: 32, size: 28, c: 64, mult: 2, stride: 1 },
];

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const REPS = Number(opt("--reps") ?? 7);
const TRAIN_STEPS = Number(opt("--train-steps") ?? 5);
const only = opt("--only");

/** Deterministic values in [-0.5, 0.5) (tsfast's seeded generator). */
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-0.5, 0.5));
}

function ms(fn: () => tf.Tensor): number {
  const t0 = process.hrtime.bigint();
  // wasm kernels run synchronously: the result is complete when fn returns (no dataSync, which
  // would time a copy of the output off the heap)
  const out = fn();
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  out.dispose();
  return dt;
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;

async function main(): Promise<void> {
  await initWasm();
  console.log(`backend ${tf.getBackend()}, ${REPS} reps (median), 3x3 filters, 'same' padding`);
  console.log("shape                         fwd ms   dW ms  dW(JS) ms   dX ms   dW/fwd  dW(JS)/fwd  dX/fwd");
  const rows: { shape: string; fwdMs: number; dwMs: number; dwJsMs: number; dxMs: number }[] = [];
  for (const s of SHAPES) {
    const label = `${s.n}x${s.size}x${s.size}x${s.c} m${s.mult} s${s.stride}`;
    if (only && !label.includes(only)) continue;
    const x = tf.tensor4d(values(s.n * s.size * s.size * s.c, 1), [s.n, s.size, s.size, s.c]);
    const w = tf.tensor4d(values(9 * s.c * s.mult, 2), [3, 3, s.c, s.mult]);
    const o = Math.ceil(s.size / s.stride);
    const dy = tf.tensor4d(values(s.n * o * o * s.c * s.mult, 3), [s.n, o, o, s.c * s.mult]);
    const attrs = { strides: s.stride, pad: "same", dilations: 1 };
    const fwd = () => tf.depthwiseConv2d(x, w, s.stride, "same");
    const dW = () =>
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, { ...attrs, filterShape: w.shape }) as tf.Tensor;
    const dX = () =>
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy, filter: w }, { ...attrs, inputShape: x.shape }) as tf.Tensor;
    const dWjs = () => {
      setWasmSimd(false);
      try {
        return dW();
      } finally {
        setWasmSimd(true);
      }
    };
    const t: Record<"f" | "w" | "j" | "x", number[]> = { f: [], w: [], j: [], x: [] };
    ms(fwd), ms(dW), ms(dWjs), ms(dX); // warm-up (XNNPACK operator creation, JIT)
    for (let r = 0; r < REPS; r++) {
      t.f.push(ms(fwd));
      t.w.push(ms(dW));
      t.j.push(ms(dWjs));
      t.x.push(ms(dX));
    }
    const [f, gw, gj, gx] = [median(t.f), median(t.w), median(t.j), median(t.x)];
    const col = (v: number, width: number) => v.toFixed(2).padStart(width);
    console.log(
      `${label.padEnd(28)} ${col(f, 7)} ${col(gw, 7)} ${col(gj, 10)} ${col(gx, 7)} ` +
        `${col(gw / f, 7)}x ${col(gj / f, 10)}x ${col(gx / f, 6)}x`,
    );
    rows.push({ shape: label, fwdMs: f, dwMs: gw, dwJsMs: gj, dxMs: gx });
    tf.dispose([x, w, dy]);
  }
  const train = TRAIN_STEPS > 0 ? trainStep() : undefined;
  // for `npm run bench` (bench/engine.ts), which runs this script as a child and reads the last JSON line
  console.log(JSON.stringify({ bench: "depthwise-wasm", reps: REPS, rows, train }));
}

/** MobileNet-style: conv 3×3, then depthwise 3×3 + BN + ReLU6 and pointwise 1×1 + BN + ReLU6 blocks. */
function mobileNetLike(size: number): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 3] });
  const bnRelu = (t: tf.SymbolicTensor) =>
    tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization().apply(t)) as tf.SymbolicTensor;
  let x = bnRelu(tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: "same", useBias: false }).apply(input) as tf.SymbolicTensor);
  for (const [filters, strides] of [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1]] as const) {
    x = bnRelu(tf.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: "same", useBias: false }).apply(x) as tf.SymbolicTensor);
    x = bnRelu(tf.layers.conv2d({ filters, kernelSize: 1, useBias: false }).apply(x) as tf.SymbolicTensor);
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 10 }).apply(x) as tf.SymbolicTensor });
}

function trainStep(): { simdMs: number; jsMs: number } {
  const [size, bs] = [56, 32];
  const model = mobileNetLike(size);
  const opt = tf.train.adam(1e-3);
  const x = tf.tensor4d(values(bs * size * size * 3, 5), [bs, size, size, 3]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: bs }, (_, i) => i % 10), "int32"), 10);
  const step = (simd: boolean) => {
    setWasmSimd(simd);
    const t0 = process.hrtime.bigint();
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true);
    loss?.dataSync();
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    loss?.dispose();
    setWasmSimd(true);
    return dt;
  };
  step(true), step(false); // warm-up
  const t: Record<"simd" | "js", number[]> = { simd: [], js: [] };
  for (let r = 0; r < TRAIN_STEPS; r++) {
    t.simd.push(step(true));
    t.js.push(step(false));
  }
  const [a, b] = [median(t.simd), median(t.js)];
  console.log(
    `\nMobileNet-style training step (${size} px, batch ${bs}, 5 depthwise-separable blocks, Adam), ` +
      `median of ${TRAIN_STEPS}: ${a.toFixed(0)} ms with the SIMD filter gradient, ${b.toFixed(0)} ms with the ` +
      `JavaScript loop (${(b / a).toFixed(2)}x)`,
  );
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
  return { simdMs: a, jsMs: b };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
