/**
 * Timing two sides in turns, so that the machine's slow spells fall on both.
 *
 * On the shared 2-core machines one side's median of a few steps, timed as a block before or after the
 * other's, moved by ±20 % from run to run (PyTorch's ResNet-18 training at 64 px: 91–116 img/s in three
 * back-to-back runs). Here each timed unit (a step, or a whole epoch) runs on one side and then on the
 * other, the order swapped every round (A B, B A, A B, ...), and each side keeps the median of its own
 * units. The reference runs as a long-lived child process ("a server"), so that nothing but the unit
 * itself is timed on its side: it reads one command a line on stdin and answers one JSON line on stdout.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import * as readline from "node:readline";

/** The longest one command may take before the server counts as hung (LineServer's `timeoutMs`). */
const ANSWER_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * A child process answering one line per command line (the servers in bench/*.py and learner-fit.ts). An
 * answer is a JSON object with `times` or `error`; any other line the child prints is passed through, indented.
 * A server that exits, hangs past `timeoutMs` or answers out of protocol is dead: every command after it fails.
 */
export class LineServer {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly pending: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  private dead?: string;
  private exited = false;
  private readonly timeoutMs: number;

  constructor(private readonly name: string, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? ANSWER_TIMEOUT_MS;
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env: opts.env ?? process.env });
    const lines = readline.createInterface({ input: this.child.stdout });
    lines.on("line", (l) => {
      const answer = asAnswer(l);
      if (!answer) {
        if (l.trim()) console.log(`  ${name}: ${l}`);
        return;
      }
      const p = this.pending.shift();
      if (p) p.resolve(answer);
      else this.kill(`answered when nothing was asked: ${l.slice(0, 80)}`);
    });
    this.child.on("error", (e) => {
      this.exited = true;
      this.fail(`could not start: ${e.message}`);
    });
    // "close", not "exit": the child's last lines are read by then
    this.child.on("close", (code, signal) => {
      this.exited = true;
      this.fail(signal ? `was killed by ${signal}` : `exited with code ${code}`);
    });
    this.child.stdin.on("error", () => undefined); // a write to a dead child: reported by "close"
  }

  private fail(why: string): void {
    this.dead ??= why;
    for (const p of this.pending.splice(0)) p.reject(new Error(`${this.name} ${this.dead}`));
  }

  /** Marks the server dead (every pending and later command fails with `why`) and kills it. */
  private kill(why: string): void {
    this.fail(why);
    this.child.kill("SIGKILL");
  }

  /** Sends one command; resolves with the server's answer (an answer with `error` rejects). */
  ask(command: string): Promise<Record<string, unknown>> {
    if (this.dead) return Promise.reject(new Error(`${this.name} ${this.dead}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.kill(`gave no answer to '${command}' in ${this.timeoutMs / 1000} s`), this.timeoutMs);
      const done = <T>(f: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        f(v);
      };
      this.pending.push({
        resolve: done((v: Record<string, unknown>) =>
          typeof v.error === "string" ? reject(new Error(`${this.name}: ${v.error}`)) : resolve(v)),
        reject: done(reject),
      });
      this.child.stdin.write(command + "\n");
    });
  }

  /** Asks for `n` timed units; the answer's `times` (seconds each), which must be `n` finite positive numbers. */
  async times(command: string, n: number): Promise<number[]> {
    const r = await this.ask(`${command} ${n}`);
    const t = r.times;
    if (!Array.isArray(t) || t.length !== n || !t.every((v) => typeof v === "number" && Number.isFinite(v) && v > 0)) {
      // out of step with its commands from here on: no later answer can be trusted
      const why = `answered '${command} ${n}' without ${n} times: ${JSON.stringify(r).slice(0, 80)}`;
      this.kill(why);
      throw new Error(`${this.name} ${why}`);
    }
    return t as number[];
  }

  /** Ends the server (stdin closed; killed if it is still there 5 s later); later commands fail. */
  close(): void {
    if (this.exited) return;
    this.fail("was closed");
    this.child.stdin.end();
    setTimeout(() => {
      if (!this.exited) this.child.kill("SIGKILL");
    }, 5000).unref();
  }
}

/** A server's answer: a JSON object with `times` or `error`; undefined for any other line. */
function asAnswer(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v) && ("times" in v || "error" in v)) return v as Record<string, unknown>;
  } catch {
    // a report line that starts with a brace
  }
  return undefined;
}

/** The middle value; for an even count, the mean of the two middle ones. */
export function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** One side of a comparison: times `n` units and returns their seconds. */
export type Side = (n: number) => Promise<number[]>;

export interface Alternated<K extends string> {
  /** Median seconds of a unit on each side; absent where that side failed (the note says why). */
  median: Partial<Record<K, number>>;
  /** The sides' names in the order their timed units ran, e.g. "ours theirs theirs ours". */
  order: string[];
  note?: string;
}

/** The pause before each timed unit (see `alternate`). */
export const SETTLE_MS = 50;

/**
 * `warmup` untimed units on each side, then `rounds` rounds of one unit on every side: the sides in the
 * order given in even rounds, reversed in odd ones (A B C, C B A, ...), so that over an even number of
 * rounds each side runs as often early as late; each unit after an untimed pause of `settleMs` with every
 * side idle. A side that throws is dropped from then on and named in the note; the others go on.
 */
export async function alternate<K extends string>(sides: Record<K, Side>, rounds: number, warmup: number, settleMs = SETTLE_MS): Promise<Alternated<K>> {
  const all = (Object.keys(sides) as K[]).map((name) => ({ name, run: sides[name], times: [] as number[], why: undefined as string | undefined }));
  const order: string[] = [];
  const once = async (s: (typeof all)[number], n: number, timed: boolean) => {
    if (s.why) return;
    try {
      const t = await s.run(n);
      if (timed) {
        s.times.push(...t);
        order.push(s.name);
      }
    } catch (e) {
      s.why = `${s.name}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
    }
  };
  if (warmup > 0) for (const s of all) await once(s, warmup, false);
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 === 0 ? all : [...all].reverse()) {
      // untimed: the side before may still have threads spinning (OpenMP waits busy a while after a
      // parallel region: PyTorch's libgomp longer than tsfast's 1,000 rounds); let them go to sleep
      if (settleMs > 0) await new Promise((res) => setTimeout(res, settleMs));
      await once(s, 1, true);
    }
  }
  const med: Partial<Record<K, number>> = {};
  for (const s of all) if (!s.why && s.times.length > 0) med[s.name] = median(s.times);
  const notes = all.map((s) => s.why).filter(Boolean);
  return { median: med, order, note: notes.length ? notes.join("; ") : undefined };
}

/** Seconds of `n` calls of a synchronous step, each timed on its own. */
export function timeSync(step: () => void, n: number): number[] {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    step();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return ts;
}
