/**
 * Child processes for tests and benchmarks, the one way: MXFlex's real programs (`main.ts`,
 * `demo.ts`) run the way an operator runs them (`deno run … main.ts -config …`), or any other
 * command (pebble, a bundle); stdout and stderr are collected, and a test waits for a positive
 * marker in them (a line, or a count of matches) instead of sleeping.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);

/** Options of {@link Program.spawn}. */
export interface SpawnOptions {
  /** Extra environment variables (the rest is inherited). */
  env?: Record<string, string>;
  /** Working directory; default this process's. */
  cwd?: string;
}

/** Options of {@link Program.start}. */
export interface ProgramOptions extends SpawnOptions {
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
  /** Its process id. */
  readonly pid: number;
  #child: Deno.ChildProcess;
  #stderr = "";
  #stdout = "";
  #log = "";
  #exited = false;
  #waiters = new Set<() => void>();

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    const drain = async (s: ReadableStream<Uint8Array>, err: boolean) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        if (err) this.#stderr += chunk;
        else this.#stdout += chunk;
        this.#log += chunk;
        for (const w of this.#waiters) w();
      }
    };
    const drained = Promise.all([drain(child.stdout, false), drain(child.stderr, true)]);
    this.status = child.status.then(async (s) => {
      await drained;
      this.#exited = true;
      for (const w of this.#waiters) w();
      return s;
    });
  }

  /**
   * Starts any command (`argv[0]` with the rest as arguments), stdin closed.
   *
   * @example
   * ```ts
   * const pebble = Program.spawn(["pebble", "-config", path], { env: { PEBBLE_VA_NOSLEEP: "1" } });
   * ```
   */
  static spawn(argv: string[], o: SpawnOptions = {}): Program {
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: o.cwd,
      env: o.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new Program(child);
  }

  /**
   * Starts `deno run --unstable-kv --unstable-net -A <script> ...args` in the repository root
   * (`--unstable-net`, as `deno task start` has it, so instances can share a port), without
   * colours.
   *
   * @example
   * ```ts
   * const p = Program.start("main.ts", ["-config", path, "-instances", "2"]);
   * ```
   */
  static start(script: "main.ts" | "demo.ts", args: string[], o: ProgramOptions = {}): Program {
    const deno = [
      Deno.execPath(),
      "run",
      "--unstable-kv",
      "--unstable-net",
      "-A",
      new URL(script, ROOT).pathname,
    ];
    return Program.spawn([...(o.wrap ?? []), ...deno, ...args], {
      cwd: o.cwd ?? new URL(".", ROOT).pathname,
      env: { NO_COLOR: "1", ...o.env },
    });
  }

  /** Everything printed on stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Everything printed on stdout so far. */
  get stdout(): string {
    return this.#stdout;
  }

  /** Everything printed on either stream so far, in arrival order. */
  get log(): string {
    return this.#log;
  }

  /** Whether the program has exited (and its output is drained). */
  get exited(): boolean {
    return this.#exited;
  }

  /** Non-empty stderr lines so far. */
  get stderrLines(): string[] {
    return this.#stderr.split("\n").filter((l) => l.trim() !== "");
  }

  /**
   * Resolves with the first line (stdout or stderr) matching `re`; rejects when the program
   * exits without printing one, or after `timeoutMs` (a bound against hangs, not a timing
   * assertion).
   *
   * @example
   * ```ts
   * const line = await p.waitForLine(/listening on (\S+)/);
   * ```
   */
  waitForLine(re: RegExp, timeoutMs = 20_000): Promise<string> {
    return this.#until(
      () => `${this.#stdout}\n${this.#stderr}`.split("\n").find((l) => re.test(l)),
      `${re}`,
      timeoutMs,
    );
  }

  /**
   * Resolves with every match of `re` in the output once there are `count` (default 1); with
   * the `g` flag or without, matches are counted over the whole output. Rejects like
   * {@link waitForLine}.
   *
   * @example
   * ```ts
   * await sup.waitFor(/instance (\d) started/g, { count: 3 });
   * ```
   */
  waitFor(
    re: RegExp,
    o: { count?: number; timeoutMs?: number } = {},
  ): Promise<RegExpMatchArray[]> {
    const global = re.global ? re : new RegExp(re.source, re.flags + "g");
    return this.#until(
      () => {
        const all = [...this.#log.matchAll(global)];
        return all.length >= (o.count ?? 1) ? all : undefined;
      },
      `${re}${o.count ? ` ${o.count} times` : ""}`,
      o.timeoutMs ?? 20_000,
    );
  }

  /** Settles with `find()`'s first defined answer, checked whenever output arrives. */
  #until<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) return done(() => resolve(found));
        if (this.#exited) {
          done(() => reject(new Error(`exited without ${what}:\n${this.output()}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no ${what} in ${timeoutMs} ms:\n${this.output()}`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
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

  /**
   * SIGTERM, then SIGKILL after `ms`; resolves with the exit status.
   *
   * @example
   * ```ts
   * assert.equal((await p.stop()).code, 0);
   * ```
   */
  async stop(ms = 15_000): Promise<Deno.CommandStatus> {
    if (!this.#exited) this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      return await this.status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Both streams, for assertion messages. */
  output(): string {
    return `--- stdout\n${this.#stdout}--- stderr\n${this.#stderr}`;
  }
}
