/**
 * Runs MXFlex's real programs (`main.ts`, `demo.ts`) as subprocesses, the way an operator
 * does (`deno run … main.ts -config …`), and reads what they print line by line.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);

/** Options of {@link Program.start}. */
export interface ProgramOptions {
  /** Extra environment variables (the rest is inherited). */
  env?: Record<string, string>;
  /** Working directory; default the repository root. */
  cwd?: string;
  /** A command the program runs under, e.g. `["setpriv", "--bounding-set", "-net_bind_service"]`. */
  wrap?: string[];
}

/**
 * A running program.
 *
 * @example
 * ```ts
 * const p = Program.start("main.ts", ["-config", path]);
 * await p.waitForLine(/listening on/);
 * p.kill("SIGTERM");
 * assert.equal((await p.status).code, 0);
 * ```
 */
export class Program {
  /** Settles when the program exited (stdout and stderr drained). */
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #stderr = "";
  #stdout = "";
  #waiters = new Set<() => void>();

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    const drain = async (s: ReadableStream<Uint8Array>, err: boolean) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        if (err) this.#stderr += chunk;
        else this.#stdout += chunk;
        for (const w of this.#waiters) w();
      }
    };
    const drained = Promise.all([drain(child.stdout, false), drain(child.stderr, true)]);
    this.status = child.status.then(async (s) => {
      await drained;
      for (const w of this.#waiters) w();
      return s;
    });
  }

  /** Starts `deno run --unstable-kv -A <script> ...args`. */
  static start(script: "main.ts" | "demo.ts", args: string[], o: ProgramOptions = {}): Program {
    const deno = [Deno.execPath(), "run", "--unstable-kv", "-A", new URL(script, ROOT).pathname];
    const argv = [...(o.wrap ?? []), ...deno, ...args];
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: o.cwd ?? new URL(".", ROOT).pathname,
      env: { NO_COLOR: "1", ...o.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new Program(child);
  }

  /** Everything printed on stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Everything printed on stdout so far. */
  get stdout(): string {
    return this.#stdout;
  }

  /** Non-empty stderr lines so far. */
  get stderrLines(): string[] {
    return this.#stderr.split("\n").filter((l) => l.trim() !== "");
  }

  /**
   * Resolves with the first line (stdout or stderr) matching `re`; rejects when the program
   * exits without printing one, or after `timeoutMs` (a bound against hangs, not a timing
   * assertion).
   */
  waitForLine(re: RegExp, timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      let exited = false;
      const check = () => {
        const line = `${this.#stdout}\n${this.#stderr}`.split("\n").find((l) => re.test(l));
        if (line !== undefined) return done(() => resolve(line));
        if (exited) done(() => reject(new Error(`exited without ${re}:\n${this.output()}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no ${re} in ${timeoutMs} ms:\n${this.output()}`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
      void this.status.then(() => {
        exited = true;
        check();
      });
      check();
    });
  }

  /** Sends a signal (ignored once the program has exited). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
  }

  /** Both streams, for assertion messages. */
  output(): string {
    return `--- stdout\n${this.#stdout}--- stderr\n${this.#stderr}`;
  }
}
