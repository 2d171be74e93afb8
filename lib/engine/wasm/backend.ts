/**
 * The few pieces of the wasm backend our training kernels call: heap views, outputs, and the
 * backend's own kernels (XNNPACK convolution, transpose, slice) invoked below the engine.
 *
 * Kernels here work on `TensorInfo`s at the backend level, never on engine tensors: the engine
 * does not see the intermediates, so there is nothing to tidy and no reference count to trick.
 * Each intermediate is created by the backend with one reference and freed with `free`.
 */
import * as tf from "../tf";

/** The parts of `BackendWasm` (tfjs-backend-wasm 4.22) that the kernels use. */
export interface WasmBackend {
  wasm: {
    cwrap: (name: string, ret: null, args: string[]) => (...a: unknown[]) => void;
    /** The Emscripten module's exports; `memory` is the heap that `typedArrayFromHeap` views. */
    asm?: { memory?: WebAssembly.Memory };
  };
  dataIdMap: { get: (dataId: object) => { id: number } };
  makeOutput: (shape: number[], dtype: tf.DataType) => tf.TensorInfo;
  typedArrayFromHeap: (t: tf.TensorInfo) => Float32Array | Int32Array | Uint8Array;
  disposeData: (dataId: object, force?: boolean) => boolean;
  readSync: (dataId: object) => unknown;
}

/** What every kernel function receives. */
export interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  attrs?: Record<string, unknown>;
  backend: unknown;
}

/** The backend as the interface above. */
export function asWasm(backend: unknown): WasmBackend {
  return backend as WasmBackend;
}

/** A float32 view of a tensor on the wasm heap; take it after the last allocation (growth detaches views). */
export function f32(b: WasmBackend, t: tf.TensorInfo): Float32Array {
  if (t.dtype !== "float32") throw new Error(`wasm training kernel: expected a float32 tensor, got ${t.dtype}`);
  return b.typedArrayFromHeap(t) as Float32Array;
}

/** Release an intermediate created by the backend. */
export function free(b: WasmBackend, ...ts: tf.TensorInfo[]): void {
  for (const t of ts) b.disposeData(t.dataId);
}

/** The same data seen with another shape (no copy, no new reference: free only one of the two). */
export function reshaped(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Run a kernel already registered for wasm (e.g. `Transpose`) on backend-level tensors. */
export function callKernel(
  backend: unknown,
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown> = {},
): tf.TensorInfo {
  const k = tf.getKernel(name, "wasm");
  if (!k) throw new Error(`wasm training kernel: the backend has no '${name}' kernel`);
  const out = k.kernelFunc({ inputs, attrs, backend: backend as tf.KernelBackend } as never);
  if (Array.isArray(out)) throw new Error(`wasm training kernel: '${name}' returned several outputs`);
  return out as tf.TensorInfo;
}

/** Transpose through the backend's C++ kernel; a no-op permutation still returns a new reference. */
export function transpose(backend: unknown, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return callKernel(backend, "Transpose", { x }, { perm });
}

/** Parameters of one XNNPACK 2-D convolution in NHWC / HWIO layout. */
export interface ConvCall {
  /** Input `[n, h, w, inC]`. */
  x: tf.TensorInfo;
  /** Filter `[kh, kw, inC, outC]`. */
  filter: tf.TensorInfo;
  pad: { top: number; bottom: number; left: number; right: number };
  stride: [number, number];
  dilation: [number, number];
  /** Depthwise: filter `[kh, kw, inC, multiplier]`, output channels `inC · multiplier`. */
  depthwise?: boolean;
}

const convFns = new WeakMap<object, Map<string, (...a: unknown[]) => void>>();

/**
 * One convolution through the backend's XNNPACK entry point, with explicit padding and any
 * stride/dilation combination (tfjs's `conv2d` op refuses stride > 1 together with dilation > 1,
 * XNNPACK does not).
 */
export function xnnConv2d(backend: unknown, c: ConvCall): tf.TensorInfo {
  const b = asWasm(backend);
  // Both C entry points take the same 19 numbers.
  const entry = c.depthwise ? "DepthwiseConv2dNative" : "Conv2D";
  let fns = convFns.get(b);
  if (!fns) convFns.set(b, (fns = new Map()));
  let fn = fns.get(entry);
  if (!fn) {
    fn = b.wasm.cwrap(entry, null, Array<string>(19).fill("number"));
    fns.set(entry, fn);
  }
  const [n, h, w, inC] = c.x.shape as [number, number, number, number];
  const [kh, kw, fInC, fOut] = c.filter.shape as [number, number, number, number];
  const outC = c.depthwise ? fInC * fOut : fOut;
  if (fInC !== inC) throw new Error(`xnnConv2d: input has ${inC} channels, filter expects ${fInC}`);
  const { top, bottom, left, right } = c.pad;
  const [sh, sw] = c.stride;
  const [dh, dw] = c.dilation;
  const oh = Math.floor((h + top + bottom - ((kh - 1) * dh + 1)) / sh) + 1;
  const ow = Math.floor((w + left + right - ((kw - 1) * dw + 1)) / sw) + 1;
  if (oh <= 0 || ow <= 0) throw new Error(`xnnConv2d: empty output ${oh}x${ow}`);
  const out = b.makeOutput([n, oh, ow, outC], "float32");
  const id = (t: tf.TensorInfo) => b.dataIdMap.get(t.dataId).id;
  // Argument order of the C entry point: x, batch, h, w, filter, fh, fw, pads (t, r, b, l),
  // isSamePad, dilations (h, w), strides (h, w), inC, outC, out.
  fn(id(c.x), n, h, w, id(c.filter), kh, kw, top, right, bottom, left, 0, dh, dw, sh, sw, inC, outC, id(out));
  return out;
}
