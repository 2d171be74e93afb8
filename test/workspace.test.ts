import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// `tsfast init` prepares a folder outside the checkout; `tsfast run` executes a notebook there
// (one kernel start) and leaves the executed copy and the HTML next to it.
const CLI = path.join(__dirname, "..", "lib", "cli.js");
const ROOT = path.resolve(__dirname, "..", "..");
const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-own-")));
const env: NodeJS.ProcessEnv = { ...process.env, TSFAST_BACKEND: "cpu" };
delete env["JUPYTER_PATH"]; // as in a fresh shell: the command finds the kernel spec itself

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], timeout = 60_000): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env, timeout });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("init prepares a folder elsewhere: tsfast resolves there, a tslab kernel of its own, a starter notebook", () => {
  assert.ok(!tmp.startsWith(ROOT + path.sep));
  const project = path.join(tmp, "project");
  const r = cli(["init", project]);
  assert.equal(r.status, 0, r.out);
  assert.equal(fs.realpathSync(path.join(project, "node_modules", "tsfast")), fs.realpathSync(ROOT));
  const kernel = JSON.parse(fs.readFileSync(path.join(project, ".jupyter", "share", "jupyter", "kernels", "tslab", "kernel.json"), "utf8"));
  assert.equal(kernel.argv[0], path.join(ROOT, "node_modules", "tslab", "bin", "tslab"), "absolute tslab binary");
  const nb = JSON.parse(fs.readFileSync(path.join(project, "01_your_images.ipynb"), "utf8"));
  assert.equal(nb.metadata.kernelspec.name, "tslab");
  const codeCells = nb.cells.filter((c: { cell_type: string }) => c.cell_type === "code").map((c: { source: string }) => c.source);
  assert.equal(codeCells.filter((s: string) => /^const path = /m.test(s)).length, 1, "one path line");
  for (const step of ["fromFolder", "visionLearner", "lrFind", "fineTune", "ClassificationInterpretation"]) {
    assert.ok(codeCells.some((s: string) => s.includes(step)), `the starter notebook uses ${step}`);
  }
  assert.match(r.out, new RegExp(`JUPYTER_PATH=${project}/\\.jupyter/share/jupyter`));
  const npx = spawnSync("npx", ["--no-install", "tsfast", "--version"], { cwd: project, encoding: "utf8", env, timeout: 60_000 });
  assert.equal(npx.stdout.trim(), JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).version, npx.stderr);
  // Again: nothing to do, the notebook is kept.
  fs.appendFileSync(path.join(project, "01_your_images.ipynb"), " ");
  const again = cli(["init", project]);
  assert.equal(again.status, 0, again.out);
  assert.match(again.out, /tsfast already resolves[\s\S]*npx tsfast already works[\s\S]*kernel already registered[\s\S]*kept the existing/);
});

test("run executes a notebook in the prepared folder and writes the executed copy and the HTML (no MathJax) next to it", () => {
  const project = path.join(tmp, "project");
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" } },
    cells: [
      { cell_type: "markdown", id: "m", metadata: {}, source: "# Hello from my own folder" },
      { cell_type: "code", id: "c", metadata: {}, execution_count: null, outputs: [], source: 'import { ready, engineBanner } from "tsfast";\nawait ready();\nconsole.log(engineBanner());' },
    ],
  };
  const file = path.join(project, "hello.ipynb");
  fs.writeFileSync(file, JSON.stringify(nb));
  const r = cli(["run", file], 180_000);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /notebooks: 1 passed, 0 failed/);
  const executed = JSON.parse(fs.readFileSync(path.join(project, "hello.executed.ipynb"), "utf8"));
  const text = executed.cells[1].outputs.map((o: { text?: string }) => o.text ?? "").join("");
  assert.match(text, /backend/i, text);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")), nb, "the source notebook is left as it was");
  const html = fs.readFileSync(path.join(project, "hello.html"), "utf8");
  assert.match(html, /Hello from my own folder/);
  assert.ok(!/mathjax/i.test(html), "the offline HTML loads no MathJax");
});

test("run and jupyter refuse a folder init has not prepared, saying the command that does", () => {
  const bare = path.join(tmp, "bare");
  fs.mkdirSync(bare);
  const file = path.join(bare, "x.ipynb");
  fs.writeFileSync(file, "{}");
  for (const args of [["run", file], ["jupyter", bare]]) {
    const r = cli(args);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, new RegExp(`"${bare}" is not prepared \\(tsfast does not resolve from it.*\\); run: npx tsfast init "${bare}"`));
  }
  const r = cli(["run", path.join(bare, "missing.ipynb")]);
  assert.equal(r.status, 1);
  assert.match(r.out, /no such notebook: .*missing\.ipynb/);
  assert.equal(cli(["run"]).status, 2);
});
