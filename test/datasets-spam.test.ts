import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { emailCorpus, emailText, spamAssassin, spamPart, SPAM_GROUPS, SPAM_PACKAGE } from "../lib/data/datasets/spam";
import { readCsv, column } from "../lib/tabular/frame";
import { tempDir } from "./helpers/tmp";

/** A raw e-mail: headers, a blank line, the body. */
const mail = (headers: string[], body: string) => [...headers, "", body].join("\r\n");

test("emailText: subject and body, headers left out; quoted-printable, base64, charsets and HTML-only bodies decoded", async () => {
  const plain = mail(["From: a@b.org", "X-Spam-Status: No, hits=-3.1", "Subject: Re: lunch"], "See you at noon.\r\n");
  assert.equal(await emailText(plain), "Re: lunch\n\nSee you at noon.");

  const qp = mail(["Subject: =?utf-8?q?Caf=C3=A9?=", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"], "na=C3=AFve =\r\nsoft break");
  assert.equal(await emailText(qp), "Café\n\nnaïve soft break");

  const latin1 = mail(["Subject: x", "Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: base64"], Buffer.from([0x64, 0xe9, 0x6a, 0xe0]).toString("base64"));
  assert.equal(await emailText(latin1), "x\n\ndéjà");

  const html = mail(
    ["Subject: WIN NOW", "Content-Type: text/html"],
    `<html><body><p>Click <a href="http://x.example/">here</a> &amp; win</p><img src="y.gif"><p>today</p></body></html>`,
  );
  assert.equal(await emailText(html), "WIN NOW\n\nClick here & win\n\ntoday");

  const multipart = mail(
    ["Subject: both", 'Content-Type: multipart/alternative; boundary="zz"'],
    ["--zz", "Content-Type: text/plain", "", "the plain part", "--zz", "Content-Type: text/html", "", "<p>the html part</p>", "--zz--"].join("\r\n"),
  );
  assert.equal(await emailText(multipart), "both\n\nthe plain part", "the plain part wins over the HTML one");
  assert.equal(await emailText(mail(["From: a@b.org"], "")), "");
  assert.equal(await emailText(mail(["Subject: only a subject"], "")), "only a subject");
});

test("emailText reads the real corpus: an HTML-only spam and a ham reply", async () => {
  const data = path.join(path.dirname(require.resolve(`${SPAM_PACKAGE}/package.json`)), "data");
  const spam = await emailText(fs.readFileSync(path.join(data, "spam-2", "00002.9438920e9a55591b18e60d1ed37d992b.txt")));
  assert.ok(spam.startsWith("Real Protection, Stun Guns!  Free Shipping! Time:2:01:35 PM\n\nTHE NEED FOR SAFETY IS REAL IN 2002"), spam.slice(0, 120));
  assert.ok(!/<[a-z]+[\s>]/i.test(spam), "no HTML tags left");
  const ham = await emailText(fs.readFileSync(path.join(data, "easy-ham-1", "00001.7c53336b37003a9286aba55d2945844c.txt")));
  assert.ok(ham.startsWith("Re: New Sequences Window\n\n"), ham.slice(0, 80));
  assert.ok(!/Return-Path|Received:/.test(ham), "headers left out");
});

/** A corpus folder laid out as the package's: `n` distinct messages per group, plus an empty one and a repeat. */
function fixtureCorpus(n: number): string {
  const src = tempDir("tsfast-spam-src-");
  for (const [group, label] of Object.entries(SPAM_GROUPS)) {
    fs.mkdirSync(path.join(src, group));
    for (let i = 0; i < n; i++) {
      const id = String(i).padStart(5, "0");
      fs.writeFileSync(path.join(src, group, `${id}.abc.txt`), mail([`Subject: ${label} ${group} ${i}`], `body of ${group} message ${i} ${"word ".repeat(i)}`));
    }
    fs.writeFileSync(path.join(src, group, "90000.empty.txt"), mail(["From: nobody@x.org"], ""));
    fs.writeFileSync(path.join(src, group, "90001.repeat.txt"), mail([`Subject: ${label} ${group} 0`], `body of ${group} message 0 `));
    fs.writeFileSync(path.join(src, group, "cmds"), "not a message"); // not a .txt: ignored
  }
  return src;
}

const listTxt = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".txt")).sort() : []);

test("spamAssassin writes fastai's text folders and texts.csv: a seeded split per label, empty and repeated messages left out", async () => {
  const src = fixtureCorpus(10);
  const dest = tempDir("tsfast-spam-");
  const dir = await spamAssassin({ source: src, dest, part: "all" });
  assert.equal(dir, path.join(dest, "spam-assassin-all"));
  // 3 ham groups and 2 spam groups of 10 distinct messages: 30 ham, 20 spam; 20 % of each validates
  const counts = Object.fromEntries(["train/ham", "valid/ham", "train/spam", "valid/spam"].map((d) => [d, listTxt(path.join(dir, d)).length]));
  assert.deepEqual(counts, { "train/ham": 24, "valid/ham": 6, "train/spam": 16, "valid/spam": 4 });
  const text = fs.readFileSync(path.join(dir, "train", "spam", listTxt(path.join(dir, "train", "spam"))[0]!), "utf8");
  assert.match(text, /^spam spam-[12] \d\n\nbody of spam-[12] message \d/);
  assert.match(fs.readFileSync(path.join(dir, "README.txt"), "utf8"), /50 texts of the corpus's two halves; 5 empty messages skipped, 5 repeated texts kept once/);

  const df = readCsv(path.join(dir, "texts.csv"));
  assert.deepEqual(df.columnNames(), ["label", "text", "is_valid"]);
  assert.equal(df.numRows(), 50);
  const valid = column(df, "is_valid").map((v) => v === true || v === "true");
  assert.equal(valid.filter(Boolean).length, 10);
  // the CSV and the folders hold the same texts on the same sides
  const folderTexts = (split: string) =>
    ["ham", "spam"].flatMap((l) => listTxt(path.join(dir, split, l)).map((f) => fs.readFileSync(path.join(dir, split, l, f), "utf8"))).sort();
  const texts = column(df, "text").map(String);
  assert.deepEqual(texts.filter((_, i) => valid[i]).sort(), folderTexts("valid"));
  assert.deepEqual(texts.filter((_, i) => !valid[i]).sort(), folderTexts("train"));

  // built once: a second call returns the same folder untouched; another seed gives another split
  const marker = fs.statSync(path.join(dir, ".tsfast-dataset.json")).mtimeMs;
  assert.equal(await spamAssassin({ source: src, dest, part: "all" }), dir);
  assert.equal(fs.statSync(path.join(dir, ".tsfast-dataset.json")).mtimeMs, marker);
  const before = listTxt(path.join(dir, "valid", "ham"));
  await spamAssassin({ source: src, dest, seed: 7, part: "all" });
  assert.notDeepEqual(listTxt(path.join(dir, "valid", "ham")), before);
});

test("spamAssassin: perClass samples each label, maxChars cuts at a space", async () => {
  const src = fixtureCorpus(10);
  const dest = tempDir("tsfast-spam-");
  const dir = await spamAssassin({ source: src, dest, perClass: 5, maxChars: 40, part: "all" });
  assert.equal(path.basename(dir), "spam-assassin-5-all");
  for (const label of ["ham", "spam"]) {
    assert.equal(listTxt(path.join(dir, "train", label)).length, 4);
    assert.equal(listTxt(path.join(dir, "valid", label)).length, 1);
  }
  for (const split of ["train", "valid"]) {
    for (const label of ["ham", "spam"]) {
      for (const f of listTxt(path.join(dir, split, label))) {
        const t = fs.readFileSync(path.join(dir, split, label, f), "utf8");
        assert.ok(t.length <= 40, `${f}: ${t.length} characters`);
        assert.ok(!t.endsWith(" "), JSON.stringify(t));
      }
    }
  }
});

test("spamPart: a fixed half per subject, whatever its Re: / Fwd: prefixes, case and spacing", () => {
  const subjects = Array.from({ length: 200 }, (_v, i) => `meeting number ${i}`);
  const parts = subjects.map((t) => spamPart(`${t}\n\nbody`));
  // sha256's first byte is below 128 for about half of the subjects
  const nPre = parts.filter((p) => p === "pretraining").length;
  assert.ok(nPre > 70 && nPre < 130, `${nPre} of 200 in the pretraining half`);
  for (const [i, t] of subjects.entries()) {
    assert.equal(spamPart(`Re: Fwd:  ${t.toUpperCase()}\n\nanother body`), parts[i], "a reply stays with its thread");
    assert.equal(spamPart(`RE:re : ${t}`), parts[i]);
  }
  // a text cut anywhere after its first line keeps its half: the line is all that counts
  assert.equal(spamPart("meeting number 0\n\nbody"), spamPart("meeting number 0"));
  // sha256("meeting number 1") starts with 0x55 and sha256("meeting number 0") with 0xcb (computed with sha256sum)
  assert.equal(spamPart("meeting number 1"), "pretraining");
  assert.equal(spamPart("meeting number 0"), "task");
});

test("spamAssassin draws from the task half by default; emailCorpus holds the other half, unlabelled, ham and spam", async () => {
  const src = fixtureCorpus(12);
  const dest = tempDir("tsfast-spam-");
  const texts = (dir: string) =>
    ["train", "valid"].flatMap((split) => ["ham", "spam"].flatMap((l) => listTxt(path.join(dir, split, l)).map((f) => fs.readFileSync(path.join(dir, split, l, f), "utf8"))));
  const all = texts(await spamAssassin({ source: src, dest, part: "all" }));
  const task = texts(await spamAssassin({ source: src, dest }));
  const pre = texts(await spamAssassin({ source: src, dest, part: "pretraining" }));
  assert.equal(all.length, 60);
  assert.ok(task.length > 10 && pre.length > 10, `${task.length} task, ${pre.length} pretraining`);
  for (const t of task) assert.equal(spamPart(t), "task");
  for (const t of pre) assert.equal(spamPart(t), "pretraining");
  // the halves split the corpus, but for the task-half e-mails that copy a pretraining one (the fixture's long bodies of
  // repeated "word"s share their shingles), which are left out
  assert.deepEqual([...pre].sort(), all.filter((t) => spamPart(t) === "pretraining").sort());
  const left = all.filter((t) => spamPart(t) === "task" && !task.includes(t));
  assert.deepEqual([...task, ...left].sort(), all.filter((t) => spamPart(t) === "task").sort());
  for (const t of left) assert.ok(t.split(" ").filter((w) => w === "word").length >= 8, `left out but no copy: ${JSON.stringify(t)}`);

  const corpus = await emailCorpus({ source: src, dest, validPct: 0.2 });
  assert.equal(path.basename(corpus), "email-corpus");
  const docs = ["train", "valid"].flatMap((split) => listTxt(path.join(corpus, split)).map((f) => fs.readFileSync(path.join(corpus, split, f), "utf8").trimEnd()));
  assert.deepEqual(docs.sort(), [...pre].sort(), "the pretraining half, nothing of the task half");
  assert.equal(listTxt(path.join(corpus, "valid")).length, Math.round(pre.length * 0.2));
  assert.ok(!fs.existsSync(path.join(corpus, "train", "ham")), "one flat folder per split, no labels");
  assert.ok(listTxt(path.join(corpus, "train")).some((f) => f.startsWith("spam-")) || listTxt(path.join(corpus, "valid")).some((f) => f.startsWith("spam-")), "spam is in it too");
  assert.match(fs.readFileSync(path.join(corpus, "README.txt"), "utf8"), new RegExp(`labels dropped: ${pre.length} e-mails`));
  await assert.rejects(emailCorpus({ source: src, dest, maxChars: 0 }), /emailCorpus: maxChars must be a positive integer/);
  await assert.rejects(spamAssassin({ source: src, dest, part: "both" as never }), /part must be "task", "pretraining" or "all", got "both"/);
});

test("spamAssassin leaves out of the task half an e-mail that mostly copies a pretraining one under another subject", async () => {
  const src = tempDir("tsfast-spam-src-");
  // subjects in each half (sha256 of "meeting number 1" starts with 0x55, of "meeting number 0" with 0xcb)
  const taskSubjects = Array.from({ length: 40 }, (_v, i) => `topic ${i}`).filter((t) => spamPart(t) === "task");
  const preSubjects = Array.from({ length: 40 }, (_v, i) => `topic ${i}`).filter((t) => spamPart(t) === "pretraining");
  const words = (seed: number, n: number) => Array.from({ length: n }, (_v, i) => `w${seed}x${i}`).join(" ");
  const ad = words(1, 30); // a spam body sent twice, under a subject from each half (a spammer's random suffix)
  const files: Record<string, [string, string][]> = {
    "easy-ham-1": [[taskSubjects[0]!, words(2, 30)], [preSubjects[0]!, words(3, 30)]],
    "easy-ham-2": [[taskSubjects[1]!, `${words(3, 6)} ${words(4, 30)}`]], // quotes 6 of the 30 words: kept
    "hard-ham-1": [],
    "spam-1": [[preSubjects[1]!, ad], [taskSubjects[2]!, words(5, 30)]],
    "spam-2": [[taskSubjects[3]!, `${ad} ${words(6, 5)}`]], // the ad with a few words added: a near-copy
  };
  for (const [group, msgs] of Object.entries(files)) {
    fs.mkdirSync(path.join(src, group));
    msgs.forEach(([subject, body], i) => fs.writeFileSync(path.join(src, group, `${i}.x.txt`), mail([`Subject: ${subject}`], body)));
  }
  const dest = tempDir("tsfast-spam-");
  const dir = await spamAssassin({ source: src, dest, validPct: 0.5 });
  const got = ["train", "valid"].flatMap((split) => ["ham", "spam"].flatMap((l) => listTxt(path.join(dir, split, l)).map((f) => fs.readFileSync(path.join(dir, split, l, f), "utf8"))));
  assert.deepEqual(got.map((t) => t.split("\n")[0]).sort(), [taskSubjects[0]!, taskSubjects[1]!, taskSubjects[2]!].sort());
  assert.match(fs.readFileSync(path.join(dir, "README.txt"), "utf8"), /3 texts of the corpus's task half; .*, 1 near-copies of pretraining e-mails left out/);
  const all = await spamAssassin({ source: src, dest, validPct: 0.5, part: "all" });
  assert.match(fs.readFileSync(path.join(all, "README.txt"), "utf8"), /^6 texts of the corpus's two halves/m);
});

test("spamAssassin refuses bad options and names a missing group", async () => {
  const dest = tempDir("tsfast-spam-");
  await assert.rejects(spamAssassin({ dest, validPct: 1 }), /validPct must be between 0 and 1/);
  await assert.rejects(spamAssassin({ dest, perClass: 1 }), /perClass must be an integer of at least 2, got 1/);
  await assert.rejects(spamAssassin({ dest, maxChars: 0 }), /maxChars must be a positive integer/);
  const src = fixtureCorpus(2);
  fs.rmSync(path.join(src, "hard-ham-1"), { recursive: true });
  await assert.rejects(spamAssassin({ source: src, dest }), /hard-ham-1 is missing/);
  assert.deepEqual(fs.readdirSync(dest), [], "nothing half-built is left behind");
});
