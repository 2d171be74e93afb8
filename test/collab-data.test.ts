/** CollabDataLoaders: Categorify'd users and items, the seeded split, fastai's batch layout, and errors that name the bad input. */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { CollabDataLoaders, encodeCollabRows } from "../lib/collab/data";
import { frameFromRows } from "../lib/tabular/frame";
import { RandomSplitter } from "../lib/data/items";
import { tempDir } from "./helpers/tmp";
import { ready } from "../lib/engine/backend";

before(ready);

const CSV = "user,movie,stars,when\n10,Heat,4,1\n7,Alien,5,2\n10,Alien,3.5,3\n3,Heat,2,4\n7,Brazil,1,5\n";

test("fromCsv: vocabularies from the training rows (#na# at 0, numbers sorted numerically), batches int32 [bs, 2] + float32 [bs, 1]", async () => {
  const dir = tempDir("tsfast-collab-");
  const file = path.join(dir, "ratings.csv");
  fs.writeFileSync(file, CSV);
  const dls = CollabDataLoaders.fromCsv(file, { validPct: 0.2, seed: 1, bs: 8 });
  // the split is RandomSplitter's: one row of five held out
  const [trn, val] = RandomSplitter(0.2, 1)([0, 1, 2, 3, 4]);
  assert.equal(val.length, 1);
  const users = [10, 7, 10, 3, 7];
  const movies = ["Heat", "Alien", "Alien", "Heat", "Brazil"];
  const stars = [4, 5, 3.5, 2, 1];
  const trainUsers = [...new Set(trn.map((i) => users[i]!))].sort((a, b) => a - b);
  const trainMovies = [...new Set(trn.map((i) => movies[i]!))].sort();
  assert.deepEqual(dls.users.items, ["#na#", ...trainUsers]);
  assert.deepEqual(dls.items.items, ["#na#", ...trainMovies]);
  assert.equal(dls.userName, "user");
  assert.equal(dls.itemName, "movie");
  assert.equal(dls.ratingName, "stars");
  assert.equal(dls.path, dir);
  // validation batch, in order: indices by hand (0 when the training rows never saw it)
  for await (const { xb, yb } of dls.valid) {
    assert.equal(xb.dtype, "int32");
    assert.deepEqual(xb.shape, [1, 2]);
    assert.deepEqual(yb.shape, [1, 1]);
    const v = val[0]!;
    const ui = trainUsers.indexOf(users[v]!) + 1;
    const mi = trainMovies.indexOf(movies[v]!) + 1;
    assert.deepEqual(Array.from(xb.dataSync()), [ui, mi]);
    assert.deepEqual(Array.from(yb.dataSync()), [stars[v]]);
    xb.dispose();
    yb.dispose();
  }
  const rows = await dls.batchRows({ maxN: 10 });
  assert.equal(rows.length, 4);
  const seen = rows.map((r) => `${r.user}|${r.item}|${r.rating}`).sort();
  assert.deepEqual(seen, trn.map((i) => `${users[i]}|${movies[i]}|${stars[i]}`).sort());
});

test("fromDf: the user, item and rating columns by name; the defaults are the first three columns", async () => {
  const df = frameFromRows([
    { title: "B", uid: "u2", r: 1, extra: 0 },
    { title: "A", uid: "u1", r: 2, extra: 0 },
    { title: "A", uid: "u2", r: 3, extra: 0 },
  ]);
  const dls = CollabDataLoaders.fromDf(df, { userName: "uid", itemName: "title", ratingName: "r", validPct: 0 });
  assert.deepEqual(dls.users.items, ["#na#", "u1", "u2"]);
  assert.deepEqual(dls.items.items, ["#na#", "A", "B"]);
  assert.deepEqual(dls.classes, { uid: ["#na#", "u1", "u2"], title: ["#na#", "A", "B"] });
  const d = CollabDataLoaders.fromDf(df, { validPct: 0 });
  assert.equal(d.userName, "title");
  assert.equal(d.itemName, "uid");
  assert.equal(d.ratingName, "r");
});

test("a missing column or a non-numeric rating is an error that names it", () => {
  const dir = tempDir("tsfast-collab-bad-");
  const file = path.join(dir, "ratings.csv");
  fs.writeFileSync(file, CSV);
  assert.throws(() => CollabDataLoaders.fromCsv(file, { itemName: "title" }), /item column: no column "title" in the table; its columns are: user, movie, stars, when/);
  fs.writeFileSync(file, "user,movie,stars\n1,Heat,4\n2,Heat,4.5\n3,Alien,five\n");
  assert.throws(() => CollabDataLoaders.fromCsv(file), (e: Error) => /rating column "stars"/.test(e.message) && /ratings\.csv/.test(e.message) && /data row 3 holds "five"/.test(e.message));
  fs.writeFileSync(file, "user,movie,stars\n1,Heat,4\n2,Heat,NA\n");
  assert.throws(() => CollabDataLoaders.fromCsv(file), /data row 2 holds a missing value/);
  fs.writeFileSync(file, "user,movie\n1,Heat\n");
  assert.throws(() => CollabDataLoaders.fromCsv(file), /has 2 column\(s\) \(user, movie\); it needs a user, an item and a rating column/);
});

test("encodeCollabRows: known users and items become their indices; unknown ones are errors naming them", () => {
  const df = frameFromRows([
    { u: 5, i: "x", r: 1 },
    { u: 9, i: "y", r: 2 },
  ]);
  const dls = CollabDataLoaders.fromDf(df, { validPct: 0 });
  const x = dls.encode([{ user: 9, item: "x" }, { user: "5", item: "y" }]);
  assert.deepEqual(Array.from(x.dataSync()), [2, 1, 1, 2]);
  x.dispose();
  const spec = dls.inferenceSpec();
  assert.throws(() => encodeCollabRows(spec, [{ user: 6, item: "x" }]), /unknown user 6: not among the 2 values of "u"/);
  assert.throws(() => encodeCollabRows(spec, [{ user: 5, item: "zz" }]), /unknown item "zz": not among the 2 values of "i"/);
  assert.throws(() => encodeCollabRows(spec, [{ user: "#na#", item: "x" }]), /unknown user "#na#"/);
  assert.throws(() => encodeCollabRows(spec, ["x.png"]), /takes \{ user, item \}/);
});
