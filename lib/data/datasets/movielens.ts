/**
 * MovieLens ratings, offline: the `movielens` data frame of Debian's `r-cran-dslabs` (100,004
 * ratings of 9,066 movies by 671 users, with titles and genres; a sample of GroupLens' MovieLens
 * "latest-small" as of 2016, packaged by R. A. Irizarry's dslabs, Artistic-2.0). R keeps it as
 * lazy-load data, so it is converted once with `Rscript` (Debian `r-base-core`) into a plain CSV:
 *
 *   $TSFAST_HOME/data/movielens/ratings.csv   userId,movieId,rating,timestamp,title,year,genres
 *
 * Set `TSFAST_MOVIELENS_CSV` to a ratings CSV of your own to skip R entirely.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildFolderOnce, type DatasetFolderOptions } from "./folder";

/** The Rscript program run by `movieLens` (written to a file: its path is its only argument). */
const R_EXPORT = `
args <- commandArgs(trailingOnly = TRUE)
data("movielens", package = "dslabs")
m <- movielens
m$genres <- as.character(m$genres)
out <- m[, c("userId", "movieId", "rating", "timestamp", "title", "year", "genres")]
write.csv(out, args[1], row.names = FALSE, na = "")
`;

/** Rows of the dslabs `movielens` frame (checked after the conversion). */
export const MOVIELENS_ROWS = 100004;

/**
 * The MovieLens ratings CSV (see the module note); built once. Throws, naming the Debian packages
 * to install, when `Rscript` or dslabs is missing.
 */
export async function movieLens(opts: DatasetFolderOptions = {}): Promise<string> {
  const own = process.env["TSFAST_MOVIELENS_CSV"];
  if (own && own.trim()) {
    if (!fs.existsSync(own)) throw new Error(`movieLens: TSFAST_MOVIELENS_CSV names ${own}, which does not exist`);
    return path.resolve(own);
  }
  const dir = await buildFolderOnce("movielens", { source: "r-cran-dslabs movielens", rows: MOVIELENS_ROWS, version: 1 }, opts, async (tmp) => {
    const script = path.join(tmp, "export.R");
    fs.writeFileSync(script, R_EXPORT);
    const csv = path.join(tmp, "ratings.csv");
    try {
      execFileSync("Rscript", ["--vanilla", script, csv], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      const why = err.code === "ENOENT" ? "Rscript is not installed" : (err.stderr?.toString().trim() ?? err.message);
      throw new Error(
        `movieLens: converting dslabs' movielens with Rscript failed (${why}); install the Debian packages: ` +
          `apt-get install -y --no-install-recommends r-base-core r-cran-dslabs (or set TSFAST_MOVIELENS_CSV to a ratings CSV)`,
      );
    }
    fs.rmSync(script);
    const lines = fs.readFileSync(csv, "utf8").split("\n").filter((l) => l !== "").length - 1;
    if (lines < MOVIELENS_ROWS) throw new Error(`movieLens: Rscript wrote ${lines} rows to ${csv}, expected ${MOVIELENS_ROWS} (some lines hold quoted newlines?)`);
  });
  return path.join(dir, "ratings.csv");
}
