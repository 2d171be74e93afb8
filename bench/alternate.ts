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

/** The longest one command may take before the server counts as hung. */
const ANSWER_TIMEOUT_MS = 10 * 60 * 1000;

/** A child process answering one JSON line per command line (see the servers in bench/*.py and learner-fit.ts). */
export class LineServer {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly pending: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  private dead?: string;

  constructor(private readonly name: string, command: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env: env ?? process.env });
    const lines = readline.createInterface({ input: this.child.stdout });
    lines.on("line", (l) => {
      // a server's other output (warnings, a report) passes through; only JSON lines answer
      if (!l.startsWith("{")) {
        if (l.trim()) console.log(`  ${name}: ${l}`);
        return;
      }
      const p = this.pending.shift();
      if (!p) return;
      try {
        p.resolve(JSON.parse(l) as Record<string, unknown>);
      } catch {
        p.reject(new Error(`${name} answered a line that is not JSON: ${l.slice(0, 80)}`));
      }
    });
    const fail = (why: string) => {
      this.dead ??= why;
      for (const p of this.pending.splice(0)) p.reject(new Error(`${name} ${this.dead}`));
    };
    this.child.on("error", (e) => fail(`could not start: ${e.message}`));
    this.child.on("exit", (code, signal) => fail(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    this.child.stdin.on("error", () => undefined); // a write to a dead child: reported by "exit"
  }

  /** Sends one command; resolves with the server's JSON answer (an `error` field in it rejects). */
  ask(command: string): Promise<Record<string, unknown>> {
    if (this.dead) return Promise.reject(new Error(`${this.name} ${this.dead}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`${this.name} gave no answer to '${command}' in ${ANSWER_TIMEOUT_MS / 60000} minutes`));
      }, ANSWER_TIMEOUT_MS);
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

  /** Asks for `n` timed units; the answer's `times` (seconds each), checked to be `n` finite positive numbers. */
  async times(command: string, n: number): Promise<number[]> {
    const r = await this.ask(`${command} ${n}`);
    const t = r.times;
    if (!Array.isArray(t) || t.length !== n || !t.every((v) => typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw new Error(`${this.name} answered '${command} ${n}' without ${n} times: ${JSON.stringify(r).slice(0, 80)}`);
    }
    return t as number[];
  }

  /** Ends the server (stdin closed; killed if it is still there a few seconds later). */
  close(): void {
    if (this.dead) return;
    this.child.stdin.end();
    setTimeout(() => {
      if (!this.dead) this.child.kill("SIGKILL");
    }, 5000).unref();
  }
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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
 * order given in even rounds, reversed in odd ones (A B C, C B A, ...), so that each side runs as often
 * early as late, each after a pause of `settleMs` with both sides idle. A side that throws is dropped from then on and named in the note; the others go on.
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
