/**
 * MXFlex as real processes, for the multi-instance tests and benchmarks: `main.ts` started with
 * a config file that points at a simulator running in the test process, each instance's
 * output collected ({@link Program}) so a test can wait for a positive marker in it
 * (`listening on …`, the supervisor's `instance 2 started (pid …)`), and every process
 * stopped at the end.
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
import { Program } from "./program.ts";
import { waitForUrl, waitUntil } from "./wait.ts";
import { MxSimulator, type SimOptions } from "../../lib/mxsim/mod.ts";
import { CERT, KEY } from "./harness.ts";

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
export type MxflexProcess = Program;

/**
 * Starts `main.ts` with `args` (see {@link Program.start}: `--unstable-net`, so instances can
 * share a port).
 *
 * @example
 * ```ts
 * const sup = startMxflex(mxflexArgs({ config, db, host: "127.0.0.1:8080", instances: 2 }));
 * await sup.waitFor(/instance \d started/g, { count: 2 });
 * ```
 */
export function startMxflex(args: string[], env: Record<string, string> = {}): MxflexProcess {
  return Program.start("main.ts", args, { env });
}

/**
 * The command line of `main.ts` for a config and KV file, on `host` when given, under a
 * supervisor of `instances` children when that is above 1.
 *
 * @example
 * ```ts
 * startMxflex(mxflexArgs({ config, db, host: `127.0.0.1:${port}`, instances: 3 }));
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
  const p = startMxflex([...mxflexArgs(o), ...(o.args ?? [])]);
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
  await waitForUrl(`${url}/readyz`, {
    ok: (r) => r.status === 200,
    what: () => `${url}/readyz 200:\n${log()}`,
    timeoutMs: 20_000,
  });
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
