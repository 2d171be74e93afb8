import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

// Issue 22: a lesson copied to any folder runs there, so its cells import only from `tsfast` and
// Node's built-ins (`node:`), never a package that only the checkout's node_modules holds.
const NOTEBOOKS = path.resolve(__dirname, "..", "..", "notebooks");

/** Every module a cell names in `import ... from "m"`, `import "m"`, `require("m")` or `import("m")`. */
function importedModules(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\b(?:require|import)\s*\(\s*["']([^"']+)["']\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

test("importedModules finds every way a cell names a module", () => {
  const cell = `import { a } from "tsfast";\nimport * as os from 'node:os';\nimport "x-side";\nconst b = require("ml-cart");\nconst c = await import("y");`;
  assert.deepEqual(importedModules(cell).sort(), ["ml-cart", "node:os", "tsfast", "x-side", "y"]);
});

test("every lesson cell imports only from tsfast and node: built-ins", () => {
  const lessons = [NOTEBOOKS, path.join(NOTEBOOKS, "wip")]
    .filter((d) => fs.existsSync(d))
    .flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith(".ipynb")).map((f) => path.join(d, f)));
  assert.ok(lessons.length >= 10, `${lessons.length} lessons found`);
  const offending: string[] = [];
  for (const file of lessons) {
    const nb = JSON.parse(fs.readFileSync(file, "utf8")) as { cells: { cell_type: string; source: string | string[] }[] };
    for (const [i, cell] of nb.cells.entries()) {
      if (cell.cell_type !== "code") continue;
      const src = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
      for (const m of importedModules(src)) if (m !== "tsfast" && !m.startsWith("node:")) offending.push(`${path.basename(file)} cell ${i}: "${m}"`);
    }
  }
  assert.deepEqual(offending, [], "import these through tsfast (or node:) instead");
});
