#!/usr/bin/env node
// Build tsfast's native CPU engine (native/ -> native/build/Release/tsfast_native.node).
//
// Runs as the package's `install` script. It NEVER fails the install: when the compiler, make,
// Node's headers or oneDNN (libdnnl-dev) are missing, or node-gyp fails, it prints why and
// writes native/build-skipped.txt, whose first line the engine shows when it falls back to wasm.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const marker = join(nativeDir, "build-skipped.txt");
const require = createRequire(import.meta.url);

function skip(reason, detail = "") {
  mkdirSync(nativeDir, { recursive: true });
  writeFileSync(marker, `${reason}\n${detail}`);
  console.warn(`tsfast: native engine not built: ${reason} (tsfast will use the wasm/cpu engines)`);
  process.exit(0);
}

function have(cmd, args = ["--version"]) {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  return r.status === 0;
}

if (process.env.TSFAST_SKIP_NATIVE) skip("TSFAST_SKIP_NATIVE is set");
if (!existsSync(join(nativeDir, "binding.gyp"))) skip("native/binding.gyp is missing from this package");
if (!have("g++")) skip("no C++ compiler (apt-get install g++ make)");
if (!have("make")) skip("no make (apt-get install make)");
if (!existsSync("/usr/include/dnnl.hpp")) skip("oneDNN headers not found (apt-get install libdnnl-dev)");

let addonApi;
try {
  addonApi = require("node-addon-api").include_dir;
} catch {
  skip("node-addon-api is not installed");
}

// node-gyp: the copy bundled with npm, else one on PATH.
const candidates = [
  join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  "/usr/share/nodejs/node-gyp/bin/node-gyp.js",
];
let gyp = candidates.find((p) => existsSync(p));
let gypCmd = gyp ? [process.execPath, gyp] : have("node-gyp") ? ["node-gyp"] : undefined;
if (!gypCmd) skip("node-gyp not found (it ships with npm)");

// Prefer Node's own headers when installed (Debian's /usr/include/node): no download needed.
const nodedir = existsSync(join(dirname(process.execPath), "..", "include", "node", "node_api.h"))
  ? join(dirname(process.execPath), "..")
  : undefined;
const args = [...gypCmd.slice(1), "rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const jobs = String(Math.max(1, (await import("node:os")).availableParallelism?.() ?? 2));
console.log(`tsfast: building the native engine (${addonApi ? "node-addon-api ok" : ""})...`);
const t0 = Date.now();
const r = spawnSync(gypCmd[0], args, {
  cwd: nativeDir,
  encoding: "utf8",
  env: { ...process.env, JOBS: jobs },
  stdio: ["ignore", "pipe", "pipe"],
});
if (r.status !== 0) {
  const err = `${r.stderr ?? ""}${r.stdout ?? ""}`;
  const first = err.split("\n").find((l) => /error/i.test(l)) ?? `node-gyp exited with ${r.status}`;
  skip(`compiling native/ failed: ${first.trim().slice(0, 200)}`, err.slice(-4000));
}
rmSync(marker, { force: true });
console.log(`tsfast: native engine built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
