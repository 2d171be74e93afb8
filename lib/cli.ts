#!/usr/bin/env node
/**
 * The `tsfast` command: `tsfast init | jupyter | run` (notebooks from any folder, `workspace.ts`),
 * `tsfast serve <exportDir>` and `tsfast predict <exportDir> <images...>`.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { engineBanner, ready } from "./engine/backend";
import { checkImage } from "./serve/image";
import { loadPredictor, topK, type Predictor } from "./serve/predictor";
import { serve, serveDefaults } from "./serve/server";
import { decodeUtf8, isTextSpec } from "./text/data";
import "./wiring"; // a fresh process can restore any export: preprocessing and custom layers registered
import { initFolder, jupyterPath, openJupyter, runNotebooks, workspaceDefaults } from "./workspace";

const USAGE = `Usage:
  tsfast init <folder>
      Prepare a folder for tsfast notebooks: link tsfast into its node_modules, register a tslab
      kernel for it (spec in <folder>/.jupyter), write ${workspaceDefaults.starter} (lesson 1's recipe).
  tsfast jupyter [folder] [-- jupyter options]
      Open Jupyter (classic Notebook) in a prepared folder (default: the current one).
  tsfast run <notebook.ipynb...> [--out dir]
      Execute notebooks with the tslab kernel; write the executed copy (x.executed.ipynb) and x.html
      next to each notebook, or x.ipynb and x.html into --out.
  tsfast serve <exportDir> [--port ${serveDefaults.port}] [--host ${serveDefaults.host}] [--max-bytes N] [--concurrency N]
      Serve the model learn.export(exportDir) wrote: upload page at /, JSON API at POST /predict,
      GET /health, GET /info. Ctrl-C, or SIGTERM to the pid it prints, stops it.
  tsfast predict <exportDir> <image...> [--json] [--topk N]
      Print one line per image: file, predicted label, probability (tab-separated).
      For a text classifier's export, give .txt files: each file's text is classified.
      --json prints a JSON array instead, with the top-k classes of each image.
  tsfast --help | --version`;

/** Where `main` writes; the process streams by default. */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const processIo: CliIo = {
  out: (s) => process.stdout.write(s + "\n"),
  err: (s) => process.stderr.write(s + "\n"),
};

class UsageError extends Error {}

/**
 * Run the `tsfast` command with `argv` (without `node` and the script); resolves with the exit code
 * (0 ok, 1 a file or model failed, 2 bad usage). `serve` resolves only after the server stops.
 */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === "--version" || command === "-v") {
      io.out(version());
      return 0;
    }
    if (command === "init") return initCommand(rest, io);
    if (command === "jupyter") return await jupyterCommand(rest);
    if (command === "run") return await runCommand(rest);
    if (command === "serve") return await serveCommand(rest, io);
    if (command === "predict") return await predictCommand(rest, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      io.err(`tsfast: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`tsfast: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

function initCommand(args: string[], io: CliIo): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError(`init takes one folder, got ${positionals.length} arguments`);
  const report = initFolder(positionals[0]!);
  for (const s of report.steps) io.out(s);
  io.out(`ready: npx tsfast jupyter ${report.folder}   (or plain jupyter with JUPYTER_PATH=${jupyterPath(report.folder)})`);
  return 0;
}

async function jupyterCommand(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const own = dash < 0 ? args : args.slice(0, dash);
  const { positionals } = parseArgs({ args: own, allowPositionals: true, options: {} });
  if (positionals.length > 1) throw new UsageError(`jupyter takes at most one folder, got ${positionals.length}`);
  return openJupyter(positionals[0] ?? process.cwd(), dash < 0 ? [] : args.slice(dash + 1));
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: "string" } } });
  if (positionals.length === 0) throw new UsageError("run takes at least one notebook (.ipynb)");
  return runNotebooks(positionals, values.out === undefined ? {} : { out: values.out });
}

async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "max-bytes": { type: "string" },
      concurrency: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`serve takes one export folder, got ${positionals.length} arguments`);
  const dir = positionals[0]!;
  const port = intOption("--port", values.port, 0);
  const maxBytes = intOption("--max-bytes", values["max-bytes"], 1);
  const concurrency = intOption("--concurrency", values.concurrency, 1);
  await ready();
  const predictor = await loadPredictor(dir);
  const handle = await serve(predictor, {
    port: port ?? serveDefaults.port,
    host: values.host ?? serveDefaults.host,
    maxBytes,
    concurrency,
    title: `tsfast: ${dir}`,
    log: (line) => io.out(`${new Date().toISOString()} ${line}`),
  });
  io.out(engineBanner());
  io.out(`serving ${dir} (${predictor.vocab.length} classes) at ${handle.url}  — pid ${process.pid}; Ctrl-C or kill ${process.pid} to stop`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      io.out("stopping…");
      void handle.close().then(() => {
        io.out("stopped");
        resolve();
      });
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  predictor.dispose?.();
  return 0;
}

async function predictCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: "boolean", default: false }, topk: { type: "string" } },
  });
  if (positionals.length < 2) throw new UsageError("predict takes an export folder and at least one image");
  const [dir, ...images] = positionals as [string, ...string[]];
  const k = intOption("--topk", values.topk, 1) ?? serveDefaults.topK;
  await ready();
  const predictor: Predictor = await loadPredictor(dir);
  const results: Record<string, unknown>[] = [];
  let failed = 0;
  try {
    for (const file of images) {
      try {
        let p;
        if (isTextSpec((predictor as { meta?: { inferenceSpec?: unknown } }).meta?.inferenceSpec)) {
          // a text export classifies each file's text (read as UTF-8; bytes that are not UTF-8 are replaced and said)
          const { text, replaced } = decodeUtf8(await fs.promises.readFile(file));
          if (replaced > 0) io.err(`tsfast: ${file}: ${replaced} byte sequence${replaced > 1 ? "s" : ""} not UTF-8, replaced with U+FFFD (convert the file to UTF-8 to keep those characters)`);
          p = await predictor.predict(text as unknown as Buffer);
        } else {
          const data = await readImageFile(file);
          await checkImage(data, serveDefaults.maxPixels, file);
          p = await predictor.predict(data);
        }
        const probability = p.probs[p.index] ?? NaN;
        if (values.json) {
          const r: Record<string, unknown> = { file, label: p.label, index: p.index, probability, top: topK(p.probs, predictor.vocab, k) };
          if (p.labels) r["labels"] = p.labels;
          results.push(r);
        } else io.out(`${file}\t${p.label}\t${probability.toFixed(4)}`);
      } catch (e) {
        failed++;
        const msg = e instanceof Error ? e.message : String(e);
        if (values.json) results.push({ file, error: msg });
        io.err(`tsfast: ${file}: ${msg}`);
      }
    }
  } finally {
    predictor.dispose?.();
  }
  if (values.json) io.out(JSON.stringify(results, null, 2));
  return failed > 0 ? 1 : 0;
}

async function readImageFile(file: string): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not an image" : `cannot read (${code ?? String(e)})`);
  }
}

function intOption(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return n;
}

function version(): string {
  // The command runs compiled: dist/lib/cli.js is two folders below package.json.
  return (require("../../package.json") as { version: string }).version;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`tsfast: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
