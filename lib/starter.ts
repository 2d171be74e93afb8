/**
 * The starter notebook `tsfast init` writes: lesson 1's recipe (notebooks/01_intro.ipynb, its core
 * cells: data → `visionLearner` → `lrFind` → `fineTune` → interpretation), with one `path` line to
 * change. It runs as written on the MNIST digits that ship with tsfast.
 */

interface Cell {
  cell_type: "markdown" | "code";
  id: string;
  metadata: Record<string, never>;
  source: string;
  execution_count?: null;
  outputs?: never[];
}

const md = (id: string, source: string): Cell => ({ cell_type: "markdown", id, metadata: {}, source });
const code = (id: string, source: string): Cell => ({ cell_type: "code", id, metadata: {}, source, execution_count: null, outputs: [] });

/** The starter notebook as nbformat 4 JSON. */
export function starterNotebook(): Record<string, unknown> {
  const cells: Cell[] = [
    md(
      "intro",
      `# Your own images, lesson 1's recipe

An image classifier by transfer learning, as in tsfast's lesson 1: the data, a pretrained network
fine-tuned on it, and where it is wrong. Run it as it is (handwritten digits), then change the
\`path\` line below to your own folder and run it again.`,
    ),
    code(
      "imports",
      `import {
  ready, engineBanner, mnistDigits, ImageDataLoaders, Resize, augTransforms, visionLearner,
  xresnet18, errorRate, ClassificationInterpretation,
} from "tsfast";
await ready();
console.log(engineBanner());`,
    ),
    md(
      "data-md",
      `## The data: a folder of class folders

One folder per class, named by the label, with \`train/\` and \`valid/\` inside or not: without them
tsfast puts a seeded random 20 % of the images in the validation set (\`validPct\` changes that).
Broken files are named in one warning and left out.

> ✏️ **Your images**: on the \`const path\` line, replace \`lessonPath\` with the path of your
> folder, e.g. \`const path = "/home/me/bears";\``,
    ),
    code(
      "path",
      `const lessonPath = await mnistDigits({ perClass: 20, digits: [5, 6, 7, 8, 9] });
const path = lessonPath;
const lessonData = path === lessonPath;`,
    ),
    code(
      "dls",
      `const size = lessonData ? 28 : 64;  // the size each shipped network saw: digits 28 px, colour 64 px
const dls = await ImageDataLoaders.fromFolder(path, {
  itemTfms: Resize(size),
  batchTfms: augTransforms({ size, doFlip: !lessonData, maxRotate: 10, maxWarp: 0.1 }),  // no flips for digits
  bs: 16,
  seed: 42,
});
console.log(\`classes: \${dls.vocab.join(", ")}; \${dls.train.n} training images, \${dls.valid.n} validation images\`);
await dls.showBatch({ maxN: 9 });`,
    ),
    md(
      "learn-md",
      `## A pretrained network, fine-tuned

\`visionLearner\` puts a new head on a pretrained body and freezes it. \`pretrained: "shipped"\` takes
one of the small networks shipped with tsfast, offline: the digits network for grey pictures, the
colour network (emoji and icons) for colour ones; \`lrFind\` plots the loss against the learning rate; \`fineTune\` trains the head,
then everything.`,
    ),
    code(
      "learn",
      `const learn = await visionLearner(dls, xresnet18, { pretrained: "shipped", metrics: errorRate });
const lrs = await learn.lrFind();
console.log(\`valley suggestion: \${lrs.valley?.toExponential(2)}\`);`,
    ),
    code(
      "fit",
      `await learn.fineTune(3, { baseLr: 1e-2 });
const [, error] = await learn.validate();
console.log(\`error rate \${(error * 100).toFixed(1)}%\`);`,
    ),
    md("interp-md", `## Where is the model wrong?`),
    code(
      "interp",
      `const interp = await ClassificationInterpretation.fromLearner(learn);
interp.plotConfusionMatrix();
console.log(interp.mostConfused(3));
await interp.plotTopLosses(9, { nrows: 3 });`,
    ),
  ];
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" },
      language_info: { name: "typescript", file_extension: ".ts" },
    },
    cells,
  };
}
