// `npm run bench` runs issue 19's data, e2e and depthwise scripts as children (bench/script-rows.ts):
// their result line is read, their report passed through, and every way a child can go wrong becomes a
// note in its row instead of ending the bench.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runScript } from "../bench/script-rows";

function script(body: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-script-rows-"));
  const file = path.join(dir, "child.js");
  fs.writeFileSync(file, body);
  return file;
}

/** runScript's result, with what it printed. */
interface Res { bench: string; n: number; args?: string[] }

function run(body: string, args: string[] = []): { out: { r?: Res; note?: string }; printed: string[] } {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void printed.push(a.join(" "));
  const file = script(body);
  try {
    return { out: runScript<Res>(file, args), printed };
  } finally {
    console.log = log;
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

test("runScript reads the last result line and passes the report through, indented", () => {
  const { out, printed } = run(
    `console.log("report line");
     console.log(JSON.stringify({ bench: "x", n: 1 }));
     console.log("{ not a result: a report line that starts with a brace }");
     console.log(JSON.stringify({ bench: "x", n: 2, args: process.argv.slice(2) }));`,
    ["--n", "7"],
  );
  assert.deepEqual(out, { r: { bench: "x", n: 2, args: ["--n", "7"] } });
  assert.deepEqual(printed, ["  report line", "  { not a result: a report line that starts with a brace }"]);
});

test("runScript turns a failing, silent or garbled child into a note naming the script", () => {
  const failed = run(`console.log(JSON.stringify({ bench: "x", n: 1 })); process.exit(3);`).out;
  assert.equal(failed.r, undefined);
  assert.match(failed.note!, /child\.js failed \(exit 3\)/);

  const killed = run(`process.kill(process.pid, "SIGKILL");`).out;
  assert.match(killed.note!, /child\.js failed \(killed by SIGKILL\)/);

  const silent = run(`console.log("only a report");`).out;
  assert.equal(silent.r, undefined);
  assert.match(silent.note!, /child\.js printed no result line$/);

  const garbled = run(`console.log('{"bench":"x", broken');`).out;
  assert.equal(garbled.r, undefined);
  assert.match(garbled.note!, /child\.js printed a result line that is not JSON/);
});
