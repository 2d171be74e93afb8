/**
 * The upload page, driven by headless Chromium: choose a file, drop a file, see the answer.
 * Needs Debian's `chromium` (scripts/setup.sh installs it) and playwright-core.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ready } from "../lib/engine/backend";
import { serve, type ServeHandle } from "../lib/serve/server";
import { colourImage, meanColourPredictor } from "./fixtures/serve/fake-predictor";

process.env["TSFAST_BACKEND"] ??= "cpu";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const EMOJI_DIR = path.join(__dirname, "..", "..", "node_modules", "emoji-datasource-twitter", "img", "twitter", "64");

let h: ServeHandle;
let browser: Browser;
let page: Page;
let tmp: string;

before(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  await ready();
  h = await serve(meanColourPredictor(), { port: 0 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-serve-browser-"));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  // The page must not reach anything but our server.
  await page.route("**/*", (route) => (route.request().url().startsWith(h.url) ? route.continue() : route.abort()));
});

after(async () => {
  await browser?.close();
  await h?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function resultOf(p: Page): Promise<{ state: string; label: string; bars: string[]; error: string }> {
  await p.waitForSelector('#result:is([data-state="done"], [data-state="error"])', { timeout: 15_000 });
  return p.evaluate(() => ({
    state: (document.getElementById("result") as HTMLElement).dataset["state"] ?? "",
    label: document.getElementById("label")!.textContent ?? "",
    bars: Array.from(document.querySelectorAll("#bars .row")).map((r) => (r.textContent ?? "").replace(/\s+/g, " ").trim()),
    error: document.getElementById("error")!.textContent ?? "",
  }));
}

test("choosing a real emoji PNG in the page's file input shows the label the API gives, with bars", async () => {
  const file = path.join(EMOJI_DIR, "1f34e.png"); // red apple
  assert.ok(fs.existsSync(file), `${file} missing: is emoji-datasource-twitter installed?`);
  const api = await (await fetch(`${h.url}predict`, { method: "POST", body: new Uint8Array(fs.readFileSync(file)), headers: { "Content-Type": "image/png" } })).json();
  await page.goto(h.url);
  await page.setInputFiles("#file", file);
  const r = await resultOf(page);
  assert.equal(r.state, "done", r.error);
  assert.equal(r.label, api.label);
  assert.equal(r.bars.length, 3);
  assert.ok(r.bars[0]!.startsWith(api.top[0].label), r.bars[0]);
  assert.ok(r.bars[0]!.endsWith(`${(100 * api.top[0].probability).toFixed(1)}%`), r.bars[0]);
  const width = await page.$eval("#bars .bar", (el) => (el as HTMLElement).style.width);
  assert.ok(Math.abs(parseFloat(width) - 100 * api.top[0].probability) < 0.051, `bar width ${width}`);
  assert.ok(await page.$eval("#preview", (el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth === 64));
});

test("dropping an image on the drop zone predicts it", async () => {
  const green = await colourImage([30, 210, 40], { format: "jpeg", size: 48 });
  await page.goto(h.url);
  const dataTransfer = await page.evaluateHandle((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], "green.jpg", { type: "image/jpeg" }));
    return dt;
  }, Array.from(green));
  await page.dispatchEvent("#drop", "drop", { dataTransfer });
  const r = await resultOf(page);
  assert.equal(r.state, "done", r.error);
  assert.equal(r.label, "green");
});

test("choosing a text file shows the server's 415 error on the page", async () => {
  const txt = path.join(tmp, "notes.txt");
  fs.writeFileSync(txt, "not an image at all\n");
  await page.goto(h.url);
  await page.setInputFiles("#file", txt);
  const r = await resultOf(page);
  assert.equal(r.state, "error");
  assert.match(r.error, /^Error 415: "notes.txt" .* is not an image/);
  assert.equal(r.label, "");
});

test("a text model's page has a text box (not an image drop zone): the typed text is sent as {\"text\": ...} and its label shown", async () => {
  const textModel = {
    vocab: ["neg", "pos"],
    meta: { inferenceSpec: { kind: "text" } },
    predict: async (input: Buffer) => {
      if (typeof input !== "string") throw new Error("a text model takes a string");
      const p = (input as string).includes("great") ? 0.9 : 0.2;
      return { label: p > 0.5 ? "pos" : "neg", index: p > 0.5 ? 1 : 0, probs: [1 - p, p] };
    },
  };
  const ht = await serve(textModel, { port: 0 });
  try {
    const p = await browser.newPage();
    await p.route("**/*", (route) => (route.request().url().startsWith(ht.url) ? route.continue() : route.abort()));
    await p.goto(ht.url);
    assert.equal(await p.$("#file"), null, "no file input");
    await p.fill("#text", "a great film");
    await p.click("#textform button");
    const r = await resultOf(p);
    assert.equal(r.state, "done", r.error);
    assert.equal(r.label, "pos");
    assert.equal(r.bars.length, 2);
    await p.close();
  } finally {
    await ht.close();
  }
});
