/**
 * A tiny WebAssembly module with 128-bit SIMD loops that work directly on the wasm backend's heap
 * (it imports the backend's `WebAssembly.Memory`), for the one training kernel that XNNPACK has
 * no fast path for: the depthwise filter gradient (lib/engine/wasm/depthwise-grad.ts).
 *
 * The module is assembled here byte by byte (binary format of the WebAssembly core spec with the
 * fixed-width SIMD proposal, supported by Node ≥ 16): nothing is compiled ahead of time.
 *
 * Exported functions (all addresses are byte offsets into the backend's heap):
 *
 *   dot4(px, pdy, pacc, count, nblk, sx, sdy)    four float32x4 vectors (16 channels) per block
 *   dot1(px, pdy, pacc, count, nblk, sx, sdy)    one float32x4 vector (4 channels) per block
 *
 * For each block b < nblk and each of its lanes (channel k = 16·b + lane, resp. 4·b + lane):
 *   s[k]        = Σ_{q < count} x[px + q·sx][k] · dy[pdy + q·sdy][k]        (float32 products and sums)
 *   acc[k]     += s[k]                                                      (acc is float64)
 * i.e. one filter tap's contribution of one row: `count` positions, the channels innermost.
 * The partial sum s runs over at most one row (≤ the output width) in float32; the running
 * total over rows, images and the batch is float64, as in the JavaScript loop it replaces.
 */

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32 constants). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A name (ASCII here) as the binary format writes it: length, then the bytes. */
const str = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// Opcodes used below (core spec 5.4 and the SIMD proposal's 0xFD-prefixed opcodes).
const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br_if: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32const: (v: number) => [0x41, ...sleb(v)],
  i32eqz: [0x45],
  i32add: [0x6a],
  i32sub: [0x6b],
  // memarg: alignment hint 0 (unaligned is allowed), constant offset
  v128load: (offset: number) => [0xfd, ...uleb(0x00), 0, ...uleb(offset)],
  v128store: (offset: number) => [0xfd, ...uleb(0x0b), 0, ...uleb(offset)],
  v128zero: [0xfd, ...uleb(0x0c), ...Array<number>(16).fill(0)],
  // lanes 2, 3 of a float32x4 moved to lanes 0, 1 (bytes 8..15, then 0..7)
  highToLow: [0xfd, ...uleb(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7],
  f32x4add: [0xfd, ...uleb(0xe4)],
  f32x4mul: [0xfd, ...uleb(0xe6)],
  f64x2add: [0xfd, ...uleb(0xf0)],
  f64x2promoteLow: [0xfd, ...uleb(0x5f)],
};

/** Body of dotU: U float32x4 accumulators per block of U vectors (see the file comment). */
function dotBody(U: number): number[] {
  // params: 0 px, 1 pdy, 2 pacc, 3 count, 4 nblk, 5 sx, 6 sdy; locals: 7 p, 8 d, 9 q, 10.. a_u
  const [px, pdy, pacc, count, nblk, sx, sdy, p, d, q] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const a = (u: number) => 10 + u;
  const code: number[] = [];
  const emit = (...parts: (number[] | number)[]) => {
    for (const part of parts) Array.isArray(part) ? code.push(...part) : code.push(part);
  };
  emit(op.block); // $done
  emit(op.get(nblk), op.i32eqz, op.br_if(0));
  emit(op.loop); // $blk: one block of U vectors
  for (let u = 0; u < U; u++) emit(op.v128zero, op.set(a(u)));
  emit(op.get(px), op.set(p), op.get(pdy), op.set(d), op.get(count), op.set(q));
  emit(op.block); // $qdone
  emit(op.get(q), op.i32eqz, op.br_if(0));
  emit(op.loop); // $q: a_u += x[p + 16u] · dy[d + 16u]
  for (let u = 0; u < U; u++) {
    emit(op.get(a(u)), op.get(p), op.v128load(16 * u), op.get(d), op.v128load(16 * u), op.f32x4mul, op.f32x4add, op.set(a(u)));
  }
  emit(op.get(p), op.get(sx), op.i32add, op.set(p));
  emit(op.get(d), op.get(sdy), op.i32add, op.set(d));
  emit(op.get(q), op.i32const(1), op.i32sub, op.tee(q), op.br_if(0));
  emit(op.end, op.end); // $q, $qdone
  // acc (float64) += a_u, two lanes at a time
  for (let u = 0; u < U; u++) {
    emit(op.get(pacc), op.get(pacc), op.v128load(32 * u), op.get(a(u)), op.f64x2promoteLow, op.f64x2add, op.v128store(32 * u));
    emit(op.get(pacc), op.get(pacc), op.v128load(32 * u + 16), op.get(a(u)), op.get(a(u)), op.highToLow);
    emit(op.f64x2promoteLow, op.f64x2add, op.v128store(32 * u + 16));
  }
  emit(op.get(px), op.i32const(16 * U), op.i32add, op.set(px));
  emit(op.get(pdy), op.i32const(16 * U), op.i32add, op.set(pdy));
  emit(op.get(pacc), op.i32const(32 * U), op.i32add, op.set(pacc));
  emit(op.get(nblk), op.i32const(1), op.i32sub, op.tee(nblk), op.br_if(0));
  emit(op.end, op.end); // $blk, $done
  const locals = vec([
    [...uleb(3), I32],
    [...uleb(U), V128],
  ]);
  const body = [...locals, ...code, ...op.end];
  return [...uleb(body.length), ...body];
}

/** The module's bytes: imports env.memory, exports dot4 and dot1. */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const type = vec([[0x60, ...vec(Array<number[]>(7).fill([I32])), ...vec([])]]);
  // memory import with limits {min 0, no max}: any size of the backend's memory matches
  const imports = vec([[...str("env"), ...str("memory"), 0x02, 0x00, ...uleb(0)]]);
  const funcs = vec([uleb(0), uleb(0)]);
  const exports = vec([
    [...str("dot4"), 0x00, ...uleb(0)],
    [...str("dot1"), 0x00, ...uleb(1)],
  ]);
  const code = [...uleb(2), ...dotBody(4), ...dotBody(1)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, type),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
}

export type DotFn = (px: number, pdy: number, pacc: number, count: number, nblk: number, sx: number, sdy: number) => void;
export interface SimdKernels {
  dot4: DotFn;
  dot1: DotFn;
}

const instances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();
let compiled: WebAssembly.Module | null | undefined;
let enabled = true;

/** Switch the SIMD kernels off (tests use it to check the JavaScript fallback against them). */
export function setWasmSimd(on: boolean): void {
  enabled = on;
}

/**
 * The SIMD kernels bound to `memory` (the wasm backend's heap), or null where this runtime has no
 * WebAssembly SIMD (callers then use their JavaScript loop).
 */
export function simdKernels(memory: WebAssembly.Memory | undefined): SimdKernels | null {
  if (!enabled || !memory || typeof WebAssembly === "undefined") return null;
  if (instances.has(memory)) return instances.get(memory)!;
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  let k: SimdKernels | null = null;
  if (compiled) {
    try {
      const inst = new WebAssembly.Instance(compiled, { env: { memory } });
      k = { dot4: inst.exports["dot4"] as DotFn, dot1: inst.exports["dot1"] as DotFn };
    } catch {
      // e.g. a threaded backend build, whose shared memory does not match this import
      k = null;
    }
  }
  instances.set(memory, k);
  return k;
}
