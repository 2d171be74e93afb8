import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { tempDir } from "./helpers/tmp";

// The runner must fail a notebook whose cell fails, and show that cell's real message
// (tslab reports errors only on the cell's stderr).
const ROOT = path.resolve(__dirname, "..", "..");
const tmp = tempDir("tsfast-nb-");

function notebook(name: string, cells: string[]): string {
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" } },
    cells: cells.map((source, i) => ({ cell_type: "code", id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
  };
  const file = path.join(tmp, `${name}.ipynb`);
  fs.writeFileSync(file, JSON.stringify(nb));
  return file;
}

function run(file: string): { status: number | null; out: string } {
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "scripts", "run_notebooks.py"), file], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, TSFAST_NOTEBOOK_OUT: path.join(tmp, "out") },
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("a passing notebook passes", () => {
  const r = run(notebook("good", ["const x: number = 1 + 1;", "if (x !== 2) throw new Error('arithmetic');"]));
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /notebooks: 1 passed, 0 failed/);
});

test("a type error fails the run and shows the compiler's message and the cell", () => {
  const r = run(notebook("typeerr", ["const n: number = 'not a number';"]));
  assert.equal(r.status, 1);
  assert.match(r.out, /FAIL .*typeerr\.ipynb/);
  assert.match(r.out, /const n: number = 'not a number';/);
  assert.match(r.out, /Type 'string' is not assignable to type 'number'/);
  assert.match(r.out, /notebooks: 0 passed, 1 failed/);
});

test("a thrown error fails the run with its message", () => {
  const r = run(notebook("throws", ["console.log('before');", "throw new Error('the lesson broke here');", "console.log('never');"]));
  assert.equal(r.status, 1);
  assert.match(r.out, /the lesson broke here/);
  assert.match(r.out, /--- cell 1 source:/);
});

test("a rejected awaited promise fails the run with its message", () => {
  const r = run(notebook("rejects", ["await Promise.reject(new Error('async failure 42'));"]));
  assert.equal(r.status, 1);
  assert.match(r.out, /async failure 42/);
});
