/**
 * Render check: open each executed notebook's HTML (out/notebooks/*.html) in headless Chromium,
 * count the plotly charts that actually drew and the images that decoded, save a full-page
 * screenshot to out/screenshots/, and fail a notebook if any chart it emitted did not draw.
 *
 *   node dist/scripts/render-check.js [out/notebooks/x.html ...]
 *
 * Ends with `render: N passed, N failed`; exits 1 on any failure.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium } from "playwright-core";

const ROOT = path.resolve(__dirname, "..", "..");
const HTML_DIR = path.join(ROOT, "out", "notebooks");
const SHOTS = path.join(ROOT, "out", "screenshots");
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";

interface PageCounts {
  charts: number;
  drawn: number;
  images: number;
  brokenImages: number;
}

async function main(): Promise<number> {
  const files = process.argv.slice(2).length
    ? process.argv.slice(2).map((f) => path.resolve(f))
    : fs.existsSync(HTML_DIR)
      ? fs.readdirSync(HTML_DIR).filter((f) => f.endsWith(".html")).sort().map((f) => path.join(HTML_DIR, f))
      : [];
  if (files.length === 0) {
    console.log(`render: no executed notebooks in ${HTML_DIR} (run \`npm run notebooks\` first)`);
    console.log("render: 0 passed, 1 failed");
    return 1;
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`render: Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
    console.log(`render: 0 passed, ${files.length} failed`);
    return 1;
  }
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  let passed = 0;
  let failed = 0;
  try {
    for (const file of files) {
      const name = path.basename(file, ".html");
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`file://${file}`, { waitUntil: "load", timeout: 60_000 });
      // Charts draw asynchronously once plotly has loaded; give them up to 20 s.
      const counts = async (): Promise<PageCounts> =>
        page.evaluate(() => {
          const charts = document.querySelectorAll(".tsfast-plot").length;
          const drawn = document.querySelectorAll(".tsfast-plot .js-plotly-plot .main-svg").length > 0
            ? Array.from(document.querySelectorAll(".tsfast-plot")).filter((c) => c.querySelector(".js-plotly-plot .main-svg")).length
            : 0;
          const imgs = Array.from(document.querySelectorAll(".output_area img, .jp-OutputArea img, .output img")) as HTMLImageElement[];
          return {
            charts,
            drawn,
            images: imgs.length,
            brokenImages: imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).length,
          };
        });
      let c = await counts();
      for (let waited = 0; c.drawn < c.charts && waited < 20_000; waited += 250) {
        await page.waitForTimeout(250);
        c = await counts();
      }
      const shot = path.join(SHOTS, `${name}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      await page.close();
      const ok = c.drawn === c.charts && c.brokenImages === 0;
      const line = `${c.drawn}/${c.charts} charts drew, ${c.images - c.brokenImages}/${c.images} images shown; screenshot ${path.relative(ROOT, shot)}`;
      if (ok) {
        passed++;
        console.log(`ok   ${name}: ${line}`);
      } else {
        failed++;
        console.log(`FAIL ${name}: ${line}`);
        for (const e of errors.slice(0, 5)) console.log(`     page error: ${e}`);
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`render: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    console.log("render: 0 passed, 1 failed");
    process.exit(1);
  },
);
