/**
 * The native rung: tsfast's oneDNN CPU engine, compiled from `native/` at install time.
 *
 * The "native" backend is the pure-JS cpu backend (same TypedArray storage, same kernels for every
 * op) with its hot kernels (convolutions, pooling, matmul, elementwise, reductions, softmax,
 * batch norm, transpose/slice/pad) replaced by multi-threaded C++ working on that storage in place.
 */
import * as tf from "./tf";
import { defaultThreads } from "./backend";
import { loadAddon, type NativeAddon } from "./native/addon";
import { BACKEND, EQUAL_MASK, RELU_GRAD, nativeKernels, type Kernel } from "./native/kernels";
import { batchNormReluCall, installNativeBatchNorm } from "./native/batchnorm";
import { setConvBnFusion, setReluFusion } from "./lean-forward";
import { convBnCall } from "./native/conv-bn";
import { installNativeAdam } from "./native/optimizer";
import { NativeBackend } from "./native/pool";
import { installResizeGrad } from "./resize-grad";

let registered = false;

/** Register the "native" backend and its kernels (once); returns the loaded addon. */
export function registerNative(): NativeAddon {
  const addon = loadAddon();
  if (registered) return addon;
  // The cpu backend registers its kernels on import; ours are copies of them.
  require("@tensorflow/tfjs-backend-cpu");
  tf.registerBackend(BACKEND, () => new NativeBackend(), 1);
  const cpuKernels = new Map(tf.getKernelsForBackend("cpu").map((kc) => [kc.kernelName, kc]));
  const cpu = (name: string) => {
    const kc = cpuKernels.get(name);
    if (!kc) throw new Error(`kernel '${name}' is not registered for backend 'cpu'`);
    return kc.kernelFunc as unknown as Kernel;
  };
  const native = nativeKernels(addon, cpu);
  for (const kc of cpuKernels.values()) {
    const fn = native[kc.kernelName];
    tf.registerKernel({
      ...kc,
      backendName: BACKEND,
      kernelFunc: fn ? (fn as unknown as tf.KernelFunc) : kc.kernelFunc,
    });
  }
  const reluGrad = native[RELU_GRAD];
  if (reluGrad) tf.registerKernel({ kernelName: RELU_GRAD, backendName: BACKEND, kernelFunc: reluGrad as unknown as tf.KernelFunc });
  const eqMask = native[EQUAL_MASK];
  if (eqMask) tf.registerKernel({ kernelName: EQUAL_MASK, backendName: BACKEND, kernelFunc: eqMask as unknown as tf.KernelFunc });
  registerReluGradient();
  registerMaxGradient();
  installLazyConvGrad();
  installNativeAdam();
  installNativeBatchNorm();
  // BatchNorm + the ReLU after it as one op in training (the forward walk asks; off with TSFAST_FUSE_BN_RELU=0)
  if (process.env["TSFAST_FUSE_BN_RELU"] !== "0") setReluFusion(batchNormReluCall);
  // a convolution + the BatchNorm (+ ReLU) after it as one convolution in inference (off with TSFAST_FUSE_CONV_BN=0)
  if (process.env["TSFAST_FUSE_CONV_BN"] !== "0") setConvBnFusion(convBnCall);
  installResizeGrad("cpu");
  installResizeGrad(BACKEND);
  registered = true;
  return addon;
}

/**
 * Relu's gradient is registered per kernel name for every backend: keep tfjs's own formula
 * (`dy * step(x)`) everywhere but on "native", where one fused kernel does it.
 *
 * It saves Relu's output y instead of its input x (tfjs saves x). The mask is the same: y > 0
 * exactly where x > 0, y is x where x is NaN or -0, and 0 where x < 0, so both kernels give the same
 * bits. What changes is memory: y is the next layer's input and is kept for its own gradient anyway,
 * while x (a BatchNorm's or a residual Add's output) would be held only for this mask until the
 * backward pass ends — 142 MiB of ResNet-34's 128 px, batch-32 step (bench/memory.ts).
 */
function registerReluGradient(): void {
  const original = tf.getGradient("Relu");
  if (!original) return;
  tf.registerGradient({
    ...original,
    inputsToSave: [],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0]; // Relu's output (see above); the mask it gives is x's
      const single = Array.isArray(dy) ? dy[0] : dy;
      if (tf.getBackend() !== BACKEND || !x || !single || x.dtype !== "float32" || single.dtype !== "float32") {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: single, x }) as tf.Tensor };
    },
  });
}

/**
 * The gradient of a max reduction (fastai's AdaptiveConcatPool head takes one over each picture) is
 * `dy * cast(equal(x, max), "float32")`, broadcast over the reduced axes. tfjs's cpu kernels run that
 * equal and the following multiply element by element through an index-to-coordinates loop in
 * JavaScript: 1 s of a 17 s lesson-1 run (`bench/e2e.ts --n 600`). On "native" both are native passes
 * (EQUAL_MASK, then the native broadcast multiply), with the same bits; elsewhere tfjs's own.
 */
function registerMaxGradient(): void {
  const original = tf.getGradient("Max");
  if (!original) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, y] = saved;
      const single = Array.isArray(dy) ? dy[0] : dy;
      if (tf.getBackend() !== BACKEND || !x || !y || !single || [x, y, single].some((t) => t.dtype !== "float32")) {
        return original.gradFunc(dy, saved, attrs);
      }
      const axes = tf.util.parseAxisParam((attrs as { reductionIndices: number | number[] }).reductionIndices, x.shape);
      const keep = (t: tf.Tensor) => (t.rank < x.rank ? tf.reshape(t, tf.backend_util.expandShapeToKeepDim(t.shape, axes)) : t);
      return { x: () => tf.mul(keep(single), tf.engine().runKernel(EQUAL_MASK, { a: x, b: keep(y) }) as tf.Tensor) };
    },
  });
}

/**
 * tfjs's fused conv2d, which tfjs-layers' Conv2D calls, records a custom gradient that computes the
 * input's gradient and the filter's together, even where the input needs none: a network's first
 * convolution, whose input is the image (at 64 px that unused gradient was 16.6 of ResNet-18's 195 ms
 * of convolutions a step). On "native", a convolution with no bias and no activation takes tfjs's
 * plain conv2d op instead: the same native kernel and the same result, but its registered gradient
 * computes an input's gradient only when the backward pass asks for it. Everything else, and every
 * other backend, takes tfjs's own fused op.
 */
function installLazyConvGrad(): void {
  const fused = tf.fused as { conv2d: typeof tf.fused.conv2d };
  const original = fused.conv2d;
  if ((original as { lazyGrad?: boolean }).lazyGrad) return;
  const lazy: typeof tf.fused.conv2d = (args) => {
    const { bias, activation, preluActivationWeights } = args;
    if (tf.getBackend() !== BACKEND || bias != null || (activation ?? "linear") !== "linear" || preluActivationWeights != null) return original(args);
    return tf.conv2d(args.x, args.filter, args.strides, args.pad, args.dataFormat ?? "NHWC", args.dilations ?? [1, 1], args.dimRoundingMode);
  };
  // tfjs's CommonJS build keeps `fused` a plain object; a bundler's namespace (tfjs-core's op suite
  // is bundled) may expose only getters, and then convolutions stay tfjs's own (only slower).
  try {
    fused.conv2d = Object.assign(lazy, { lazyGrad: true });
  } catch {
    /* read-only namespace: keep tfjs's fused conv2d */
  }
}

/**
 * Load the compiled addon and select its backend, or throw saying why it is unavailable. The
 * backend's factory is synchronous, so it is selected before this returns (the ladder relies on it).
 */
export function startNative(): { backend: string; threads: number } {
  const addon = registerNative();
  const threads = addon.setThreads(defaultThreads());
  void tf.setBackend(BACKEND);
  if (tf.getBackend() !== BACKEND) throw new Error("the native backend failed to initialise");
  return { backend: BACKEND, threads };
}

/** `startNative` as a promise, for callers that switch engines mid-process (tests, benchmarks). */
export async function initNative(): Promise<{ backend: string; threads: number }> {
  return startNative();
}
