/**
 * tsfast from any folder: `tsfast init <folder>` makes `import ... from "tsfast"` resolve there (a
 * `node_modules/tsfast` link to this install) and `npx tsfast` run there, registers a tslab kernel for it (absolute binary,
 * Debian's Python, kernel spec in `<folder>/.jupyter`, as `scripts/setup.sh` does for the checkout)
 * and writes a starter notebook; `tsfast jupyter` opens Jupyter there; `tsfast run` executes a
 * notebook anywhere through `scripts/run_notebooks.py`, writing the results next to it.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { starterNotebook } from "./starter";

/** Where this install of tsfast lives (dist/lib/workspace.js is two folders below package.json). */
export const packageRoot = path.resolve(__dirname, "..", "..");

/** The defaults of the workspace commands. */
export const workspaceDefaults = {
  /** Python with Jupyter (Debian's; a pyenv `python3` on PATH often lacks it). */
  python: "/usr/bin/python3",
  /** The Jupyter launcher. */
  jupyter: "/usr/bin/jupyter",
  /** File name of the starter notebook `init` writes. */
  starter: "01_your_images.ipynb",
} as const;

/** What `initFolder` did, one line per step, for the command to print. */
export interface InitReport {
  folder: string;
  steps: string[];
}

/** The kernel-spec folder of a prepared folder: what `JUPYTER_PATH` must name for plain `jupyter`. */
export function jupyterPath(folder: string): string {
  return path.join(path.resolve(folder), ".jupyter", "share", "jupyter");
}

function tslabBinary(): string {
  const pkg = require.resolve("tslab/package.json", { paths: [packageRoot] });
  return path.join(path.dirname(pkg), "bin", "tslab");
}

function checkPython(python: string): void {
  if (!fs.existsSync(python)) {
    throw new Error(
      `${python} not found: tsfast runs notebooks with Debian's Jupyter ` +
        `(sudo apt-get install jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-client python3-ipython)`,
    );
  }
}

/** Prepare `folder` (created if missing) for tsfast notebooks; each step is skipped when already done. */
export function initFolder(folder: string, opts: { python?: string } = {}): InitReport {
  const dir = path.resolve(folder);
  const steps: string[] = [];
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new Error(`"${dir}" exists and is not a folder`);
  fs.mkdirSync(dir, { recursive: true });

  // 1. node_modules/tsfast -> this install, so notebooks (and tslab's compiler) resolve "tsfast".
  const link = path.join(dir, "node_modules", "tsfast");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  let current: string | undefined;
  try {
    current = fs.realpathSync(link);
  } catch {
    current = undefined;
  }
  if (current === fs.realpathSync(packageRoot)) {
    steps.push(`tsfast already resolves from ${dir}`);
  } else {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(link);
    } catch {
      st = undefined;
    }
    if (st && !st.isSymbolicLink()) throw new Error(`"${link}" exists and is not a link; remove it (or npm uninstall tsfast there) and run init again`);
    if (st) fs.unlinkSync(link);
    fs.symlinkSync(packageRoot, link, "dir");
    steps.push(`linked ${link} -> ${packageRoot}`);
  }

  // 2. node_modules/.bin/tsfast, so `npx tsfast ...` works inside the folder too.
  const bin = path.join(dir, "node_modules", ".bin", "tsfast");
  const shim = `#!/bin/sh\n# written by tsfast init: this folder's \`npx tsfast\`\nexec "${process.execPath}" "${path.join(packageRoot, "dist", "lib", "cli.js")}" "$@"\n`;
  if (fs.existsSync(bin) && fs.readFileSync(bin, "utf8") === shim) {
    steps.push(`npx tsfast already works in ${dir}`);
  } else {
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.rmSync(bin, { force: true });
    fs.writeFileSync(bin, shim, { mode: 0o755 });
    steps.push(`wrote ${bin}`);
  }

  // 3. A tslab kernel of its own: absolute binary, Debian's Python, spec under <folder>/.jupyter.
  const binary = tslabBinary();
  const kernelJson = path.join(jupyterPath(dir), "kernels", "tslab", "kernel.json");
  if (fs.existsSync(kernelJson) && fs.readFileSync(kernelJson, "utf8").includes(binary)) {
    steps.push(`tslab kernel already registered in ${kernelJson}`);
  } else {
    const python = opts.python ?? workspaceDefaults.python;
    checkPython(python);
    const r = spawnSync(process.execPath, [binary, "install", `--python=${python}`, `--binary=${binary}`, `--prefix=${path.join(dir, ".jupyter")}`], {
      encoding: "utf8",
    });
    if (r.status !== 0 || !fs.existsSync(kernelJson)) {
      throw new Error(`registering the tslab kernel failed (exit ${r.status}): ${(r.stderr || r.stdout || String(r.error)).trim()}`);
    }
    steps.push(`registered the tslab kernel in ${kernelJson}`);
  }

  // 4. The starter notebook: lesson 1's recipe, with one `path` line to change.
  const nb = path.join(dir, workspaceDefaults.starter);
  if (fs.existsSync(nb)) {
    steps.push(`kept the existing ${nb}`);
  } else {
    fs.writeFileSync(nb, JSON.stringify(starterNotebook(), null, 1) + "\n");
    steps.push(`wrote ${nb} (change its \`path\` line to your folder of class folders)`);
  }
  return { folder: dir, steps };
}

/** The kernel-spec folders that hold a tslab kernel for `dir`: its own, `JUPYTER_PATH`'s, this checkout's. */
function kernelDirs(dir: string): string[] {
  const env = (process.env["JUPYTER_PATH"] ?? "").split(":").filter(Boolean);
  const dirs = [jupyterPath(dir), ...env, jupyterPath(packageRoot)];
  return [...new Set(dirs)].filter((d) => fs.existsSync(path.join(d, "kernels", "tslab", "kernel.json")));
}

/** Refuse a folder where notebooks cannot import tsfast or find a tslab kernel, saying the command that prepares it. */
function checkPrepared(dir: string): void {
  let resolves = true;
  try {
    require.resolve("tsfast", { paths: [dir] });
  } catch {
    resolves = false;
  }
  const kernel = kernelDirs(dir).length > 0;
  if (!resolves || !kernel) {
    const missing = [!resolves ? "tsfast does not resolve from it" : "", !kernel ? `no tslab kernel in ${jupyterPath(dir)}` : ""];
    throw new Error(`"${dir}" is not prepared (${missing.filter(Boolean).join("; ")}); run: npx tsfast init ${JSON.stringify(dir)}`);
  }
}

/** The environment notebooks of `dirs` run in: their kernel specs on `JUPYTER_PATH`. */
function notebookEnv(dirs: string[]): NodeJS.ProcessEnv {
  return { ...process.env, JUPYTER_PATH: [...new Set(dirs.flatMap(kernelDirs))].join(":") };
}

/** Wait for a child process; its exit code (128 + signal number when killed by a signal). */
function exitCode(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + (signalNumbers[signal] ?? 1) : 1)));
  });
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Open the classic Notebook server in a prepared `folder`; resolves with Jupyter's exit code. */
export async function openJupyter(folder: string, extraArgs: string[] = []): Promise<number> {
  const dir = path.resolve(folder);
  checkPrepared(dir);
  const jupyter = workspaceDefaults.jupyter;
  if (!fs.existsSync(jupyter)) throw new Error(`${jupyter} not found (sudo apt-get install jupyter-notebook)`);
  const rootFlag = process.getuid?.() === 0 ? ["--allow-root"] : []; // Jupyter refuses root without it
  const child = spawn(jupyter, ["notebook", `--notebook-dir=${dir}`, "--ip=127.0.0.1", "--no-browser", ...rootFlag, ...extraArgs], {
    stdio: "inherit",
    env: notebookEnv([dir]),
  });
  const forward = (sig: NodeJS.Signals) => (): void => void child.kill(sig);
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    return await exitCode(child);
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

/**
 * Execute notebooks anywhere with the tslab kernel (`scripts/run_notebooks.py`): the executed copy
 * (`x.executed.ipynb` beside the notebook, `x.ipynb` in `out`) and `x.html` go next to each
 * notebook, or into `out`. Resolves with the runner's exit code (0 all passed, 1 one failed).
 */
export async function runNotebooks(notebooks: string[], opts: { out?: string; python?: string } = {}): Promise<number> {
  if (notebooks.length === 0) throw new Error("run takes at least one notebook (.ipynb)");
  const files = notebooks.map((n) => path.resolve(n));
  for (const f of files) {
    if (!fs.existsSync(f)) throw new Error(`no such notebook: ${f}`);
    if (!f.endsWith(".ipynb")) throw new Error(`"${f}" is not a notebook (.ipynb)`);
  }
  const dirs = [...new Set(files.map((f) => path.dirname(f)))];
  for (const d of dirs) checkPrepared(d);
  const python = opts.python ?? workspaceDefaults.python;
  checkPython(python);
  const where = opts.out === undefined ? ["--beside"] : ["--out", path.resolve(opts.out)];
  const child = spawn(python, [path.join(packageRoot, "scripts", "run_notebooks.py"), ...where, ...files], {
    stdio: "inherit",
    env: notebookEnv(dirs),
  });
  return exitCode(child);
}
