/**
 * `--instances N`: runs N identical MXFlex processes on one host, so the server uses every
 * core. The children share the HTTP port (`SO_REUSEPORT`: the kernel spreads new connections
 * over them) and the KV file (tokens, keys, push state); each keeps its own MX session.
 *
 * The supervisor only supervises: it starts each child with the same arguments and
 * `MXFLEX_INSTANCE=<k>` (1…N), restarts a child that dies (1 s, doubling up to 30 s; back to
 * 1 s once a child has run for a minute), gives up when a child reports a configuration
 * error (exit code 2, which no restart fixes), and on SIGTERM or SIGINT forwards SIGTERM to
 * every child, waits for them (SIGKILL after 15 s) and exits 0. One child dying never touches
 * the others.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({
 *   count: 2,
 *   command: Deno.execPath(),
 *   args: ["run", "-A", "--unstable-kv", "--unstable-net", "main.ts", "-config", "mxflex.yaml"],
 *   log,
 * });
 * sup.start();
 * Deno.addSignalListener("SIGTERM", () => sup.stop());
 * Deno.exit(await sup.done);
 * ```
 *
 * @module
 */
import type { Logger } from "./log.ts";
import { INSTANCE_ENV } from "./instance.ts";

/** Options for {@link Supervisor}. */
export interface SupervisorOptions {
  /** Number of children (≥ 1). */
  count: number;
  /** Executable of a child. */
  command: string;
  /** Its arguments (the same for every child). */
  args: string[];
  /** Extra environment for every child (besides `MXFLEX_INSTANCE`). */
  env?: Record<string, string>;
  log: Logger;
  /** First restart delay, ms; default 1000. */
  initialBackoffMs?: number;
  /** Longest restart delay, ms; default 30000. */
  maxBackoffMs?: number;
  /** A child that ran this long restarts after the first delay again, ms; default 60000. */
  stableMs?: number;
  /** How long children get to stop before SIGKILL, ms; default 15000. */
  stopTimeoutMs?: number;
}

/** A child as {@link Supervisor.children} reports it. */
export interface ChildInfo {
  /** 1…N. */
  index: number;
  /** Current process id (undefined while waiting to restart). */
  pid?: number;
  /** Restarts so far. */
  restarts: number;
}

/** Exit code of a child that found its configuration unusable (`main.ts`). */
export const CONFIG_ERROR_EXIT = 2;

interface Slot {
  index: number;
  proc?: Deno.ChildProcess;
  restarts: number;
  backoffMs: number;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * Starts, watches and stops N children.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ count: 2, command, args, log });
 * sup.start();
 * console.log(sup.children()); // [{ index: 1, pid: 4242, restarts: 0 }, …]
 * ```
 */
export class Supervisor {
  /** Resolves with the supervisor's exit code once every child is gone after {@link stop}. */
  readonly done: Promise<number>;
  #o: SupervisorOptions;
  #slots: Slot[];
  #stopping = false;
  #exitCode = 0;
  #resolve!: (code: number) => void;

  /** @param o see {@link SupervisorOptions} */
  constructor(o: SupervisorOptions) {
    if (!Number.isInteger(o.count) || o.count < 1) throw new RangeError("count must be >= 1");
    this.#o = o;
    this.#slots = Array.from({ length: o.count }, (_, i) => ({
      index: i + 1,
      restarts: 0,
      backoffMs: o.initialBackoffMs ?? 1000,
    }));
    this.done = new Promise((r) => this.#resolve = r);
  }

  /** Starts every child. */
  start(): void {
    for (const s of this.#slots) this.#spawn(s);
  }

  /** The children now. */
  children(): ChildInfo[] {
    return this.#slots.map((s) => ({ index: s.index, pid: s.proc?.pid, restarts: s.restarts }));
  }

  /**
   * Stops every child (SIGTERM, then SIGKILL after `stopTimeoutMs`); {@link done} resolves
   * when all are gone. Safe to call more than once.
   */
  stop(exitCode = this.#exitCode): Promise<number> {
    if (this.#stopping) return this.done;
    this.#stopping = true;
    this.#exitCode = exitCode;
    const running = this.#slots.filter((s) => s.proc);
    for (const s of this.#slots) clearTimeout(s.timer);
    const timeoutMs = this.#o.stopTimeoutMs ?? 15_000;
    const kill = setTimeout(() => {
      for (const s of this.#slots) {
        if (!s.proc) continue;
        this.#o.log.warn(`supervisor: instance ${s.index} did not stop in ${timeoutMs} ms; killed`);
        signal(s.proc, "SIGKILL");
      }
    }, timeoutMs);
    for (const s of running) signal(s.proc, "SIGTERM");
    Promise.all(running.map((s) => s.proc!.status)).then(() => {
      clearTimeout(kill);
      this.#o.log.info(`supervisor: all ${this.#slots.length} instances stopped`);
      this.#resolve(this.#exitCode);
    });
    return this.done;
  }

  #spawn(s: Slot): void {
    if (this.#stopping) return;
    let proc: Deno.ChildProcess;
    try {
      proc = new Deno.Command(this.#o.command, {
        args: this.#o.args,
        env: { ...this.#o.env, [INSTANCE_ENV]: String(s.index) },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (err) {
      this.#o.log.error(`supervisor: instance ${s.index} not started: ${(err as Error).message}`);
      this.#scheduleRestart(s);
      return;
    }
    s.proc = proc;
    const started = Date.now();
    this.#o.log.info(`supervisor: instance ${s.index} started (pid ${proc.pid})`);
    proc.status.then((st) => {
      s.proc = undefined;
      if (this.#stopping) return;
      const how = st.signal ? `signal ${st.signal}` : `code ${st.code}`;
      if (st.code === CONFIG_ERROR_EXIT && !st.signal) {
        this.#o.log.error(`supervisor: instance ${s.index} exited with a configuration error`);
        void this.stop(CONFIG_ERROR_EXIT);
        return;
      }
      if (Date.now() - started >= (this.#o.stableMs ?? 60_000)) {
        s.backoffMs = this.#o.initialBackoffMs ?? 1000;
      }
      this.#o.log.warn(
        `supervisor: instance ${s.index} (pid ${proc.pid}) exited (${how}); restarting in ${s.backoffMs} ms`,
      );
      this.#scheduleRestart(s);
    });
  }

  #scheduleRestart(s: Slot): void {
    const delay = s.backoffMs;
    s.backoffMs = Math.min(delay * 2, this.#o.maxBackoffMs ?? 30_000);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.restarts++;
      this.#spawn(s);
    }, delay);
  }
}

function signal(proc: Deno.ChildProcess | undefined, sig: Deno.Signal): void {
  try {
    proc?.kill(sig);
  } catch {
    // already gone
  }
}

/**
 * How to start one more of this very program: the same executable and entry module, the
 * permissions this process holds in full (`--allow-net`, `-read`, `-write`, `-env`, `-sys`;
 * partial grants such as `--allow-read=/etc` are not forwarded), `--unstable-kv`,
 * `--unstable-net` (for `reusePort`) and `--no-prompt`. A `deno compile` binary is started as
 * itself (its flags are built in).
 *
 * @example
 * ```ts
 * const { command, args } = selfCommand(["-config", "mxflex.yaml"]);
 * ```
 */
export function selfCommand(scriptArgs: string[]): { command: string; args: string[] } {
  if (Deno.build.standalone) return { command: Deno.execPath(), args: scriptArgs };
  const flags = ["run", "--no-prompt", "--unstable-kv", "--unstable-net"];
  for (const name of ["net", "read", "write", "env", "sys"] as const) {
    if (Deno.permissions.querySync({ name }).state === "granted") flags.push(`--allow-${name}`);
  }
  const main = decodeURIComponent(new URL(Deno.mainModule).pathname);
  return { command: Deno.execPath(), args: [...flags, main, ...scriptArgs] };
}

/**
 * Runs `count` children of this program with `scriptArgs` until SIGTERM/SIGINT; returns the
 * exit code (0, or 2 when a child found the configuration unusable).
 *
 * @example
 * ```ts
 * Deno.exit(await supervise(2, ["-config", "mxflex.yaml"], log));
 * ```
 */
export async function supervise(count: number, scriptArgs: string[], log: Logger): Promise<number> {
  const sup = new Supervisor({ count, ...selfCommand(scriptArgs), log });
  const onSignal = () => {
    log.info("supervisor: stopping every instance");
    void sup.stop();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  sup.start();
  try {
    return await sup.done;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/**
 * `args` without one value flag (`-name v`, `--name v`, `-name=v`): a child must not
 * supervise again.
 *
 * @example
 * ```ts
 * withoutFlag(["-instances", "2", "-config", "x.yaml"], "instances"); // ["-config", "x.yaml"]
 * ```
 */
export function withoutFlag(args: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const m = args[i].match(/^--?([a-z-]+)(=.*)?$/);
    if (m?.[1] === name) {
      if (m[2] === undefined) i++;
      continue;
    }
    out.push(args[i]);
  }
  return out;
}
