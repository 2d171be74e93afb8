// `npm run bench` times tsfast and PyTorch in turns (bench/alternate.ts): the order of the turns, each side's
// median, a side that fails, and the line protocol of the reference servers.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { alternate, LineServer, median, type Side } from "../bench/alternate";

/** A side that answers the seconds it is given, in turn, and records how many units each call asked for. */
function scripted(seconds: number[], calls: number[]): Side {
  let i = 0;
  return (n) => {
    calls.push(n);
    return Promise.resolve(Array.from({ length: n }, () => seconds[i++ % seconds.length]!));
  };
}

test("median: the middle value, the mean of the two middle ones for an even count", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5]), 5);
});

test("alternate swaps the order every round, skips the warm-up in the medians", async () => {
  const callsA: number[] = [];
  const callsB: number[] = [];
  // the warm-up units (9 s) must not reach the medians
  const a = scripted([9, 9, 1, 5, 2, 4], callsA);
  const b = scripted([9, 9, 10, 30, 20, 40], callsB);
  const r = await alternate({ a, b }, 4, 2, 0);
  assert.deepEqual(r.order, ["a", "b", "b", "a", "a", "b", "b", "a"]);
  assert.deepEqual(callsA, [2, 1, 1, 1, 1]);
  assert.deepEqual(callsB, [2, 1, 1, 1, 1]);
  // a: 1 5 2 4 -> sorted 1 2 4 5 -> (2 + 4) / 2; b: 10 30 20 40 -> (20 + 30) / 2
  assert.deepEqual(r.median, { a: 3, b: 25 });
  assert.equal(r.note, undefined);
});

test("alternate with three sides reverses them in odd rounds", async () => {
  const s = (v: number): Side => (n) => Promise.resolve(Array.from({ length: n }, () => v));
  const r = await alternate({ x: s(1), y: s(2), z: s(3) }, 3, 0, 0);
  assert.deepEqual(r.order, ["x", "y", "z", "z", "y", "x", "x", "y", "z"]);
  assert.deepEqual(r.median, { x: 1, y: 2, z: 3 });
});

test("the pause before each unit is not timed", async () => {
  // each side reports the wall time since its previous call ended: the pause only
  let last = process.hrtime.bigint();
  const gap: Side = (n) => {
    const ms = Number(process.hrtime.bigint() - last) / 1e6;
    last = process.hrtime.bigint();
    return Promise.resolve(Array.from({ length: n }, () => ms));
  };
  const mark: Side = (n) => {
    last = process.hrtime.bigint();
    return Promise.resolve(Array.from({ length: n }, () => 1));
  };
  const r = await alternate({ gap, mark }, 4, 0, 40);
  assert.ok(r.median.gap! >= 35, `a unit runs after the pause: ${r.median.gap} ms since the other side`);
  assert.equal(r.median.mark, 1);
});

test("a side that fails is dropped and named; the other goes on", async () => {
  let n = 0;
  const flaky: Side = () => (++n === 3 ? Promise.reject(new Error("reference crashed\nstack")) : Promise.resolve([1]));
  const steady: Side = (k) => Promise.resolve(Array.from({ length: k }, () => 2));
  const r = await alternate({ ours: steady, theirs: flaky }, 4, 1, 0);
  // theirs: warm-up (call 1), round 0 (call 2), round 1 fails (call 3), then skipped
  assert.deepEqual(r.order, ["ours", "theirs", "ours", "ours", "ours"]);
  assert.deepEqual(r.median, { ours: 2 });
  assert.equal(r.note, "theirs: reference crashed");
});

function server(body: string): { file: string; done: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-alternate-"));
  const file = path.join(dir, "server.js");
  fs.writeFileSync(file, body);
  return { file, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// a server as bench/torch_ref.py --serve answers: "train N" -> N times; anything else -> an error field
const ECHO = `
const rl = require("node:readline").createInterface({ input: process.stdin });
let k = 0;
rl.on("line", (l) => {
  const [cmd, n] = l.split(" ");
  if (cmd === "train") {
    console.log("a report line, not an answer");
    console.log(JSON.stringify({ epoch: 1, loss: 2.3 })); // JSON, but no answer either
    console.log(JSON.stringify({ times: Array.from({ length: Number(n) }, () => 0.5 + k++) }));
  } else if (cmd === "short") console.log(JSON.stringify({ times: [1] }));
  else if (cmd === "die") process.exit(3);
  else if (cmd === "last") {
    console.log(JSON.stringify({ times: [9] }));
    process.exit(0);
  } else if (cmd === "hang") {}
  else console.log(JSON.stringify({ error: "unknown command " + l }));
});`;

test("LineServer: answers, errors, a short answer, and a server that exits", async () => {
  const { file, done } = server(ECHO);
  const log = console.log;
  const printed: string[] = [];
  console.log = (...a: unknown[]) => void printed.push(a.join(" "));
  const srv = new LineServer("ref", process.execPath, [file]);
  try {
    assert.deepEqual(await srv.times("train", 3), [0.5, 1.5, 2.5]);
    assert.deepEqual(await srv.times("train", 1), [3.5]);
    await assert.rejects(srv.ask("fly 2"), /ref: unknown command fly 2/);
    await assert.rejects(srv.ask("die 1"), /ref exited with code 3/);
    await assert.rejects(srv.times("train", 1), /ref exited with code 3/);
  } finally {
    console.log = log;
    srv.close();
  }
  const other = JSON.stringify({ epoch: 1, loss: 2.3 });
  assert.deepEqual(printed, ["  ref: a report line, not an answer", `  ref: ${other}`, "  ref: a report line, not an answer", `  ref: ${other}`]);
  // an answer out of protocol kills the server: later answers could not be matched to their commands
  const short = new LineServer("ref", process.execPath, [file]);
  await assert.rejects(short.times("short", 2), /without 2 times/);
  await assert.rejects(short.times("train", 1), /ref answered 'short 2' without 2 times/);
  short.close();
  // the answer a server prints just before it exits still arrives
  const last = new LineServer("ref", process.execPath, [file]);
  assert.deepEqual(await last.times("last", 1), [9]);
  last.close();
  // a server that never answers is killed after its timeout, and stays dead
  const hung = new LineServer("ref", process.execPath, [file], { timeoutMs: 300 });
  await assert.rejects(hung.times("hang", 1), /ref gave no answer to 'hang 1' in 0.3 s/);
  await assert.rejects(hung.times("train", 1), /ref gave no answer/);
  hung.close();
  // a closed server refuses commands
  const closed = new LineServer("ref", process.execPath, ["-e", "process.stdin.resume()"]);
  closed.close();
  await assert.rejects(closed.times("train", 1), /ref was closed/);
  done();
});

test("LineServer: a command that cannot start is an error, not a hang", async () => {
  const srv = new LineServer("missing", "/nonexistent/python3", []);
  await assert.rejects(srv.times("train", 1), /missing (could not start|exited)/);
  srv.close();
});
