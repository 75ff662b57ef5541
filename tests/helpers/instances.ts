/**
 * MXFlex as real processes, for the multi-instance tests and benchmarks: `main.ts` started with
 * a config file that points at a simulator running in the test process, each instance's log
 * (stderr) collected so a test can wait for a positive marker in it (`listening on …`, the
 * supervisor's `instance 2 started (pid …)`), and every process stopped at the end.
 *
 * @example
 * ```ts
 * const dir = await Deno.makeTempDir();
 * const config = await writeInstanceConfig(dir, sim.port);
 * const a = await startInstance({ config, db: `${dir}/kv.db` });
 * await fetch(`${a.url}/readyz`);
 * await a.stop();
 * ```
 *
 * @module
 */
import { waitUntil } from "./wait.ts";
import { MxSimulator, type SimOptions } from "../../lib/mxsim/mod.ts";
import { CERT, KEY } from "./harness.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Writes a config for instances of MXFlex against the simulator on `simPort`; returns its path. */
export async function writeInstanceConfig(
  dir: string,
  simPort: number,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const path = `${dir}/mxflex.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      host: "127.0.0.1:0",
      mx: { test: { addr: `127.0.0.1:${simPort}`, login: "server", password: "password" } },
      requestTimeoutMs: 2000,
      ...extra,
    }),
  );
  return path;
}

/** A running `main.ts` process (one instance, or a supervisor). */
export class MxflexProcess {
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  #proc: Deno.ChildProcess;
  #log = "";

  /** Starts `main.ts` with `args` (and `--unstable-net` so ports can be shared). */
  constructor(args: string[], env: Record<string, string> = {}) {
    this.#proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "--unstable-kv", "--unstable-net", "-A", MAIN, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#proc.pid;
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) this.#log += chunk;
    };
    const drained = Promise.all([drain(this.#proc.stdout), drain(this.#proc.stderr)]);
    this.status = this.#proc.status.then(async (st) => {
      await drained;
      return st;
    });
    this.status.then(() => this.#exited = true);
  }

  #exited = false;

  /** Everything the process (and its children) wrote so far. */
  get log(): string {
    return this.#log;
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Waits until the log matches `re` (`g` flag: until it matches `count` times) and returns
   * the matches. Fails early when the process exits.
   */
  async waitFor(
    re: RegExp,
    o: { count?: number; timeoutMs?: number } = {},
  ): Promise<RegExpMatchArray[]> {
    const all = () => [...this.#log.matchAll(re.global ? re : new RegExp(re.source, "g"))];
    await waitUntil(() => {
      if (all().length >= (o.count ?? 1)) return true;
      if (this.#exited) throw new Error(`process exited before ${re}:\n${this.#log}`);
      return false;
    }, { what: () => `${re} in the log:\n${this.#log}`, timeoutMs: o.timeoutMs ?? 20_000 });
    return all();
  }

  /** Sends a signal (ignored when already gone). */
  kill(sig: Deno.Signal = "SIGTERM"): void {
    try {
      this.#proc.kill(sig);
    } catch {
      // exited already
    }
  }

  /** SIGTERM, then SIGKILL after `ms`; resolves with the exit status. */
  async stop(ms = 15_000): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      return await this.status;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The command line of `main.ts` for a config and KV file, on `host` when given, under a
 * supervisor of `instances` children when that is above 1.
 *
 * @example
 * ```ts
 * new MxflexProcess(mxflexArgs({ config, db, host: `127.0.0.1:${port}`, instances: 3 }));
 * ```
 */
export function mxflexArgs(o: { config: string; db: string; host?: string; instances?: number }) {
  const args = ["-config", o.config, "-db", o.db];
  if (o.host) args.push("-host", o.host);
  if ((o.instances ?? 1) > 1) args.push("-instances", String(o.instances));
  return args;
}

/** One instance with its HTTP base URL. */
export interface Instance extends MxflexProcess {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
}

/**
 * Starts one instance (`-config`, `-db`, optional `-host`) and waits until it listens and its
 * MX session is up (`/readyz` 200).
 */
export async function startInstance(o: {
  config: string;
  db: string;
  host?: string;
  args?: string[];
}): Promise<Instance> {
  const p = new MxflexProcess([...mxflexArgs(o), ...(o.args ?? [])]);
  try {
    const [m] = await p.waitFor(/listening on (http\S+?)\/?(\s|$)/);
    const inst = Object.assign(p, { url: m[1] }) as Instance;
    await waitReady(inst.url, () => p.log);
    return inst;
  } catch (err) {
    await p.stop();
    throw err;
  }
}

/** Waits until `url/readyz` answers 200 (every MX session of that instance connected). */
export async function waitReady(url: string, log: () => string = () => ""): Promise<void> {
  await waitUntil(async () => {
    try {
      const res = await fetch(`${url}/readyz`);
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }, { what: () => `${url}/readyz 200:\n${log()}`, timeoutMs: 20_000 });
}

/** A free TCP port on 127.0.0.1 (bound and released; for a port instances must share). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Stops every process, whatever state each is in. */
export async function stopAll(ps: (MxflexProcess | undefined)[]): Promise<void> {
  await Promise.all(ps.map((p) => p?.stop()));
}

/** What {@link withInstancesEnv} gives a test: the simulator, a temporary directory, a KV path. */
export interface InstancesEnv {
  sim: MxSimulator;
  dir: string;
  /** A KV file for the instances to share (in `dir`). */
  db: string;
}

/**
 * Runs `fn` with a simulator (TLS, `simOpts`) and a temporary directory for the instances'
 * config and KV file; closes and removes both afterwards.
 *
 * @example
 * ```ts
 * await withInstancesEnv(async ({ sim, dir, db }) => {
 *   const a = await startInstance({ config: await writeInstanceConfig(dir, sim.port), db });
 *   await a.stop();
 * });
 * ```
 */
export async function withInstancesEnv(
  fn: (e: InstancesEnv) => Promise<void>,
  simOpts: SimOptions = {},
): Promise<void> {
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY }, ...simOpts });
  const dir = await Deno.makeTempDir();
  try {
    await fn({ sim, dir, db: `${dir}/kv.db` });
  } finally {
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Status of `GET /api/contacts` with the token (on a fresh connection). */
export async function contactsStatus(url: string, token: string): Promise<number> {
  const res = await fetch(`${url}/api/contacts`, {
    headers: { authorization: `Bearer ${token}`, connection: "close" },
  });
  await res.body?.cancel();
  return res.status;
}

/** Waits until `sessions` MX sessions (one per instance) monitor `ext`. */
export async function monitoring(sim: MxSimulator, ext: string, sessions: number): Promise<void> {
  await waitUntil(
    () => sim.monitorCount(ext) === sessions,
    { what: `${sessions} MX monitors on ${ext}` },
  );
}
