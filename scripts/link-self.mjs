// Make `import ... from "tsfast"` resolve to this checkout for notebooks and scripts inside it:
// node_modules/tsfast -> .. (relative, so the checkout can move).
import { lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const link = join(root, "node_modules", "tsfast");
mkdirSync(join(root, "node_modules"), { recursive: true });
let current = null;
try {
  if (lstatSync(link).isSymbolicLink()) current = readlinkSync(link);
  else throw new Error(`${link} exists and is not a symlink; remove it`);
} catch (e) {
  if (e.code !== "ENOENT") throw e;
}
if (current !== "..") {
  if (current !== null) unlinkSync(link);
  symlinkSync("..", link, "dir");
}
