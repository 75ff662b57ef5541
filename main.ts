/**
 * MXFlex command line: flags, config, start the server. Nothing else.
 *
 * Flags (one or two dashes, `-flag value` or `-flag=value`), as the seeds had them:
 * `-config`, `-host`, `-csta`, `-db`, `-debug`, `-logflag`; plus `-log-format`, `-help`,
 * `-version`.
 *
 * @module
 */
import { applyEnv, ConfigError, DEFAULT_DB, loadConfigFile } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { stdoutWireLogger } from "./lib/csta/wire_log.ts";
import { VERSION } from "./lib/version.ts";
import { supervise, withoutFlag } from "./lib/supervisor.ts";
import { defaultInstanceId, hostName, instanceIndex } from "./lib/instance.ts";
import { hostMode } from "./lib/listen/host_rule.ts";
import type { MxFlexServer } from "./app.ts";
import type { Listening } from "./lib/listen/listen.ts";
import { ListenError } from "./lib/listen/errors.ts";
import { HttpsStatus } from "./lib/listen/https_status.ts";
import { KvOpenError, openKv } from "./lib/store/open_kv.ts";

/** Parsed command-line flags. */
export interface Flags {
  config?: string;
  host?: string;
  db?: string;
  csta: boolean;
  debug: boolean;
  logflag?: number;
  logFormat: "text" | "json";
  help: boolean;
  version: boolean;
  /** `-instances N`: run N instances under a supervisor (default 1: this process serves). */
  instances: number;
  /** `-reuse-port`: bind the port with SO_REUSEPORT (set for supervised children). */
  reusePort: boolean;
}

const BOOL = new Set(["csta", "debug", "help", "h", "version", "reuse-port"]);
const VALUE = new Set(["config", "host", "db", "logflag", "log-format", "instances"]);

/** The usage text. */
export const USAGE = `Usage: mxflex [flags]
  -config filename   config file, YAML or JSON (default "mxflex.yaml", else "mxproxy.json")
  -host name         listen address; a domain name means HTTPS with Let's Encrypt
                     (default from config, else "localhost:8080")
  -db filename       Deno KV path or KV Connect URL (default "${DEFAULT_DB}")
  -csta              log every CSTA frame to stdout (secrets redacted)
  -debug             debug logging
  -logflag int       accepted for compatibility with the Go originals; ignored
  -log-format fmt    "text" (default) or "json"
  -instances N       run N instances sharing the port and the KV file (default 1)
  -reuse-port        share the port with other instances (needs --unstable-net)
  -version           print the version
  -help              this text`;

/**
 * Parses Go-style flags.
 * @throws {Error} on an unknown flag or a missing value
 *
 * @example
 * ```ts
 * parseFlags(["-config", "mxflex.yaml", "--debug"]).config; // "mxflex.yaml"
 * ```
 */
export function parseFlags(args: string[]): Flags {
  const f: Flags = {
    csta: false,
    debug: false,
    logFormat: "text",
    help: false,
    version: false,
    instances: 1,
    reusePort: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = a.match(/^--?([a-z-]+)(?:=(.*))?$/);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const [, name, inline] = m;
    if (BOOL.has(name)) {
      const v = inline === undefined || inline === "true" || inline === "1";
      if (name === "csta") f.csta = v;
      else if (name === "debug") f.debug = v;
      else if (name === "version") f.version = v;
      else if (name === "reuse-port") f.reusePort = v;
      else f.help = v;
      continue;
    }
    if (!VALUE.has(name)) throw new Error(`unknown flag -${name}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`flag -${name} needs a value`);
    if (name === "config") f.config = value;
    else if (name === "host") f.host = value;
    else if (name === "db") f.db = value;
    else if (name === "logflag") f.logflag = Number(value);
    else if (name === "instances") {
      f.instances = Number(value);
      if (!Number.isInteger(f.instances) || f.instances < 1 || f.instances > 64) {
        throw new Error("-instances is a whole number from 1 to 64");
      }
    } else if (name === "log-format") {
      if (value !== "text" && value !== "json") throw new Error("-log-format is text or json");
      f.logFormat = value;
    }
  }
  return f;
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** How long an instance on a shared port waits for its MX sessions before it joins the port. */
export const SHARED_PORT_READY_MS = 10_000;

/** How long a graceful stop may take before the process exits anyway (README: Operations). */
export const SHUTDOWN_BOUND_MS = 10_000;

/**
 * Runs the server until SIGINT/SIGTERM. Returns the exit code: 0 after a clean stop, 2 for a
 * start-up mistake (bad flags or config, a port in use or not permitted, a KV path that cannot
 * be opened, an unreadable TLS file), printed as one line naming what and why.
 *
 * @example
 * ```ts
 * if (import.meta.main) Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(args);
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.version) {
    console.log(`mxflex ${VERSION}`);
    return 0;
  }
  const index = instanceIndex((k) => Deno.env.get(k));
  const log = createLogger({
    level: flags.debug ? "debug" : "info",
    format: flags.logFormat,
    base: index === undefined ? undefined : { instance: index },
  });
  const configPath = flags.config ??
    ((await exists("mxflex.yaml"))
      ? "mxflex.yaml"
      : (await exists("mxproxy.json"))
      ? "mxproxy.json"
      : undefined);
  if (configPath === undefined) {
    log.error(
      `config: no mxflex.yaml or mxproxy.json in ${Deno.cwd()} (name a file with -config)`,
    );
    return 2;
  }
  let config;
  try {
    config = applyEnv(await loadConfigFile(configPath), (k) => Deno.env.get(k));
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error(`config: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (flags.host) config.host = flags.host;
  if (flags.db) config.db = flags.db;
  if (flags.instances > 1) return await superviseInstances(flags.instances, config, args, log);
  dropRunPermission();
  // Only a serving process loads the server: a supervisor stays small.
  const [{ MxFlexServer, resolvePath }, { listen }, { DirCertStore, KvCertStore }, { listenOps }] =
    await Promise.all([
      import("./app.ts"),
      import("./lib/listen/listen.ts"),
      import("./lib/listen/cert_store.ts"),
      import("./lib/listen/ops_listener.ts"),
    ]);
  const hostFrom = flags.host ? "-host" : Deno.env.get("MXFLEX_HOST") ? "MXFLEX_HOST" : "host";
  const dbFrom = flags.db ? "-db" : config.db ? "db" : "the default db";

  // Signals are ours before the "listening" line (and before the wait for the MX on a shared
  // port): a supervisor (or test) that sends SIGTERM as soon as it reads that line, or while
  // the instance starts, gets a graceful stop, not the default exit 143.
  const stop = new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  });
  // Start-up: every failure here is one line naming what and why, exit code 2.
  const sharedPort = flags.reusePort || index !== undefined;
  let kv: Deno.Kv | undefined;
  let server: MxFlexServer | undefined;
  let listener: Listening;
  let ops: Listening | undefined;
  const https = new HttpsStatus();
  try {
    kv = await openKv(config.db || DEFAULT_DB).catch((err) => {
      throw err instanceof KvOpenError ? new StartupError(`${err.message} (${dbFrom})`) : err;
    });
    server = await MxFlexServer.create({
      config,
      log,
      kv,
      https,
      wireLog: flags.csta ? stdoutWireLogger("csta") : undefined,
      instanceId: config.instanceId || defaultInstanceId(hostName(), index),
    });
    const acmeStore = config.acme.cacheDir
      ? new DirCertStore(resolvePath(config.baseDir, config.acme.cacheDir))
      : new KvCertStore(kv);
    // Listen before connecting to any MX: a port we cannot have ends the start quietly. On a
    // shared port the siblings serve meanwhile: join them once the MX sessions are up, so no
    // client lands here for 503s or a snapshot without presence (bounded: an MX that
    // is down does not keep this instance off the port).
    if (sharedPort) {
      server.start();
      await Promise.all(
        [...server.sessions.values()].map((s) =>
          s.ready(SHARED_PORT_READY_MS).catch(() =>
            log.warn(`MX ${s.name} not ready; joining the shared port anyway`)
          )
        ),
      );
    }
    const cfg = config;
    listener = await listen(server.fetch, {
      host: config.host,
      tls: config.tls
        ? {
          certFile: resolvePath(config.baseDir, config.tls.cert),
          keyFile: resolvePath(config.baseDir, config.tls.key),
        }
        : undefined,
      acme: {
        email: config.acme.email,
        directoryUrl: config.acme.directoryUrl,
        store: acmeStore,
        httpPort: config.acme.httpPort,
        httpsPort: config.acme.httpsPort,
      },
      https,
      log: (m, level) => log[level ?? "info"](m),
      // Supervised children share the port with their siblings.
      reusePort: sharedPort,
    }).catch((err) => {
      if (!(err instanceof ListenError)) throw err;
      const tlsKey = err.target === resolvePath(cfg.baseDir, cfg.tls?.cert ?? "")
        ? "tls.cert"
        : err.target === resolvePath(cfg.baseDir, cfg.tls?.key ?? "")
        ? "tls.key"
        : `${hostFrom} ${JSON.stringify(cfg.host)}`;
      throw new StartupError(`${err.message} (${tlsKey})`);
    });
    if (config.opsHost) {
      ops = await listenOps(server.fetch, config.opsHost, index).catch((err) => {
        throw err instanceof ListenError ? new StartupError(`${err.message} (opsHost)`) : err;
      });
    }
  } catch (err) {
    await server?.close();
    kv?.close();
    if (err instanceof StartupError || err instanceof ConfigError) {
      log.error(err instanceof ConfigError ? `config: ${err.message}` : err.message);
      return 2;
    }
    log.error(`start-up failed: ${err instanceof Error ? `${err.name}: ${err.message}` : err}`);
    if (flags.debug && err instanceof Error && err.stack) log.debug(err.stack);
    return 2;
  }
  if (!sharedPort) server.start();
  if (listener.httpAddr) {
    const h = listener.httpAddr;
    log.info(
      `MXFlex ${VERSION} listening on http://${h.hostname}:${h.port}/ (ACME challenges, ` +
        `/healthz, /readyz); ${listener.url} once the certificate is ready`,
    );
  } else {
    log.info(`MXFlex ${VERSION} listening on ${listener.url}`);
  }
  if (ops) log.info(`instance ${server.instanceId}: ops endpoints on ${ops.url}`);
  await Promise.race([stop, listener.finished]);
  log.info("shutting down");
  // Bounded: a stuck MX or client must not keep the process alive past the bound.
  const deadline = setTimeout(() => {
    log.error(`shutdown took longer than ${SHUTDOWN_BOUND_MS / 1000} s; exiting`);
    Deno.exit(1);
  }, SHUTDOWN_BOUND_MS);
  await server.close();
  await listener.shutdown();
  await ops?.shutdown();
  kv.close();
  clearTimeout(deadline);
  return 0;
}

/** A start-up mistake, already phrased as the one line to print. */
class StartupError extends Error {}

/**
 * `-instances N`: checks what several instances need, then supervises N children started with
 * the same arguments (minus `-instances`). Returns the exit code.
 */
async function superviseInstances(
  count: number,
  config: { host: string; tls?: unknown },
  args: string[],
  log: ReturnType<typeof createLogger>,
): Promise<number> {
  const mode = hostMode(config.host);
  if (mode.mode === "acme" && !config.tls) {
    // Each child would order its own certificate, and the CA's HTTP-01 check could reach a
    // sibling that does not know the challenge.
    log.error("-instances: Let's Encrypt needs one instance; use tls: {cert, key} or a proxy");
    return 2;
  }
  if (mode.port === 0) {
    log.error("-instances: host needs a fixed port for the instances to share");
    return 2;
  }
  log.info(`MXFlex ${VERSION}: supervising ${count} instances on ${config.host}`);
  return await supervise(count, withoutFlag(args, "instances"), log);
}

/** The server never starts programs; `--allow-run` (in `deno task start`) is for `-instances`. */
function dropRunPermission(): void {
  try {
    Deno.permissions.revokeSync({ name: "run" });
  } catch {
    // not available (Deno Deploy): nothing to drop
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
