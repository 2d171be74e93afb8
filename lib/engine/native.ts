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
import { BACKEND, RELU_GRAD, nativeKernels, type Kernel } from "./native/kernels";
import { installNativeBatchNorm } from "./native/batchnorm";
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
  registerReluGradient();
  installNativeBatchNorm();
  installResizeGrad("cpu");
  installResizeGrad(BACKEND);
  registered = true;
  return addon;
}

/**
 * Relu's gradient is registered per kernel name for every backend: keep tfjs's own formula
 * (`dy * step(x)`) everywhere but on "native", where one fused kernel does it.
 */
function registerReluGradient(): void {
  const original = tf.getGradient("Relu");
  if (!original) return;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const single = Array.isArray(dy) ? dy[0] : dy;
      if (tf.getBackend() !== BACKEND || !x || !single || x.dtype !== "float32" || single.dtype !== "float32") {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: single, x }) as tf.Tensor };
    },
  });
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
