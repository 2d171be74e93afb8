/**
 * The `.safetensors` format, read and written: the weight files of Hugging Face, timm and torchvision.
 *
 * Layout of a file:
 *   1. 8 bytes: N, the header length, an unsigned little-endian 64-bit integer;
 *   2. N bytes: a UTF-8 JSON object `{ name: { dtype, shape, data_offsets: [begin, end] }, ... }`,
 *      plus an optional `"__metadata__": { key: string }` entry;
 *   3. the raw little-endian bytes of every tensor; `data_offsets` count from the end of the header.
 * Tensors are decoded into plain typed arrays (floats of any width → `Float32Array`, integers →
 * `Int32Array`), so no TensorFlow.js memory is held until the caller makes tensors.
 */
import { promises as fsp } from "node:fs";

/** A tensor element type that this reader understands (safetensors' own spelling). */
export type SafeDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** One decoded tensor: its stored dtype, its shape and its values (row-major, like PyTorch). */
export interface SafeTensor {
  /** The element type the file stored. */
  dtype: SafeDtype;
  /** The shape, outermost dimension first. */
  shape: number[];
  /** The values: `Float32Array` for float dtypes, `Int32Array` for integer and bool dtypes. */
  data: Float32Array | Int32Array;
}

/** A whole decoded file: tensors by name, and the free-form string metadata. */
export interface SafetensorsFile {
  /** Tensors by name, in the order the header lists them. */
  tensors: Map<string, SafeTensor>;
  /** The `__metadata__` entry (string → string), empty when absent. */
  metadata: Record<string, string>;
}

/** A tensor to write: values plus shape; `dtype` defaults to F32 for floats and I64 for ints. */
export interface SafeTensorInput {
  /** The shape, outermost first; its product must equal `data.length`. */
  shape: number[];
  /** Values in row-major order. */
  data: Float32Array | Int32Array | number[];
  /** The element type to store (default `F32`, or `I64` for an `Int32Array`); F32, F16, BF16, I64, I32. */
  dtype?: "F32" | "F16" | "BF16" | "I64" | "I32";
}

const BYTES: Record<SafeDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

// ---- half-precision conversions -------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Decode one IEEE binary16 value. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (or zero)
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Encode one float as IEEE binary16, rounding to nearest even. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let frac = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    // subnormal half: shift the implicit 1 in, then round
    if (e < -10) return sign;
    frac |= 0x800000;
    const shift = 14 - e;
    let m = frac >>> shift;
    const rem = frac & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && m & 1)) m++;
    return sign | m;
  }
  let m = frac >>> 13;
  const rem = frac & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** Decode one bfloat16 value (the top 16 bits of a float32). */
export function bf16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

/** Encode one float as bfloat16, rounding to nearest even. */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40; // nan
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

// ---- reading --------------------------------------------------------------------------------

function decode(dtype: SafeDtype, view: DataView, count: number, name: string): Float32Array | Int32Array {
  switch (dtype) {
    case "F32": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case "F64": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case "F16": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case "BF16": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = bf16ToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case "I64": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) {
          throw new Error(`safetensors: tensor "${name}" holds the I64 value ${v}, which does not fit in int32`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case "I16": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      return out;
    }
    case "I8": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      return out;
    }
    case "U8":
    case "BOOL": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
      return out;
    }
  }
}

/** Decode a `.safetensors` file already in memory; `source` names it in error messages. */
export function parseSafetensors(bytes: Uint8Array, source = "<buffer>"): SafetensorsFile {
  if (bytes.byteLength < 8) throw new Error(`safetensors: ${source} is ${bytes.byteLength} bytes, too short for a header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.byteLength - 8) {
    throw new Error(`safetensors: ${source} declares a ${n}-byte header but has only ${bytes.byteLength - 8} bytes after it (not a safetensors file, or truncated)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`safetensors: ${source} has a header that is not JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = e.dtype as SafeDtype;
    if (!(dtype in BYTES)) throw new Error(`safetensors: ${source}: tensor "${name}" has dtype ${e.dtype}, which tsfast cannot read (use F32, F16, BF16, F64 or an integer type)`);
    const shape = e.shape ?? [];
    const [begin, end] = e.data_offsets ?? [0, 0];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * BYTES[dtype] || end > dataLen || begin < 0) {
      throw new Error(`safetensors: ${source}: tensor "${name}" (${dtype} [${shape.join(", ")}]) has data_offsets [${begin}, ${end}] that do not fit its size or the file`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin);
    tensors.set(name, { dtype, shape, data: decode(dtype, view, count, name) });
  }
  return { tensors, metadata };
}

/** Read and decode a `.safetensors` file from disk. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const buf = await fsp.readFile(path);
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

// ---- writing --------------------------------------------------------------------------------

/** Encode tensors (and optional string metadata) as the bytes of a `.safetensors` file. */
export function serializeSafetensors(
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header["__metadata__"] = metadata;
  let offset = 0;
  const plan: { name: string; dtype: SafeDtype; t: SafeTensorInput; begin: number; count: number }[] = [];
  for (const [name, t] of entries) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(`safetensors: tensor "${name}" has shape [${t.shape.join(", ")}] (${count} values) but ${t.data.length} values were given`);
    }
    const dtype: SafeDtype = t.dtype ?? (t.data instanceof Int32Array ? "I64" : "F32");
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * BYTES[dtype]] };
    plan.push({ name, dtype, t, begin: offset, count });
    offset += count * BYTES[dtype];
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const headBytes = () => new TextEncoder().encode(json).byteLength;
  while ((8 + headBytes()) % 8 !== 0) json += " ";
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  const base = 8 + head.byteLength;
  for (const { dtype, t, begin, count } of plan) {
    const d = t.data;
    const at = base + begin;
    for (let i = 0; i < count; i++) {
      const v = d[i]!;
      switch (dtype) {
        case "F32": dv.setFloat32(at + i * 4, v, true); break;
        case "F16": dv.setUint16(at + i * 2, floatToHalf(v), true); break;
        case "BF16": dv.setUint16(at + i * 2, floatToBf16(v), true); break;
        case "I64": dv.setBigInt64(at + i * 8, BigInt(Math.trunc(v)), true); break;
        case "I32": dv.setInt32(at + i * 4, Math.trunc(v), true); break;
        default: throw new Error(`safetensors: cannot write dtype ${dtype}`);
      }
    }
  }
  return out;
}

/** Write tensors (and optional string metadata) to a `.safetensors` file. */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  await fsp.writeFile(path, serializeSafetensors(tensors, metadata));
}
