/**
 * Data frames for tables: arquero's column tables (a well-kept, pure-JavaScript library: no
 * platform binary to install, so `npm ci` gives the same frames on every machine).
 *
 * `readCsv` is arquero's CSV parser plus the cleaning every table needs before it meets a model:
 * the byte-order mark dropped, the usual missing markers ("", "NA", "?", ...) turned into `null`,
 * and a column whose present values are all numbers typed as numbers.
 */
import * as fs from "fs";
import * as aq from "arquero";

/** An arquero column table (`aq.table`, `aq.from`, `readCsv`, ...). */
export type DataFrame = ReturnType<typeof aq.table>;
/** One cell: a number, a string, a boolean, or `null` when it is missing. */
export type Cell = number | string | boolean | null;

/** Markers read as a missing value (R's NA, weka's `?`, pandas' defaults). */
export const DEFAULT_NA_VALUES: readonly string[] = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "?", "#N/A"];

export interface ReadCsvOptions {
  /** Field delimiter (default ","). */
  delimiter?: string;
  /** Strings read as missing (default `DEFAULT_NA_VALUES`). */
  naValues?: readonly string[];
  /** Columns kept as text even when every value looks like a number (ids, zip codes). */
  textColumns?: readonly string[];
}

/** True when `v` is the missing value of a cell: null, undefined or NaN. */
export function isMissing(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
}

/** Read a CSV file (or, with `{ text: ... }`, CSV text) into a data frame; see the module note. */
export function readCsv(source: string | { text: string }, opts: ReadCsvOptions = {}): DataFrame {
  let text: string;
  let where: string;
  if (typeof source === "string") {
    if (!fs.existsSync(source)) throw new Error(`readCsv: no file at ${source}`);
    text = fs.readFileSync(source, "utf8");
    where = source;
  } else {
    text = source.text;
    where = "the CSV text";
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === "") throw new Error(`readCsv: ${where} is empty (it needs a header line)`);
  // Every field as text first: the typing below is ours, so that "NA" or "?" in a numeric column
  // makes it a numeric column with missing values, not a text column.
  const raw = aq.fromCSV(text, { delimiter: opts.delimiter ?? ",", autoType: false });
  checkQuotesClosed(text, raw, where);
  const names = raw.columnNames();
  const seen = new Set<string>();
  for (const n of names) {
    if (n.trim() === "") throw new Error(`readCsv: ${where} has a column with an empty name in its header`);
    if (seen.has(n)) throw new Error(`readCsv: ${where} names the column "${n}" twice in its header`);
    seen.add(n);
  }
  const na = new Set(opts.naValues ?? DEFAULT_NA_VALUES);
  const keepText = new Set(opts.textColumns ?? []);
  const columns: Record<string, Cell[]> = {};
  for (const n of names) {
    const vals = raw.array(n) as unknown as (string | null | undefined)[];
    const cleaned: (string | null)[] = Array.from(vals, (v) => (v === null || v === undefined || na.has(v.trim()) ? null : v));
    const numeric = !keepText.has(n) && cleaned.some((v) => v !== null) && cleaned.every((v) => v === null || isNumberText(v));
    columns[n] = numeric ? cleaned.map((v) => (v === null ? null : Number(v))) : cleaned;
  }
  return aq.table(columns);
}

/**
 * arquero reads a quote that is never closed as a field running to the end of the text; refuse it,
 * naming the line where the quote opened (else the rest of the file silently becomes one field).
 */
export function checkQuotesClosed(text: string, df: DataFrame, where: string): void {
  const n = df.numRows();
  const names = df.columnNames();
  const last = n > 0 ? names.map((c) => df.get(c, n - 1)).filter((v) => v !== null && v !== undefined).pop() : undefined;
  if (typeof last !== "string" || !last.includes("\n")) return;
  const body = text.replace(/[\r\n]+$/, "");
  if (body.endsWith('"')) return; // a closed multi-line field
  const start = body.lastIndexOf(`"${last.split("\n")[0]}`);
  const line = body.slice(0, Math.max(0, start)).split("\n").length;
  throw new Error(`${where ? where + ": " : ""}CSV line ${line}: a quoted field opened there is never closed (a missing '"'); the rest of the file would be read as one field`);
}

function isNumberText(v: string): boolean {
  const t = v.trim();
  return t !== "" && Number.isFinite(Number(t));
}

/** A frame from plain row objects (`[{ a: 1, b: "x" }, ...]`); missing keys become `null`. */
export function frameFromRows(rows: readonly Record<string, Cell | undefined>[]): DataFrame {
  const names: string[] = [];
  const known = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (!known.has(k)) (known.add(k), names.push(k));
  const columns: Record<string, Cell[]> = {};
  for (const n of names) columns[n] = rows.map((r) => (r[n] === undefined ? null : (r[n] as Cell)));
  return aq.table(columns);
}

/** The values of one column; the error names the column and lists the ones the frame has. */
export function column(df: DataFrame, name: string): Cell[] {
  const names = df.columnNames();
  if (!names.includes(name)) throw new Error(`no column "${name}" in the table; its columns are: ${names.join(", ")}`);
  return Array.from(df.array(name) as ArrayLike<Cell>);
}
