/**
 * Run tfjs-core's own op test suite (shipped in `@tensorflow/tfjs-core/dist/**\/*_test.js`) against
 * one of tsfast's engines, initialised exactly as the library does it (the compiled `ready()` with
 * `TSFAST_BACKEND` forcing the rung, which calls the rung's init function: `initWasm`, `initNative`,
 * or the stock cpu backend).
 *
 *   node dist/scripts/test-ops.js --backend wasm|cpu|native [--grep <text>] [--files <regexp>] [--list] [--verbose]
 *
 * `--files` picks suite files by path, `--grep` specs by name, `--list` prints the files,
 * `--verbose` names every excluded spec (by default: each rule, its count and three examples).
 *
 * How: esbuild bundles ONE CommonJS file holding tfjs-core (its ES-module `dist/`), our compiled
 * engine modules (`dist/lib/engine`, so run `npm run build` first), the backend and the selected
 * test files, so tests and backend share one tfjs-core.
 * Jasmine's globals come from a jasmine-core Env created here before the bundle loads.
 * Prints `N passed, N failed` (plus the excluded specs, each with its reason) and exits 1 on failures.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { EXCLUSIONS, SUITE_FILES, excludedReason } from "./test-ops/selection";

interface Options {
  backend: string;
  grep?: string;
  files?: RegExp;
  list: boolean;
  verbose: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { backend: "", list: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`test-ops: ${a} needs a value`);
      return v;
    };
    if (a === "--backend") opts.backend = next();
    else if (a === "--grep") opts.grep = next();
    else if (a === "--files") opts.files = new RegExp(next());
    else if (a === "--list") opts.list = true;
    else if (a === "--verbose") opts.verbose = true;
    else throw new Error(`test-ops: unknown argument "${a}"; use --backend wasm|cpu|native [--grep text] [--files regexp] [--list] [--verbose]`);
  }
  if (!opts.backend) throw new Error("test-ops: --backend is required (wasm, cpu or native)");
  return opts;
}

/** The repository root: this file runs from dist/scripts/, its source lives in scripts/. */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`test-ops: no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
}

/** The test files of tfjs-core's dist that the selection keeps, relative to `dist/`. */
function testFiles(coreDist: string, filter?: RegExp): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(coreDist, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith("_test.js") && SUITE_FILES.some((re) => re.test(r))) out.push(r);
    }
  };
  walk("");
  return out.filter((f) => !filter || filter.test(f)).sort();
}

/** Write the bundle entry, bundle it with esbuild, and return the bundle's path. */
async function bundle(root: string, coreDist: string, files: string[], outDir: string): Promise<string> {
  // esbuild is a devDependency; required lazily so that building the library never needs it.
  const esbuild = require("esbuild") as typeof import("esbuild");
  fs.mkdirSync(outDir, { recursive: true });
  const entry = path.join(outDir, "entry.js");
  const lines = [
    `const { ready } = require(${JSON.stringify(path.join(root, "dist/lib/engine/backend.js"))});`,
    `const { setTestEnvs } = require("@tensorflow/tfjs-core/dist/jasmine_util");`,
    `require("@tensorflow/tfjs-core/dist/register_all_gradients");`,
    `require("@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops");`,
    `const files = {`,
    ...files.map((f) => `  ${JSON.stringify(f)}: () => require(${JSON.stringify(path.join(coreDist, f))}),`),
    `};`,
    `// Choose the engine first (its backend name is only known then), then load the tests,`,
    `// whose describeWithFlags() reads the test environment when they load.`,
    `exports.start = async function start(rung) {`,
    `  process.env.TSFAST_BACKEND = rung;`,
    `  const info = await ready();`,
    `  setTestEnvs([{ name: rung, backendName: info.backend, flags: {}, isDataSync: true }]);`,
    `  for (const f of Object.keys(files)) files[f]();`,
    `  return info;`,
    `};`,
  ];
  fs.writeFileSync(entry, lines.join("\n") + "\n");
  const outfile = path.join(outDir, "bundle.js");
  const coreIndex = path.join(coreDist, "index.js");
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    // ES-module builds everywhere: the CommonJS builds of the backends are ES5 classes that cannot
    // extend tfjs-core's ES2017 classes.
    mainFields: ["module", "main"],
    target: "node20",
    // tfjs-core marks its files side-effect free, which would drop the test files' describe() calls.
    ignoreAnnotations: true,
    logLevel: "error",
    // Optional engines and platform extras are loaded at run time if present, never bundled.
    external: ["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu", "node-fetch", "*.node"],
    plugins: [
      {
        name: "one-tfjs-core",
        setup(build) {
          // Every importer (tests, layers, backends, tsfast) gets tfjs-core's ES-module dist.
          build.onResolve({ filter: /^@tensorflow\/tfjs-core$/ }, () => ({ path: coreIndex }));
        },
      },
      {
        name: "keep-library-dirname",
        setup(build) {
          // tsfast's compiled engine modules keep their own __dirname/__filename inside the bundle,
          // so an engine that finds files relative to itself (the native addon) finds them here too.
          const libDir = path.join(root, "dist", "lib") + path.sep;
          build.onLoad({ filter: /\.js$/ }, (a) => {
            if (!a.path.startsWith(libDir)) return undefined;
            const src = fs.readFileSync(a.path, "utf8");
            return {
              contents: src
                .replace(/\b__dirname\b/g, JSON.stringify(path.dirname(a.path)))
                .replace(/\b__filename\b/g, JSON.stringify(a.path)),
              loader: "js",
            };
          });
        },
      },
    ],
  });
  // The wasm backend looks for its .wasm binaries next to the script that loads it.
  const wasmDist = path.join(root, "node_modules/@tensorflow/tfjs-backend-wasm/dist");
  for (const f of fs.readdirSync(wasmDist)) {
    if (f.endsWith(".wasm")) fs.copyFileSync(path.join(wasmDist, f), path.join(outDir, f));
  }
  return outfile;
}

interface SpecResult {
  fullName: string;
  status: string;
  failedExpectations: { message: string }[];
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const coreDist = path.join(root, "node_modules/@tensorflow/tfjs-core/dist");
  const files = testFiles(coreDist, opts.files);
  if (opts.list) {
    for (const f of files) console.log(f);
    return;
  }
  const t0 = Date.now();
  const outDir = path.join(root, "dist/.test-ops", opts.backend);
  const bundlePath = await bundle(root, coreDist, files, outDir);
  console.log(`test-ops: ${files.length} tfjs-core test files bundled in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const jasmineCore = require("jasmine-core") as { boot: () => JasmineLike };
  const jasmine = jasmineCore.boot();
  const env = jasmine.getEnv();
  const results: SpecResult[] = [];
  const excluded: { name: string; reason: string }[] = [];
  env.configure({
    random: false,
    specFilter: (spec: { getFullName: () => string }) => {
      const name = spec.getFullName();
      if (opts.grep && !name.includes(opts.grep)) return false;
      const reason = excludedReason(opts.backend, name);
      if (reason) {
        excluded.push({ name, reason });
        return false;
      }
      return true;
    },
  });
  env.addReporter({ specDone: (r: SpecResult) => void results.push(r) });

  const loaded = require(bundlePath) as { start: (rung: string) => Promise<{ backend: string; engine: string }> };
  const info = await loaded.start(opts.backend);
  console.log(`test-ops: engine ${info.engine}, tfjs backend "${info.backend}"`);
  const t1 = Date.now();
  await env.execute();

  const passed = results.filter((r) => r.status === "passed");
  const failed = results.filter((r) => r.status === "failed");
  if (excluded.length) {
    console.log(`\nExcluded (${excluded.length} specs):`);
    const byReason = new Map<string, string[]>();
    for (const e of excluded) byReason.set(e.reason, [...(byReason.get(e.reason) ?? []), e.name]);
    for (const [reason, names] of byReason) {
      console.log(`  ${names.length} × ${reason}`);
      for (const n of opts.verbose ? names : names.slice(0, 3)) console.log(`      ${opts.verbose ? "" : "e.g. "}${n}`);
    }
  }
  for (const f of failed) {
    console.log(`\nFAILED: ${f.fullName}`);
    for (const e of f.failedExpectations.slice(0, 2)) console.log(`  ${e.message.split("\n")[0]?.slice(0, 300)}`);
  }
  console.log(
    `\ntest-ops (${opts.backend}): ${passed.length} passed, ${failed.length} failed, ${excluded.length} excluded ` +
      `(${EXCLUSIONS.length} exclusion rules) in ${((Date.now() - t1) / 1000).toFixed(1)} s`,
  );
  process.exitCode = failed.length > 0 || passed.length === 0 ? 1 : 0;
}

interface JasmineLike {
  getEnv: () => {
    configure: (c: Record<string, unknown>) => void;
    addReporter: (r: Record<string, unknown>) => void;
    execute: () => Promise<unknown>;
  };
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
