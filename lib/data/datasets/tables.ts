/**
 * Real tables, offline: Palmer penguins (344 rows, CC0; missing values, categorical and continuous
 * columns) and weka's German credit `credit-g` (1,000 rows, mixed types), as CSV files under
 * `$TSFAST_HOME/data`.
 *
 * The files come from Debian packages: `r-cran-palmerpenguins` ships `penguins.csv`, `weka` ships
 * `credit-g.arff` among its examples. Neither package needs to be installed (R and Java are not
 * wanted): when the file is not already on disk, `apt-get download` fetches the .deb and
 * `dpkg-deb -x` unpacks it into a temporary folder. The ARFF file is converted to CSV once.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as aq from "arquero";
import { buildFolderOnce, type DatasetFolderOptions } from "./folder";

/** A file inside a Debian package: where it lies once installed, and which package carries it. */
interface DebFile {
  pkg: string;
  /** Paths tried in order (installed, or unpacked); the first that exists wins. */
  paths: string[];
  /** The package's licence file. */
  copyright: string;
}

const PENGUINS: DebFile = {
  pkg: "r-cran-palmerpenguins",
  paths: ["/usr/lib/R/site-library/palmerpenguins/extdata/penguins.csv"],
  copyright: "/usr/share/doc/r-cran-palmerpenguins/copyright",
};

const CREDIT_G: DebFile = {
  pkg: "weka",
  paths: ["/usr/share/doc/weka/examples/credit-g.arff", "/usr/share/doc/weka/examples/credit-g.arff.gz"],
  copyright: "/usr/share/doc/weka/copyright",
};

/** The files of `f` (data, licence): from the installed package, else from its .deb unpacked into `tmp`. */
function fromDeb(f: DebFile, tmp: string): { data: string; copyright?: string } {
  const installed = f.paths.find((p) => fs.existsSync(p));
  if (installed) return { data: installed, copyright: fs.existsSync(f.copyright) ? f.copyright : undefined };
  try {
    try {
      execFileSync("apt-get", ["download", f.pkg], { cwd: tmp, stdio: "pipe" });
    } catch (e) {
      // a fresh machine may have no package lists yet; root can fetch them once and retry
      if (process.getuid?.() !== 0) throw e;
      execFileSync("apt-get", ["update", "-qq"], { stdio: "pipe" });
      execFileSync("apt-get", ["download", f.pkg], { cwd: tmp, stdio: "pipe" });
    }
    const deb = fs.readdirSync(tmp).find((n) => n.startsWith(`${f.pkg}_`) && n.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download left no .deb");
    execFileSync("dpkg-deb", ["-x", deb, "root"], { cwd: tmp, stdio: "pipe" });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(
      `could not fetch the Debian package "${f.pkg}" (apt-get download + dpkg-deb -x): ${err.stderr?.toString().trim() || err.message}; ` +
        `run "sudo apt-get update" first, or install it (sudo apt-get install ${f.pkg})`,
    );
  }
  const data = f.paths.map((p) => path.join(tmp, "root", p)).find((p) => fs.existsSync(p));
  if (!data) throw new Error(`the package "${f.pkg}" does not hold ${f.paths.join(" or ")}`);
  const copyright = path.join(tmp, "root", f.copyright);
  return { data, copyright: fs.existsSync(copyright) ? copyright : undefined };
}

async function materialise(name: string, file: string, f: DebFile, opts: DatasetFolderOptions, convert: (src: string) => string): Promise<string> {
  const dir = await buildFolderOnce(name, { source: f.pkg, file, version: 1 }, opts, async (out) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tsfast-${name}-`));
    try {
      const src = fromDeb(f, tmp);
      fs.writeFileSync(path.join(out, file), convert(src.data));
      if (src.copyright) fs.copyFileSync(src.copyright, path.join(out, "COPYRIGHT"));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  return path.join(dir, file);
}

/** Palmer penguins (`penguins.csv`: species, island, bill and flipper sizes, body mass, sex, year; NA marks missing values); returns the CSV's path. */
export function penguins(opts: DatasetFolderOptions = {}): Promise<string> {
  return materialise("penguins", "penguins.csv", PENGUINS, opts, (src) => fs.readFileSync(src, "utf8"));
}

/** weka's German credit data (`credit-g.csv`: 20 attributes, `class` good/bad), converted from ARFF; returns the CSV's path. */
export function creditG(opts: DatasetFolderOptions = {}): Promise<string> {
  return materialise("credit-g", "credit-g.csv", CREDIT_G, opts, (src) => {
    const raw = fs.readFileSync(src);
    return arffToCsv((src.endsWith(".gz") ? zlib.gunzipSync(raw) : raw).toString("utf8"), src);
  });
}

/**
 * ARFF (weka's format) to CSV: the `@attribute` names become the header, `@data` rows the lines.
 * Values may be quoted with ' or " (backslash escapes inside); `?` is a missing value and stays `?`
 * (which `readCsv` reads as missing). Sparse rows (`{...}`) are refused.
 */
export function arffToCsv(text: string, where = "the ARFF text"): string {
  const names: string[] = [];
  const rows: string[][] = [];
  let inData = false;
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === "" || t.startsWith("%")) return;
    if (!inData) {
      const lower = t.toLowerCase();
      if (lower.startsWith("@attribute")) names.push(arffFields(t.slice("@attribute".length).trim(), where, i, " ")[0]!);
      else if (lower.startsWith("@data")) inData = true;
      return;
    }
    if (t.startsWith("{")) throw new Error(`${where}, line ${i + 1}: sparse ARFF rows are not supported`);
    const vals = arffFields(t, where, i, ",");
    if (vals.length !== names.length) throw new Error(`${where}, line ${i + 1}: ${vals.length} values for ${names.length} attributes`);
    rows.push(vals);
  });
  if (!names.length) throw new Error(`${where} has no @attribute lines; is it an ARFF file?`);
  const columns: Record<string, string[]> = {};
  names.forEach((n, j) => (columns[n] = rows.map((r) => r[j]!)));
  return aq.table(columns).toCSV();
}

/** Split on `sep` outside quotes; quotes removed, backslash escapes resolved; a space separator stops after the first field. */
function arffFields(s: string, where: string, line: number, sep: "," | " "): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= s.length) {
    while (s[i] === " " || s[i] === "\t") i++;
    let v = "";
    const q = s[i];
    if (q === "'" || q === '"') {
      i++;
      while (i < s.length && s[i] !== q) v += s[i] === "\\" ? s[++i] : s[i], i++;
      if (s[i] !== q) throw new Error(`${where}, line ${line + 1}: unclosed quote`);
      i++;
      while (s[i] === " " || s[i] === "\t") i++;
    } else {
      const stop = sep === " " ? /[\s]/ : /,/;
      while (i < s.length && !stop.test(s[i]!)) v += s[i++];
      v = v.trim();
    }
    out.push(v);
    if (sep === " ") return out;
    if (i >= s.length) break;
    if (s[i] !== ",") throw new Error(`${where}, line ${line + 1}: expected a comma at column ${i + 1}`);
    i++;
  }
  return out;
}
