/**
 * Issue 19's rows that have a script of their own, run by `npm run bench` (bench/engine.ts) so that one
 * run prints every target with its ratio. Each script runs in a fresh child process (its own report is
 * passed through, indented) and ends with one JSON result line, {"bench":"<name>",...}, read here:
 * - data: bench/data.ts, the image pipeline against torchvision's, per CPU-second (target ≥ 2×);
 * - e2e: bench/e2e.ts, lesson 1 end to end on 2,000 JPEGs against PyTorch + torchvision (target ≤ 1.0×);
 * - depthwise: bench/depthwise-wasm.ts, the wasm depthwise filter gradient against its forward pass
 *   (target ≤ 3×).
 * The data and e2e children pick their engine as a user's code does (the ladder, or TSFAST_BACKEND);
 * the depthwise one is wasm by design.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";

interface DataResult { n: number; epochs: number; rounds: number; tsfastWall: number; tsfastCpu: number; torchWall: number; torchCpu: number }
interface E2eSide { seconds: number; error_rate: number }
interface E2eResult { n: number; epochs: number; tsfast?: E2eSide; torch?: E2eSide }
interface DepthwiseResult {
  reps: number;
  rows: { shape: string; fwdMs: number; dwMs: number; dwJsMs: number; dxMs: number }[];
  train?: { simdMs: number; jsMs: number };
}

/** A script's result line: JSON starting with its bench name, e.g. {"bench":"data",...}. */
const RESULT = /^\{"bench":/;
/** Longest a script may run (the e2e row takes about 3 minutes on the slower 2-core machine). */
const SCRIPT_TIMEOUT_MS = 30 * 60 * 1000;

/** Runs `dist/bench/<script>` (or an absolute path) with `args`; its result line, or why there is none. */
export function runScript<T>(script: string, args: string[]): { r?: T; note?: string } {
  const res = spawnSync(process.execPath, [path.resolve(__dirname, script), ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 2 ** 20,
    timeout: SCRIPT_TIMEOUT_MS,
  });
  const lines = (res.stdout ?? "").split("\n");
  for (const l of lines) if (l.trim() && !RESULT.test(l)) console.log(`  ${l}`);
  if (res.status !== 0) {
    const why = res.error?.message ?? (res.signal ? `killed by ${res.signal}` : `exit ${res.status}`);
    return { note: `${script} failed (${why})` };
  }
  const last = lines.filter((l) => RESULT.test(l)).pop();
  if (!last) return { note: `${script} printed no result line` };
  try {
    return { r: JSON.parse(last) as T };
  } catch (e) {
    return { note: `${script} printed a result line that is not JSON (${e instanceof Error ? e.message : String(e)})` };
  }
}

const num = (v?: number | null): v is number => typeof v === "number" && Number.isFinite(v);
const f1 = (v?: number | null) => (num(v) ? v.toFixed(1) : "-");
const f2 = (v?: number | null) => (num(v) ? v.toFixed(2) : "-");
const ratio = (a?: number | null, b?: number | null) => (num(a) && num(b) && b !== 0 ? `${(a / b).toFixed(2)}x` : "-");

export function dataRow(quick: boolean): void {
  console.log("\ndata pipeline (bench/data.ts):");
  const { r, note } = runScript<DataResult>("data.js", quick ? ["--n", "128", "--epochs", "1", "--rounds", "1"] : ["--rounds", "2"]);
  console.log("\n| data pipeline: decode, Resize(460), augTransforms({ size: 224, minScale: 0.75 }), Normalize | images in the folder × epochs | tsfast img per CPU-s | torchvision img per CPU-s | ratio (target >= 2) | tsfast img/s wall | torchvision img/s wall | ratio | note |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  console.log(`| bs 64, 2 torchvision workers | ${r ? `${r.n} × ${r.epochs}, best of ${r.rounds}` : "-"} | ${f1(r?.tsfastCpu)} | ${f1(r?.torchCpu)} | ${ratio(r?.tsfastCpu, r?.torchCpu)} | ${f1(r?.tsfastWall)} | ${f1(r?.torchWall)} | ${ratio(r?.tsfastWall, r?.torchWall)} | ${note ?? ""} |`);
}

export function e2eRow(quick: boolean): void {
  console.log("\nlesson 1 end to end (bench/e2e.ts):");
  const { r, note } = runScript<E2eResult>("e2e.js", quick ? ["--n", "400"] : []);
  const pct = (s?: E2eSide) => (s && num(s.error_rate) ? `${(s.error_rate * 100).toFixed(1)} %` : "-");
  console.log("\n| end to end: Resize(160), augTransforms({ size: 128 }), resnet18 from random weights, fineTune(1) | JPEGs | tsfast s | PyTorch s | ratio (target <= 1) | tsfast final error | PyTorch final error | note |");
  console.log("|---|---|---|---|---|---|---|---|");
  console.log(`| decoded from disk each epoch, bs 64 | ${r?.n ?? "-"} | ${f1(r?.tsfast?.seconds)} | ${f1(r?.torch?.seconds)} | ${ratio(r?.tsfast?.seconds, r?.torch?.seconds)} | ${pct(r?.tsfast)} | ${pct(r?.torch)} | ${note ?? ""} |`);
}

export function depthwiseRows(quick: boolean): void {
  console.log("\nwasm depthwise convolution (bench/depthwise-wasm.ts):");
  const { r, note } = runScript<DepthwiseResult>("depthwise-wasm.js", quick ? ["--reps", "3", "--train-steps", "1"] : []);
  console.log(`\n| wasm depthwise 3×3, 'same' (n×px×px×c, multiplier, stride) | forward ms | filter grad ms | ÷ forward (target <= 3) | JS loop ms | ÷ forward | input grad ms | ÷ forward | note |`);
  console.log("|---|---|---|---|---|---|---|---|---|");
  if (!r) console.log(`| - | - | - | - | - | - | - | - | ${note ?? ""} |`);
  for (const s of r?.rows ?? []) {
    console.log(`| ${s.shape} | ${f2(s.fwdMs)} | ${f2(s.dwMs)} | ${ratio(s.dwMs, s.fwdMs)} | ${f2(s.dwJsMs)} | ${ratio(s.dwJsMs, s.fwdMs)} | ${f2(s.dxMs)} | ${ratio(s.dxMs, s.fwdMs)} | median of ${r!.reps} |`);
  }
  if (r?.train) {
    console.log(`MobileNet-style training step on wasm (56 px, batch 32): ${r.train.simdMs.toFixed(0)} ms with the SIMD filter gradient, ${r.train.jsMs.toFixed(0)} ms with the JavaScript loop`);
  }
}
