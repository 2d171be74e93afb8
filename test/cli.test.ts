import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ready } from "../lib/engine/backend";
import { main, type CliIo } from "../lib/cli";
import { setPredictorLoader } from "../lib/serve/predictor";
import { colourImage, meanColourPredictor } from "./fixtures/serve/fake-predictor";

process.env["TSFAST_BACKEND"] ??= "cpu";

const CLI = path.join(__dirname, "..", "lib", "cli.js");
let tmp: string;
let exportDir: string;
let disposed = 0;

before(async () => {
  await ready();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-cli-"));
  exportDir = path.join(tmp, "export");
  fs.mkdirSync(exportDir);
  fs.writeFileSync(path.join(tmp, "red.png"), await colourImage([230, 20, 20]));
  fs.writeFileSync(path.join(tmp, "blue.jpg"), await colourImage([20, 20, 230], { format: "jpeg" }));
  fs.writeFileSync(path.join(tmp, "notes.txt"), "hello\n");
  fs.writeFileSync(path.join(tmp, "cut.jpg"), (await colourImage([20, 20, 230], { format: "jpeg", size: 64 })).subarray(0, 300));
  setPredictorLoader(async () => ({ ...meanColourPredictor(), dispose: () => void disposed++ }));
});

after(() => {
  setPredictorLoader(undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (s) => stdout.push(s), err: (s) => stderr.push(s) };
}

const f = (name: string): string => path.join(tmp, name);

test("predict prints one tab-separated line per image: file, label, probability", async () => {
  const io = capture();
  const code = await main(["predict", exportDir, f("red.png"), f("blue.jpg")], io);
  assert.equal(code, 0, io.stderr.join("\n"));
  assert.equal(io.stdout.length, 2);
  const rows = io.stdout.map((l) => l.split("\t"));
  assert.deepEqual(rows.map((r) => [r[0], r[1]]), [
    [f("red.png"), "red"],
    [f("blue.jpg"), "blue"],
  ]);
  // by hand: the fake model is softmax(10 · mean RGB/255); red.png is (230, 20, 20) plus noise that
  // averages out (its offsets cycle through −8..8), so p(red) = 1/(1 + 2·e^(−10·210/255)) = 0.99947
  assert.equal(rows[0]![2], "0.9995");
});

test("predict --json prints a JSON array with the top-k classes of each image", async () => {
  const io = capture();
  const code = await main(["predict", exportDir, f("red.png"), f("blue.jpg"), "--json", "--topk", "2"], io);
  assert.equal(code, 0);
  const out = JSON.parse(io.stdout.join("\n"));
  assert.equal(out.length, 2);
  assert.equal(out[0].file, f("red.png"));
  assert.equal(out[0].label, "red");
  assert.equal(out[0].index, 0);
  assert.equal(out[0].top.length, 2);
  assert.equal(out[0].top[0].label, "red");
  assert.equal(out[1].label, "blue");
});

test("predict exits 1 naming each unreadable image and still predicts the others", async () => {
  const before = disposed;
  const io = capture();
  const code = await main(["predict", exportDir, f("missing.png"), f("notes.txt"), f("cut.jpg"), f("red.png")], io);
  assert.equal(code, 1);
  assert.equal(io.stdout.length, 1);
  assert.match(io.stdout[0]!, /red\.png\tred\t/);
  assert.equal(io.stderr.length, 3);
  assert.match(io.stderr[0]!, /missing\.png: no such file/);
  assert.match(io.stderr[1]!, /notes\.txt.*is not an image/);
  assert.match(io.stderr[2]!, /cut\.jpg.*cannot be decoded \(truncated or corrupt\)/);
  assert.equal(disposed, before + 1); // the model is freed when predict is done
  const json = capture();
  assert.equal(await main(["predict", exportDir, f("missing.png"), "--json"], json), 1);
  assert.match(JSON.parse(json.stdout.join(""))[0].error, /no such file/);
});

test("bad usage exits 2 with the usage text", async () => {
  for (const argv of [[], ["frobnicate"], ["init"], ["init", "a", "b"], ["run"], ["jupyter", "a", "b"], ["predict", exportDir], ["serve"], ["serve", exportDir, "--port", "http"], ["predict", exportDir, "x.png", "--nope"]]) {
    const io = capture();
    assert.equal(await main(argv, io), 2, argv.join(" "));
    assert.match(io.stdout.concat(io.stderr).join("\n"), /Usage:\n  tsfast init <folder>[\s\S]*\n  tsfast serve <exportDir>/, argv.join(" "));
  }
  const io = capture();
  assert.equal(await main(["serve", exportDir, "--port=-3"], io), 2);
  assert.match(io.stderr[0]!, /--port must be an integer ≥ 0, got "-3"/);
});

test("serve listens, answers predictions, and stops on SIGINT", async () => {
  const io = capture();
  const done = main(["serve", exportDir, "--port", "0", "--max-bytes", "1000"], io);
  const deadline = Date.now() + 10_000;
  let url: string | undefined;
  while (!url && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    url = io.stdout.map((l) => /at (http:\/\/\S+)/.exec(l)?.[1]).find(Boolean);
  }
  assert.ok(url, io.stdout.concat(io.stderr).join("\n"));
  const res = await fetch(`${url}predict`, { method: "POST", body: new Uint8Array(fs.readFileSync(f("red.png"))), headers: { "Content-Type": "image/png" } });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).label, "red");
  const info = await (await fetch(`${url}info`)).json();
  assert.equal(info.limits.maxBytes, 1000);
  const big = await fetch(`${url}predict`, { method: "POST", body: new Uint8Array(2000), headers: { "Content-Type": "image/png" } });
  assert.equal(big.status, 413);
  const before = disposed;
  process.emit("SIGINT");
  assert.equal(await done, 0);
  assert.equal(disposed, before + 1);
  assert.ok(io.stdout.some((l) => /POST \/predict 200/.test(l)), "requests are logged");
});

test("the built bin runs under node with a shebang and fails clearly on a missing export folder", () => {
  assert.ok(fs.readFileSync(CLI, "utf8").startsWith("#!/usr/bin/env node\n"));
  const r = spawnSync(process.execPath, [CLI, "predict", path.join(tmp, "no-such-export"), f("red.png")], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /export folder ".*no-such-export" does not exist/);
  const help = spawnSync(process.execPath, [CLI, "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /tsfast predict <exportDir> <image\.\.\.>/);
  const version = spawnSync(process.execPath, [CLI, "--version"], { encoding: "utf8" });
  assert.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")).version);
});
