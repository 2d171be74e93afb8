import { test } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
process.env["TSFAST_BACKEND"] = "cpu";
import { tf, ready, figureToSvg, plotBundle, tensorToPng, imageGridBundle, newLiveDisplay, inKernel } from "../lib/index";

test("outside a kernel, inKernel() is false", () => {
  assert.equal(inKernel(), false);
});

test("a plot bundle carries interactive HTML, an SVG fallback inside it, the SVG itself and text", () => {
  const b = plotBundle({ data: [{ y: [3, 2, 1], mode: "lines", name: "loss" }], layout: { title: "Loss" } });
  assert.ok(b["text/html"]!.includes("Plotly.newPlot"));
  assert.ok(b["text/html"]!.includes("<svg"), "the fallback SVG is inside the HTML for viewers that strip scripts");
  assert.ok(b["image/svg+xml"]!.startsWith("<svg"));
  assert.equal(b["text/plain"], "[plot] Loss: loss(3)");
  // plotly.js 3 needs { text } titles
  assert.ok(b["text/html"]!.includes('"title":{"text":"Loss"}'));
});

test("the SVG fallback draws a line through the points on a log axis", () => {
  const svg = figureToSvg(
    { data: [{ x: [1, 10, 100], y: [1, 2, 3], mode: "lines" }], layout: { xaxis: { type: "log" } } },
    200,
    100,
  );
  // plot box: left 60, width 120; log10 x = 0,1,2 maps to 60, 120, 180
  const d = /<path d="([^"]+)"/.exec(svg)![1]!;
  const xs = d.split(/[ML]/).filter(Boolean).map((p) => Number(p.split(",")[0]));
  assert.deepEqual(xs, [60, 120, 180]);
});

test("the SVG fallback writes heatmap cell text", () => {
  const svg = figureToSvg({ data: [{ type: "heatmap", z: [[5, 1], [0, 7]], text: [["5", "1"], ["0", "7"]], x: ["a", "b"], y: ["a", "b"] }] });
  for (const v of ["5", "1", "0", "7"]) assert.ok(svg.includes(`>${v}</text>`));
  assert.equal((svg.match(/<rect /g) ?? []).length, 4);
});

test("tensorToPng round-trips pixel values for float [0,1] and int [0,255] tensors", async () => {
  await ready();
  const f = tf.tensor3d([0, 0.5, 1, 1, 0, 0.25], [1, 2, 3]);
  const png = await tensorToPng(f);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [2, 1, 3]);
  assert.deepEqual(Array.from(data), [0, 128, 255, 255, 0, 64]);
  const i = tf.tensor3d([10, 20, 30], [1, 1, 3], "int32");
  const raw = await sharp(await tensorToPng(i)).raw().toBuffer();
  assert.deepEqual(Array.from(raw), [10, 20, 30]);
  f.dispose();
  i.dispose();
});

test("an image grid bundle has one captioned image per item and a montage of the right size", async () => {
  await ready();
  const img = tf.zeros([4, 4, 3]) as tf.Tensor3D;
  const b = await imageGridBundle(
    [{ image: img, title: "cat" }, { image: img, title: "dog", color: "red" }, { image: img }],
    { ncols: 2, size: 10 },
  );
  assert.equal((b["text/html"]!.match(/<img /g) ?? []).length, 3);
  assert.ok(b["text/html"]!.includes("color:red"));
  const meta = await sharp(Buffer.from(b["image/png"]!, "base64")).metadata();
  assert.deepEqual([meta.width, meta.height], [20, 20]);
  img.dispose();
});

test("a live display in a terminal prints only when its text changes", () => {
  const lines: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  (process.stdout as unknown as { write: (s: string) => boolean }).write = (s: string) => (lines.push(s), true);
  try {
    const d = newLiveDisplay();
    d.update({ "text/plain": "epoch 1" });
    d.update({ "text/plain": "epoch 1" });
    d.update({ "text/plain": "epoch 2" });
  } finally {
    (process.stdout as unknown as { write: typeof orig }).write = orig;
  }
  assert.deepEqual(lines, ["epoch 1\n", "epoch 2\n"]);
});

test("the SVG fallback draws side-by-side subplots in their own panels and scales", () => {
  const svg = figureToSvg(
    {
      data: [
        { x: [0, 1], y: [0, 1e-3], mode: "lines", xaxis: "x", yaxis: "y" },
        { x: [0, 1], y: [0.95, 0.85], mode: "lines", xaxis: "x2", yaxis: "y2" },
      ],
      layout: { xaxis: { domain: [0, 0.5] }, xaxis2: { domain: [0.5, 1] }, yaxis2: {} },
    },
    260,
    100,
  );
  // plot box: left 60, width 180 → panels at 60 (width 90) and 150 (width 90)
  const frames = [...svg.matchAll(/<rect x="([\d.]+)" y="40" width="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.deepEqual(frames, [[60, 90], [150, 90]]);
  // each line spans its own panel's full height (its own y scale), not a shared one
  const paths = [...svg.matchAll(/<path d="M([\d.]+),([\d.]+)L([\d.]+),([\d.]+)"/g)].map((m) => m.slice(1).map(Number));
  assert.deepEqual(paths.map((p) => [p[0], p[2]]), [[60, 150], [150, 240]]);
  assert.deepEqual(paths.map((p) => [p[1], p[3]]), [[50, 40], [40, 50]]);
});
