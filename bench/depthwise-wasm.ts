/**
 * Depthwise convolution on the wasm engine: forward (tfjs-backend-wasm's XNNPACK kernel) against
 * tsfast's two gradient kernels (lib/engine/wasm/depthwise-grad.ts), for MobileNet/ResNet-like
 * shapes (3×3 filters, 'same' padding).
 *
 * usage: node dist/bench/depthwise-wasm.js [--reps 7] [--only <shape substring>]
 * Prints per shape the median ms of the forward pass, the filter gradient and the input gradient,
 * and the filter/forward and input/forward ratios. The three are timed interleaved, in the same
 * process, so the ratios hold even when the machine is busy; the absolute times do not.
 */
import * as tf from "../lib/engine/tf";
import { initWasm } from "../lib/engine/wasm";

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
const only = opt("--only");

/** Deterministic values in [-0.5, 0.5). */
function values(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
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
  console.log("shape                         fwd ms   dW ms   dX ms   dW/fwd  dX/fwd");
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
    const t: Record<"f" | "w" | "x", number[]> = { f: [], w: [], x: [] };
    ms(fwd), ms(dW), ms(dX); // warm-up (XNNPACK operator creation, JIT)
    for (let r = 0; r < REPS; r++) {
      t.f.push(ms(fwd));
      t.w.push(ms(dW));
      t.x.push(ms(dX));
    }
    const [f, gw, gx] = [median(t.f), median(t.w), median(t.x)];
    console.log(
      `${label.padEnd(28)} ${f.toFixed(2).padStart(7)} ${gw.toFixed(2).padStart(7)} ${gx.toFixed(2).padStart(7)} ` +
        `${(gw / f).toFixed(2).padStart(7)}x ${(gx / f).toFixed(2).padStart(6)}x`,
    );
    tf.dispose([x, w, dy]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
