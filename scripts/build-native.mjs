#!/usr/bin/env node
// Build tsfast's two addons:
//   native/       -> native/build/Release/tsfast_native.node       the native CPU engine (oneDNN)
//   native/image/ -> native/image/build/Release/tsfast_image.node  the JPEG fast path (libjpeg-turbo)
//                                                                   and the augmentation warp
//
// Runs as the package's `install` script. It NEVER fails the install: when the compiler, make,
// Node's headers, oneDNN (libdnnl-dev) or libjpeg (libjpeg62-turbo-dev) are missing, or node-gyp
// fails, it prints why and writes build-skipped.txt in that addon's folder. The engine shows its
// first line when it falls back to wasm; without the image addon, sharp and JavaScript do its work.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

function have(cmd, args = ["--version"]) {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  return r.status === 0;
}

/** Why nothing can be built here, or undefined. */
function toolchainMissing() {
  if (process.env.TSFAST_SKIP_NATIVE) return "TSFAST_SKIP_NATIVE is set";
  if (!have("g++")) return "no C++ compiler (apt-get install g++ make)";
  if (!have("make")) return "no make (apt-get install make)";
  try {
    require("node-addon-api");
  } catch {
    return "node-addon-api is not installed";
  }
  return undefined;
}

// node-gyp: the copy bundled with npm, else one on PATH.
function gypCommand() {
  const candidates = [
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
    "/usr/share/nodejs/node-gyp/bin/node-gyp.js",
  ];
  const gyp = candidates.find((p) => existsSync(p));
  return gyp ? [process.execPath, gyp] : have("node-gyp") ? ["node-gyp"] : undefined;
}

/** Build the addon in `dir` (its binding.gyp), or write `dir`/build-skipped.txt saying why not. */
async function build(dir, label, fallback, missing) {
  const marker = join(dir, "build-skipped.txt");
  const skip = (reason, detail = "") => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(marker, `${reason}\n${detail}`);
    console.warn(`tsfast: ${label} not built: ${reason} (${fallback})`);
  };
  if (!existsSync(join(dir, "binding.gyp"))) return skip(`${join(dir, "binding.gyp")} is missing from this package`);
  if (missing) return skip(missing);
  const gypCmd = gypCommand();
  if (!gypCmd) return skip("node-gyp not found (it ships with npm)");
  // Prefer Node's own headers when installed (Debian's /usr/include/node): no download needed.
  const nodedir = existsSync(join(dirname(process.execPath), "..", "include", "node", "node_api.h"))
    ? join(dirname(process.execPath), "..")
    : undefined;
  const args = [...gypCmd.slice(1), "rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const jobs = String(Math.max(1, (await import("node:os")).availableParallelism?.() ?? 2));
  console.log(`tsfast: building the ${label}...`);
  const t0 = Date.now();
  const r = spawnSync(gypCmd[0], args, {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, JOBS: jobs },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.status !== 0) {
    const err = `${r.stderr ?? ""}${r.stdout ?? ""}`;
    const first = err.split("\n").find((l) => /error/i.test(l)) ?? `node-gyp exited with ${r.status}`;
    return skip(`compiling ${dir} failed: ${first.trim().slice(0, 200)}`, err.slice(-4000));
  }
  rmSync(marker, { force: true });
  console.log(`tsfast: ${label} built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

const missing = toolchainMissing();
await build(join(root, "native"), "native engine", "tsfast will use the wasm/cpu engines",
  missing ?? (existsSync("/usr/include/dnnl.hpp") ? undefined : "oneDNN headers not found (apt-get install libdnnl-dev)"));
await build(join(root, "native", "image"), "image addon", "sharp and JavaScript will do its work",
  missing ?? (existsSync("/usr/include/jpeglib.h") ? undefined : "libjpeg headers not found (apt-get install libjpeg62-turbo-dev)"));
