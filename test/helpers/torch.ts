/** Run a Python snippet with Debian's PyTorch and parse the JSON it prints (fails clearly without torch). */
import { execFileSync } from "node:child_process";

export function torchJson<T>(code: string): T {
  const prelude = "import json, torch\ntorch.set_num_threads(2)\n";
  let out: string;
  try {
    out = execFileSync("/usr/bin/python3", ["-c", prelude + code], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 2 ** 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`PyTorch reference failed (is python3-torch installed? apt-get install python3-torch): ${err.stderr ?? err.message}`);
  }
  return JSON.parse(out.trim().split("\n").pop()!) as T;
}
