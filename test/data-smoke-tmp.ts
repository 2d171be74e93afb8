process.env.TSFAST_BACKEND = "cpu";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "../lib/engine/tf";
import { ImageDataLoaders } from "../lib/data/factories";
import { Resize } from "../lib/data/transforms";
import { augTransforms, Normalize, imagenetStats } from "../lib/data/augment";
(async () => {
  const src = "node_modules/emoji-datasource-twitter/img/twitter/64";
  const files = fs.readdirSync(src).slice(0, 40);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "smk-"));
  for (const [k, f] of files.entries()) {
    const split = k % 5 === 0 ? "valid" : "train";
    const cls = k % 2 ? "a" : "b";
    fs.mkdirSync(path.join(dir, split, cls), { recursive: true });
    await sharp(path.join(src, f)).resize(300, 200).jpeg().toFile(path.join(dir, split, cls, f.replace(".png", ".jpg")));
  }
  const dls = await ImageDataLoaders.fromFolder(dir, { itemTfms: Resize(128), batchTfms: [...augTransforms({ size: 64, minScale: 0.75 }), Normalize.fromStats(...imagenetStats)], bs: 8 });
  console.log(dls.vocab, dls.train.n, dls.valid.n, dls.train.length, dls.valid.length);
  await (await import("../lib/engine/backend")).ready(); const before = tf.memory().numTensors;
  for await (const b of dls.train) { console.log(b.xb.shape, b.yb.shape, b.yb.dtype, (await tf.mean(b.xb).data())[0]); b.xb.dispose(); b.yb.dispose(); }
  for await (const b of dls.valid) { console.log("v", b.xb.shape, await b.yb.data()); b.xb.dispose(); b.yb.dispose(); }
  console.log(tf.memory().numTensors - before, JSON.stringify(dls.inferenceSpec()));
})();
