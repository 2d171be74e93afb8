/**
 * CSV rows of text for label files (`ImageDataLoaders.fromCsv`): arquero's parser (quoted fields,
 * doubled quotes, CRLF), as `readCsv` uses it, with every value kept as its text and each row as long
 * as the line it came from (so a short row can be named).
 */
import * as aq from "arquero";
import { checkQuotesClosed } from "../tabular/frame";

/** Parse CSV text into rows of string fields; a quote never closed is an error naming its line. */
export function parseCsv(text: string, delimiter: string = ","): string[][] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // byte-order mark
  if (body === "") return [];
  const df = aq.fromCSV(body, { delimiter, header: false, autoType: false });
  checkQuotesClosed(body, df, "");
  const cols = df.columnNames().map((c) => df.array(c) as ArrayLike<string | null | undefined>);
  // arquero gives null for an empty field and undefined past the end of a short row
  return Array.from({ length: df.numRows() }, (_, i) => {
    const row: string[] = [];
    for (const col of cols) {
      const v = col[i];
      if (v === undefined) break;
      row.push(v ?? "");
    }
    return row;
  });
}
