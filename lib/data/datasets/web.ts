/**
 * Lesson 2's "build your own dataset from the web" tools: `searchImages` (an image search whose
 * endpoint you configure), `downloadImages` (bounded concurrency, per-file timeout and size limit,
 * never a half-written file) and `verifyImages` (finds files that cannot be decoded as images).
 *
 * The search endpoint is any HTTP(S) URL answering `GET <endpoint>?q=<term>&max=<n>` with JSON
 * in one of these shapes (the first is DuckDuckGo's image results, the second Bing's):
 *   { "results": [{ "image": "https://...", "thumbnail"?: "...", "title"?: "..." }], "next"?: "<url>" }
 *   { "value": [{ "contentUrl": "https://..." }], "nextOffset"?: 150 }
 *   [ "https://...", ... ]
 * `next` (absolute or relative to the endpoint) or `nextOffset` (sent back as `&offset=`) fetch
 * more pages until `max` URLs are collected.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { DownloadError, downloadFile, openUrl, readBody } from "../download";
import { mapLimit } from "./folder";

/** Options of `searchImages`. */
export interface SearchImagesOptions {
  /** Most image URLs returned. Default 200 (fastai's `search_images_ddg`). */
  max?: number;
  /** Search endpoint URL. Default `process.env.TSFAST_SEARCH_ENDPOINT`; none means an error. */
  endpoint?: string;
  /** Key sent as `Authorization: Bearer <apiKey>`. Default `process.env.TSFAST_SEARCH_API_KEY`, else none. */
  apiKey?: string;
  /** Milliseconds to connect, and of silence once connected, before failing. Default 5000. */
  timeoutMs?: number;
}

/** Parse one search response page into image URLs and where the next page is. */
function parseSearchPage(json: unknown, pageUrl: string): { urls: string[]; next?: string } {
  if (Array.isArray(json)) return { urls: json.filter((x): x is string => typeof x === "string") };
  if (json && typeof json === "object") {
    const o = json as Record<string, unknown>;
    if (Array.isArray(o.results)) {
      const urls = o.results.map((r) => (r && typeof r === "object" ? (r as Record<string, unknown>).image : undefined)).filter((x): x is string => typeof x === "string");
      return typeof o.next === "string" && o.next ? { urls, next: new URL(o.next, pageUrl).toString() } : { urls };
    }
    if (Array.isArray(o.value)) {
      const urls = o.value.map((r) => (r && typeof r === "object" ? (r as Record<string, unknown>).contentUrl : undefined)).filter((x): x is string => typeof x === "string");
      if (typeof o.nextOffset === "number") {
        const u = new URL(pageUrl);
        u.searchParams.set("offset", String(o.nextOffset));
        return { urls, next: u.toString() };
      }
      return { urls };
    }
  }
  throw new DownloadError(
    `searchImages: ${pageUrl} answered JSON without "results" (DuckDuckGo shape), "value" (Bing shape) or an array of URLs`,
    pageUrl,
    "BAD_RESPONSE",
  );
}

/**
 * Search images for `term` at the configured endpoint and return up to `max` unique image URLs.
 * Without an endpoint, or without network, it fails at once with a `DownloadError` that a
 * notebook can catch (codes `NO_ENDPOINT`, `NETWORK`, `CONNECT_TIMEOUT`, `HTTP`, `BAD_RESPONSE`).
 */
export async function searchImages(term: string, opts: SearchImagesOptions = {}): Promise<string[]> {
  const max = opts.max ?? 200;
  const endpoint = opts.endpoint ?? process.env.TSFAST_SEARCH_ENDPOINT;
  const apiKey = opts.apiKey ?? process.env.TSFAST_SEARCH_API_KEY;
  const timeoutMs = opts.timeoutMs ?? 5000;
  if (!endpoint) {
    throw new DownloadError(
      `searchImages(${JSON.stringify(term)}): no image search endpoint: pass { endpoint } or set TSFAST_SEARCH_ENDPOINT to a URL answering ?q=<term>&max=<n> with JSON (see the searchImages docs)`,
      "",
      "NO_ENDPOINT",
    );
  }
  const first = new URL(endpoint);
  first.searchParams.set("q", term);
  first.searchParams.set("max", String(max));
  const seen = new Set<string>();
  let pageUrl: string | undefined = first.toString();
  for (let page = 0; pageUrl && seen.size < max && page < 50; page++) {
    let body: Buffer;
    try {
      const o = await openUrl(pageUrl, {
        connectTimeoutMs: timeoutMs,
        timeoutMs,
        headers: { accept: "application/json", ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      });
      const status = o.res.statusCode ?? 0;
      if (status !== 200) {
        o.res.resume();
        const hint = status === 401 || status === 403 ? " (check apiKey / TSFAST_SEARCH_API_KEY)" : "";
        throw new DownloadError(`searchImages: HTTP ${status} from ${pageUrl}${hint}`, pageUrl, "HTTP", status);
      }
      body = await readBody(o);
    } catch (e) {
      if (e instanceof DownloadError && e.code !== "HTTP") e.message = `searchImages(${JSON.stringify(term)}): ${e.message}`;
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {
      throw new DownloadError(`searchImages: ${pageUrl} did not answer JSON (got ${JSON.stringify(body.subarray(0, 60).toString("utf8"))}...)`, pageUrl, "BAD_RESPONSE");
    }
    const { urls, next } = parseSearchPage(json, pageUrl);
    const before = seen.size;
    for (const u of urls) if (seen.size < max) seen.add(u);
    if (seen.size === before) break; // a page with nothing new: stop rather than loop
    pageUrl = next;
  }
  return [...seen];
}

/** File extensions kept from an image URL; anything else is saved as `.jpg` (as fastai does). */
const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif"];

/** Options of `downloadImages`. */
export interface DownloadImagesOptions {
  /** Downloads in flight at once. Default 8 (fastai's `n_workers`). */
  concurrency?: number;
  /** Milliseconds allowed per file (connect, silence, and the whole transfer). Default 4000 (fastai's `timeout=4`). */
  timeoutMs?: number;
  /** Largest file accepted, in bytes. Default 20 MiB. */
  maxBytes?: number;
  /** Only the first `maxPics` URLs are fetched. Default 1000 (fastai's `max_pics`). */
  maxPics?: number;
}

/** What `downloadImages` did: files saved (in URL order) and URLs that failed, with the reason. */
export interface DownloadImagesResult {
  saved: string[];
  failed: { url: string; error: string }[];
}

/**
 * Download image `urls` into folder `dest` as `00000001.jpg`, `00000002.png`, ... (numbers
 * continue after files already there, so nothing is overwritten). Each file is written to a
 * `.part` and renamed when complete; failures are collected, not thrown.
 */
export async function downloadImages(urls: readonly string[], dest: string, opts: DownloadImagesOptions = {}): Promise<DownloadImagesResult> {
  const concurrency = opts.concurrency ?? 8;
  const timeoutMs = opts.timeoutMs ?? 4000;
  const maxBytes = opts.maxBytes ?? 20 * 1024 * 1024;
  const maxPics = opts.maxPics ?? 1000;
  await fs.promises.mkdir(dest, { recursive: true });
  let start = 0;
  for (const f of await fs.promises.readdir(dest)) {
    const m = /^(\d+)\./.exec(f);
    if (m) start = Math.max(start, Number(m[1]));
  }
  const todo = urls.slice(0, maxPics);
  type Outcome = { url: string; file: string } | { url: string; error: string };
  const results = await mapLimit(todo, concurrency, async (url, i): Promise<Outcome> => {
    let ext = ".jpg";
    try {
      const e = path.extname(new URL(url).pathname).toLowerCase();
      if (IMAGE_EXTENSIONS.includes(e)) ext = e;
    } catch {
      return { url, error: `invalid URL ${JSON.stringify(url)}` };
    }
    const file = path.join(dest, `${String(start + i + 1).padStart(8, "0")}${ext}`);
    try {
      await downloadFile(url, file, { connectTimeoutMs: timeoutMs, timeoutMs, totalTimeoutMs: timeoutMs, maxBytes, retries: 0, resume: false });
      return { url, file };
    } catch (e) {
      await fs.promises.rm(file + ".part", { force: true });
      return { url, error: (e as Error).message };
    }
  });
  const out: DownloadImagesResult = { saved: [], failed: [] };
  for (const r of results) {
    if ("file" in r) out.saved.push(r.file);
    else out.failed.push(r);
  }
  return out;
}

/** Whether `file` opens and fully decodes as an image (sharp: header, then every pixel). */
export async function verifyImage(file: string): Promise<boolean> {
  try {
    const st = await fs.promises.stat(file);
    if (!st.isFile() || st.size === 0) return false;
    const meta = await sharp(file).metadata();
    if (!meta.width || !meta.height) return false;
    // A full decode catches truncated files whose header is intact; warnings count as failures.
    await sharp(file, { failOn: "warning" }).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile() && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}

/**
 * Return the files that cannot be opened as images (zero bytes, not an image, truncated), so a
 * lesson can delete them; `files` is a list of paths or a folder (its image files, recursively).
 */
export async function verifyImages(files: readonly string[] | string, opts: { concurrency?: number } = {}): Promise<string[]> {
  const list = typeof files === "string" ? await listFiles(files) : files;
  const ok = await mapLimit(list, opts.concurrency ?? 4, (f) => verifyImage(f));
  return list.filter((_, i) => !ok[i]);
}
