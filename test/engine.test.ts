import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

// Each case runs in a fresh Node process: the engine is chosen once per process.
const INDEX = path.resolve(__dirname, "..", "lib", "index.js");
function probe(env: Record<string, string>, code: string): { out: string; err: string; status: number | null } {
  const r = spawnSync(process.execPath, ["-e", `const t = require(${JSON.stringify(INDEX)}); ${code}`], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { out: r.stdout, err: r.stderr, status: r.status };
}

test("TSFAST_BACKEND=cpu forces the pure-JS backend and says so", () => {
  const r = probe({ TSFAST_BACKEND: "cpu" }, `t.ready().then(i => console.log(JSON.stringify(i)))`);
  assert.equal(r.status, 0, r.err);
  const info = JSON.parse(r.out);
  assert.equal(info.backend, "cpu");
  assert.equal(info.engine, "cpu");
  assert.match(info.reason, /forced by TSFAST_BACKEND=cpu/);
});

test("an unknown TSFAST_BACKEND is refused with the valid names", () => {
  const r = probe({ TSFAST_BACKEND: "tpu" }, `t.ready().catch(e => { console.log(e.message); })`);
  assert.match(r.out, /TSFAST_BACKEND="tpu" is not a backend; use one of .*wasm.*cpu/);
});

test("forcing an uninstalled backend fails with the reason", () => {
  const r = probe({ TSFAST_BACKEND: "tfjs-node" }, `t.ready().catch(e => { console.log(e.message); })`);
  assert.match(r.out, /TSFAST_BACKEND=tfjs-node was asked for but cannot start: @tensorflow\/tfjs-node is not installed/);
});

test("without a forced backend the ladder explains every skipped rung in the banner", () => {
  const r = probe({ TSFAST_BACKEND: "" }, `t.ready().then(() => console.log(t.engineBanner()))`);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /^tsfast (native|wasm|cpu) engine/);
  assert.match(r.out, /tfjs-node-gpu skipped: /);
  assert.match(r.out, /tfjs-node skipped: /);
});

test("TSFAST_THREADS must be a positive integer", () => {
  const ok = probe({ TSFAST_THREADS: "3" }, `console.log(t.defaultThreads())`);
  assert.equal(ok.out.trim(), "3");
  const bad = probe({ TSFAST_THREADS: "zero" }, `try { t.defaultThreads() } catch (e) { console.log(e.message) }`);
  assert.match(bad.out, /TSFAST_THREADS must be a positive integer, got "zero"/);
});

test("the library's tf namespace includes tfjs-layers and computes", () => {
  const r = probe(
    { TSFAST_BACKEND: "cpu" },
    `t.ready().then(() => { const y = t.tf.layers.dense({ units: 1, useBias: false, kernelInitializer: "ones" }).apply(t.tf.tensor2d([[1, 2, 3]])); console.log(y.dataSync()[0]); })`,
  );
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out.trim(), "6");
});

test("chained tensor methods work like the tfjs umbrella package's", () => {
  const r = probe(
    { TSFAST_BACKEND: "cpu" },
    `t.ready().then(() => { const tf = t.tf; const x = tf.tensor1d([-1, 2, -3, 4]);
      console.log(JSON.stringify([x.reshape([2, 2]).relu().sum().dataSync()[0], x.as2D(2, 2).shape, x.toFloat().dtype,
        x.concat([x]).size, x.abs().max().dataSync()[0]])); })`,
  );
  assert.equal(r.status, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), [6, [2, 2], "float32", 8, 4]);
});

test("a second copy of tfjs-core in the process is named in a warning", () => {
  // Simulate a notebook that imported tfjs from another install by copying tfjs-core elsewhere.
  const r = probe(
    { TSFAST_BACKEND: "cpu" },
    `const fs = require("fs"), os = require("os"), path = require("path");
     const src = path.dirname(require.resolve("@tensorflow/tfjs-core/package.json"));
     const top = fs.mkdtempSync(path.join(os.tmpdir(), "tfcopy-"));
     process.on("exit", () => fs.rmSync(top, { recursive: true, force: true }));
     const dst = top + "/node_modules/@tensorflow/tfjs-core";
     fs.cpSync(src, dst, { recursive: true });
     require(dst + "/dist/tf-core.node.js");
     t.ready().then(() => console.log("copies", t.tfjsCopies().length));`,
  );
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /copies 2/);
  assert.match(r.err, /tsfast: 2 copies of TensorFlow\.js are loaded .*import \{ tf \} from "tsfast"/);
});

// tf is usable the moment tsfast is imported: the ladder runs on import, so the first op,
// tf.ready() and ready() agree on the engine (issue 17).
const FIRST_OPS = `const tf = t.tf;
  const before = tf.getBackend();
  const y = tf.tensor1d([1, 2, 3]).square().sum().dataSync()[0];
  tf.ready().then(() => { const afterTf = tf.getBackend(); return t.ready().then((info) =>
    console.log(JSON.stringify({ before, y, afterTf, ready: info.backend, now: tf.getBackend() }))); });`;

test("tf ops run first thing after import, on the engine ready() then reports", () => {
  const r = probe({ TSFAST_BACKEND: "" }, FIRST_OPS);
  assert.equal(r.status, 0, r.err);
  const o = JSON.parse(r.out);
  assert.equal(o.y, 14);
  assert.ok(["native", "cpu", "tensorflow"].includes(o.before), `a synchronous engine was chosen on import: ${o.before}`);
  assert.deepEqual([o.afterTf, o.ready, o.now], [o.before, o.before, o.before]);
});

test("tf ops before ready() run on a forced synchronous engine (cpu)", () => {
  const r = probe({ TSFAST_BACKEND: "cpu" }, FIRST_OPS);
  assert.equal(r.status, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), { before: "cpu", y: 14, afterTf: "cpu", ready: "cpu", now: "cpu" });
  assert.doesNotMatch(r.err, /Hi there|tfjs-node/, "the cpu backend's greeting is silenced");
});

test("with wasm (which starts asynchronously), tf.ready() and ready() both wait for it", () => {
  const r = probe(
    { TSFAST_BACKEND: "wasm" },
    `t.tf.ready().then(() => { const b = t.tf.getBackend(); const y = t.tf.tensor1d([3, 4]).square().sum().dataSync()[0];
       return t.ready().then((info) => console.log(JSON.stringify([b, y, info.backend]))); });`,
  );
  assert.equal(r.status, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), ["wasm", 25, "wasm"]);
});
