/**
 * A small streaming parser for `multipart/form-data` request bodies (RFC 7578 / RFC 2046).
 *
 * Feed it the body chunk by chunk with `write`, then call `end`. It never holds more than one
 * delimiter's length of undecided bytes beyond the part data itself, so the caller's byte cap
 * bounds its memory. The body looks like:
 *
 *   preamble CRLF--boundary CRLF headers CRLF CRLF data CRLF--boundary CRLF ... CRLF--boundary-- epilogue
 *
 * Steps:
 *   1. The body is read as if it began with CRLF, so a first delimiter at offset 0 is found by the
 *      same search (`CRLF--boundary`) as every later one.
 *   2. After a delimiter: `--` closes the body; otherwise optional spaces/tabs, then CRLF.
 *   3. Part headers run to the first empty line (CRLF CRLF); `Content-Disposition: form-data`
 *      gives the field `name` and, for files, `filename`.
 *   4. Part data runs to the next delimiter. While it is not found, all but the last
 *      `delimiter.length - 1` bytes are known to be data and are moved out of the buffer.
 */
import { HttpError } from "./errors";

/** One field of a multipart body. */
export interface FormPart {
  /** Field name from `Content-Disposition: form-data; name="..."`. */
  name: string;
  /** File name the client gave, when the part is a file. */
  filename?: string;
  /** The part's own `Content-Type`, when given. */
  contentType?: string;
  /** The part's bytes. */
  data: Buffer;
}

/** Options of `MultipartParser`. */
export interface MultipartOptions {
  /** Most bytes a part's header block may take. Default 8192. */
  maxHeaderBytes?: number;
  /** Most parts a body may hold. Default 32. */
  maxParts?: number;
}

const CRLF = Buffer.from("\r\n");
const CRLFCRLF = Buffer.from("\r\n\r\n");

function bad(message: string): HttpError {
  return new HttpError(400, "bad_multipart", message);
}

/**
 * The boundary named in a `Content-Type: multipart/form-data; boundary=...` header value;
 * throws a 400 `HttpError` when it is missing or not a valid RFC 2046 boundary.
 */
export function boundaryOf(contentType: string): string {
  const params = parseParams(contentType.slice(contentType.indexOf(";") < 0 ? contentType.length : contentType.indexOf(";")));
  const boundary = params["boundary"];
  if (boundary === undefined || boundary === "") {
    throw bad(`Content-Type "${contentType}" has no boundary parameter (expected multipart/form-data; boundary=...)`);
  }
  if (boundary.length > 70 || !/^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary)) {
    throw bad(`multipart boundary "${boundary.slice(0, 80)}" is not valid (1-70 characters of RFC 2046's set)`);
  }
  return boundary;
}

/**
 * `; key=value; key2="quoted value"` → `{ key: "value", key2: "quoted value" }` (keys lower-cased).
 */
export function parseParams(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    const key = (m[1] ?? "").toLowerCase();
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "").trim();
    out[key] = value;
  }
  return out;
}

type State = "preamble" | "afterDelimiter" | "headers" | "body" | "done";

/** Streaming `multipart/form-data` parser: `write(chunk)` as bytes arrive, then `end()` for the parts. */
export class MultipartParser {
  private readonly delimiter: Buffer;
  private readonly maxHeaderBytes: number;
  private readonly maxParts: number;
  private state: State = "preamble";
  // Bytes received but not yet assigned to a part (step 4 keeps a tail here).
  private buf: Buffer = CRLF;
  private current: { name: string; filename?: string; contentType?: string; chunks: Buffer[] } | undefined;
  private readonly parts: FormPart[] = [];

  constructor(boundary: string, opts: MultipartOptions = {}) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 8192;
    this.maxParts = opts.maxParts ?? 32;
  }

  /** Consume the next chunk of the body; throws a 400 `HttpError` as soon as the body is malformed. */
  write(chunk: Buffer): void {
    if (this.state === "done") return; // epilogue: ignored
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.advance();
  }

  /** Finish: the parts in body order; throws a 400 `HttpError` if the closing boundary never came. */
  end(): FormPart[] {
    if (this.state !== "done") {
      const b = this.delimiter.subarray(2).toString();
      throw bad(
        this.state === "preamble"
          ? `multipart body has no "${b}" boundary line (is the boundary in Content-Type the one the body uses?)`
          : `multipart body ended before the closing boundary "${b}--" (truncated upload?)`,
      );
    }
    return this.parts;
  }

  private advance(): void {
    for (;;) {
      switch (this.state) {
        case "preamble": {
          const i = this.buf.indexOf(this.delimiter);
          if (i < 0) {
            this.keepTail();
            return;
          }
          this.buf = this.buf.subarray(i + this.delimiter.length);
          this.state = "afterDelimiter";
          break;
        }
        case "afterDelimiter": {
          if (this.buf.length < 2) return;
          if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
            this.state = "done";
            this.buf = Buffer.alloc(0);
            return;
          }
          const eol = this.buf.indexOf(CRLF);
          if (eol < 0) {
            if (this.buf.length > 256) throw bad("multipart boundary line is not followed by CRLF");
            return;
          }
          if (!/^[ \t]*$/.test(this.buf.subarray(0, eol).toString("latin1"))) {
            throw bad("multipart boundary line has unexpected characters after the boundary");
          }
          if (this.parts.length >= this.maxParts) throw bad(`multipart body has more than ${this.maxParts} parts`);
          this.buf = this.buf.subarray(eol + 2);
          this.state = "headers";
          break;
        }
        case "headers": {
          // A part with no headers at all starts with the empty line itself.
          const end = this.buf.subarray(0, 2).equals(CRLF) ? -2 : this.buf.indexOf(CRLFCRLF);
          if (end === -1) {
            if (this.buf.length > this.maxHeaderBytes) {
              throw bad(`multipart part headers exceed ${this.maxHeaderBytes} bytes`);
            }
            return;
          }
          if (end > this.maxHeaderBytes) throw bad(`multipart part headers exceed ${this.maxHeaderBytes} bytes`);
          const head = end === -2 ? "" : this.buf.subarray(0, end).toString("utf8");
          this.current = { ...parsePartHeaders(head), chunks: [] };
          this.buf = this.buf.subarray(end === -2 ? 2 : end + 4);
          this.state = "body";
          break;
        }
        case "body": {
          const i = this.buf.indexOf(this.delimiter);
          const cur = this.current!;
          if (i < 0) {
            const keep = this.delimiter.length - 1;
            if (this.buf.length > keep) {
              cur.chunks.push(this.buf.subarray(0, this.buf.length - keep));
              this.buf = this.buf.subarray(this.buf.length - keep);
            }
            return;
          }
          cur.chunks.push(this.buf.subarray(0, i));
          const part: FormPart = { name: cur.name, data: Buffer.concat(cur.chunks) };
          if (cur.filename !== undefined) part.filename = cur.filename;
          if (cur.contentType !== undefined) part.contentType = cur.contentType;
          this.parts.push(part);
          this.current = undefined;
          this.buf = this.buf.subarray(i + this.delimiter.length);
          this.state = "afterDelimiter";
          break;
        }
        case "done":
          return;
      }
    }
  }

  // In the preamble nothing is kept but what could be the start of a delimiter.
  private keepTail(): void {
    const keep = this.delimiter.length - 1;
    if (this.buf.length > keep) this.buf = Buffer.from(this.buf.subarray(this.buf.length - keep));
  }
}

function parsePartHeaders(head: string): { name: string; filename?: string; contentType?: string } {
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw bad(`multipart part header line "${line.slice(0, 80)}" has no "name: value" form`);
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === "content-disposition") disposition = value;
    else if (key === "content-type") contentType = value;
  }
  if (disposition === undefined) throw bad("multipart part has no Content-Disposition header");
  const semi = disposition.indexOf(";");
  const kind = (semi < 0 ? disposition : disposition.slice(0, semi)).trim().toLowerCase();
  if (kind !== "form-data") throw bad(`multipart part has Content-Disposition "${kind}", expected "form-data"`);
  const params = parseParams(semi < 0 ? "" : disposition.slice(semi));
  const name = params["name"];
  if (name === undefined) throw bad('multipart part has no name (Content-Disposition: form-data; name="...")');
  const out: { name: string; filename?: string; contentType?: string } = { name };
  if (params["filename"] !== undefined) out.filename = params["filename"];
  if (contentType !== undefined) out.contentType = contentType;
  return out;
}
