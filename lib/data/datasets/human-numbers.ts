/**
 * fastai's HUMAN_NUMBERS, generated rather than downloaded: the numbers 1 to 9,999 written in English
 * words ("one", "twenty one", "one hundred one", "nine thousand nine hundred ninety nine": no "and",
 * no hyphens), one per line. fastai's split: `train.txt` holds 1..7,999 and `valid.txt` 8,001..9,999
 * (8,000 is in neither), 9,998 lines in all. Joined with " . " and split on spaces, as the book does,
 * they give 63,095 tokens over a vocabulary of 30.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { tsfastPath } from "../external";

const ONES = "one two three four five six seven eight nine".split(" ");
const TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split(" ");
const TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split(" ");

/** `n` (1..9,999) in HUMAN_NUMBERS's English words. */
export function numberWords(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 9999) throw new Error(`numberWords: HUMAN_NUMBERS spells 1..9999, got ${n}`);
  const out: string[] = [];
  if (n >= 1000) out.push(ONES[Math.floor(n / 1000) - 1]!, "thousand");
  n %= 1000;
  if (n >= 100) out.push(ONES[Math.floor(n / 100) - 1]!, "hundred");
  n %= 100;
  if (n >= 20) {
    out.push(TENS[Math.floor(n / 10) - 2]!);
    n %= 10;
  } else if (n >= 10) {
    out.push(TEENS[n - 10]!);
    n = 0;
  }
  if (n > 0) out.push(ONES[n - 1]!);
  return out.join(" ");
}

/** HUMAN_NUMBERS's two files as lines (without their trailing " \n"): `train` 1..7,999, `valid` 8,001..9,999. */
export function humanNumbers(): { train: string[]; valid: string[] } {
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => numberWords(a + i));
  return { train: range(1, 7999), valid: range(8001, 9999) };
}

/**
 * Writes HUMAN_NUMBERS as fastai's archive holds it (`train.txt`, `valid.txt`, each line the words and
 * " \n") into `dest` (default `$TSFAST_HOME/data/human_numbers`) once, and returns the folder: what
 * `untarData(URLs.HUMAN_NUMBERS)` gives in fastai.
 */
export function humanNumbersPath(dest = path.join(tsfastPath("data"), "human_numbers")): string {
  const { train, valid } = humanNumbers();
  fs.mkdirSync(dest, { recursive: true });
  for (const [name, lines] of [["train.txt", train], ["valid.txt", valid]] as const) {
    const file = path.join(dest, name);
    const text = lines.map((l) => `${l} \n`).join("");
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
  }
  return dest;
}
