/**
 * The one error type the server turns into a JSON answer: an HTTP status, a short machine-readable
 * code and a sentence saying what the client must fix.
 */

/** An error that maps to an HTTP response: `status`, a stable `code`, and a message for the client. */
export class HttpError extends Error {
  constructor(
    /** HTTP status code sent back (400, 404, 405, 413, 415, 422, 503, ...). */
    readonly status: number,
    /** Stable machine-readable name of the failure, e.g. `payload_too_large`. */
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. `Allow` for a 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** `n` bytes in the unit a person reads (B, KB, MB). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1).replace(/\.0$/, "")} KB`;
  return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MB`;
}
