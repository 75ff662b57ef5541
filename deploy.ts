/**
 * Deno Deploy entry point (also runs locally with `deno serve`): `export default { fetch }`.
 *
 * Configuration comes from the environment, not from files:
 *
 * - `MXFLEX_CONFIG`: the whole config inline, YAML or JSON (the same formats as
 *   `mxflex.yaml` / `mxproxy.json`, detected by content);
 * - or, without it, `MXFLEX_MX_ADDR` + `MXFLEX_MX_LOGIN` + `MXFLEX_MX_PASSWORD` describe
 *   the single MX of the Flex API;
 * - the single-key overrides of `applyEnv` (lib/config.ts) apply on top: `MXFLEX_MX_ADDR`,
 *   `MXFLEX_MX_LOGIN`, `MXFLEX_MX_PASSWORD`, `MXFLEX_TOKEN_TTL`, `MXFLEX_DB`, `MXFLEX_HOST`
 *   (the last is accepted but unused: Deploy does the listening and TLS).
 *
 * Deno KV is opened with `Deno.openKv()` (the project's database on Deploy) unless
 * `MXFLEX_DB` names a path or KV Connect URL. The server is assembled and its MX
 * connections started on the first request, which waits (bounded) for the MX login so a
 * cold start does not answer 503. Logs are JSON lines on stderr.
 *
 * On Deploy the MX must be reachable over outbound TLS (port 7778 by default), and the MX
 * certificate's trust-on-first-use fingerprint is kept in KV, so it survives isolate
 * restarts.
 *
 * @example
 * ```sh
 * MXFLEX_CONFIG="$(cat config/mxflex.yaml)" deno serve --unstable-kv --allow-net \
 *   --allow-env --allow-read --allow-write --allow-sys deploy.ts
 * ```
 *
 * @module
 */
import {
  type AppConfig,
  applyEnv,
  ConfigError,
  normalizeConfig,
  parseConfigText,
} from "./lib/config.ts";
import { createLogger, type Logger } from "./lib/log.ts";
import { MxFlexServer } from "./app.ts";
import { errorResponse } from "./lib/http/errors.ts";
import type { Backoff } from "./lib/mx/mod.ts";
import { VERSION } from "./lib/version.ts";

/** Environment variables: a map (tests) or a lookup function (`Deno.env.get`). */
export type EnvSource =
  | Record<string, string | undefined>
  | ((key: string) => string | undefined);

/** Options for {@link createDeployHandler}. */
export interface DeployOptions {
  /** Logger; default JSON lines on stderr. */
  log?: Logger;
  /** Opens Deno KV; default `Deno.openKv(path)` (no path = the Deploy project database). */
  openKv?: (path: string | undefined) => Promise<Deno.Kv>;
  /** How long the first request waits for the MX sessions; default 10 s. */
  readyTimeoutMs?: number;
  /** Reconnect backoff for MX sessions (tests). */
  backoff?: Backoff;
}

/** A lazily started MXFlex behind one `fetch` function. */
export interface DeployHandler {
  /** The request handler (`export default { fetch }` shape). */
  fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** Starts the server if needed and returns it. */
  server(): Promise<MxFlexServer>;
  /** Stops the server (if started) and closes KV. */
  close(): Promise<void>;
}

function lookup(env: EnvSource): (key: string) => string | undefined {
  return typeof env === "function" ? env : (key) => env[key];
}

/**
 * Builds the configuration from environment variables (see module docs).
 *
 * @example
 * ```ts
 * const cfg = await configFromEnv({ MXFLEX_MX_ADDR: "10.0.0.5", MXFLEX_MX_LOGIN: "server", MXFLEX_MX_PASSWORD: "pw" });
 * cfg.mx[0].port; // 7778
 * ```
 * @throws {ConfigError} naming the variable or key at fault
 */
export async function configFromEnv(env: EnvSource): Promise<AppConfig> {
  const get = lookup(env);
  const inline = get("MXFLEX_CONFIG");
  let raw: unknown;
  if (inline && inline.trim()) {
    try {
      raw = await parseConfigText(inline);
    } catch (err) {
      throw new ConfigError(`MXFLEX_CONFIG: ${(err as Error).message}`);
    }
  } else if (get("MXFLEX_MX_ADDR")) {
    if (!get("MXFLEX_MX_LOGIN")) {
      throw new ConfigError("MXFLEX_MX_LOGIN is required when MXFLEX_CONFIG is not set");
    }
    raw = {
      mx: {
        addr: get("MXFLEX_MX_ADDR"),
        login: get("MXFLEX_MX_LOGIN"),
        password: get("MXFLEX_MX_PASSWORD") ?? "",
      },
    };
  } else {
    throw new ConfigError(
      "no configuration: set MXFLEX_CONFIG (YAML or JSON) or MXFLEX_MX_ADDR and MXFLEX_MX_LOGIN",
    );
  }
  let cfg: AppConfig;
  try {
    // Relative paths in the config (push certificates, MX CA files) are resolved against
    // the working directory, which on Deploy is the project root.
    cfg = normalizeConfig(raw, ".");
  } catch (err) {
    if (err instanceof ConfigError && inline) {
      throw new ConfigError(`MXFLEX_CONFIG: ${err.message}`);
    }
    throw err;
  }
  return applyEnv(cfg, get);
}

/**
 * Creates the Deploy request handler from an environment. Nothing happens until the first
 * request (or {@link DeployHandler.server}): then the config is built, KV opened, the
 * server assembled and its MX sessions started. A configuration error is logged once and
 * every request answers 500 `{"error": "server configuration error"}`; other start-up
 * failures are retried on the next request.
 *
 * @example
 * ```ts
 * const h = createDeployHandler({ MXFLEX_CONFIG: "mx: {addr: 10.0.0.5, login: server, password: pw}" });
 * const res = await h.fetch(new Request("http://localhost/healthz"));
 * ```
 */
export function createDeployHandler(env: EnvSource, opts: DeployOptions = {}): DeployHandler {
  const log = opts.log ?? createLogger({ format: "json" });
  const openKv = opts.openKv ?? ((path) => Deno.openKv(path));
  let starting: Promise<{ server: MxFlexServer; kv: Deno.Kv }> | undefined;
  let configError: ConfigError | undefined;
  let closed = false;

  const start = async () => {
    const config = await configFromEnv(env);
    // The Deploy project's KV (no MXFLEX_DB) has a working `watch`: the feed timer is only a
    // safety net there.
    if (!config.db && !config.kvPollMs) config.kvPollMs = 10_000;
    const kv = await openKv(config.db || undefined);
    let server: MxFlexServer;
    try {
      server = await MxFlexServer.create({ config, log, kv, backoff: opts.backoff });
    } catch (err) {
      kv.close();
      throw err;
    }
    server.start();
    log.info(`MXFlex ${VERSION} on Deno Deploy`, {
      mx: config.mx.map((m) => `${m.name}=${m.hostname}:${m.port}`),
      flexMx: config.flexMx,
    });
    const timeout = opts.readyTimeoutMs ?? 10_000;
    await Promise.all(
      [...server.sessions.values()].map((s) =>
        s.ready(timeout).catch((err: unknown) => {
          log.warn(`MX ${s.name} not ready yet; requests needing it answer 503 until it is`, {
            error: err instanceof Error ? err.message : String(err),
          });
        })
      ),
    );
    return { server, kv };
  };

  const ensure = () => {
    if (closed) return Promise.reject(new Error("closed"));
    starting ??= start().catch((err) => {
      if (err instanceof ConfigError) {
        configError = err;
        log.error(`config: ${err.message}`);
      } else {
        log.error("start-up failed; retrying on the next request", {
          error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        });
        starting = undefined;
      }
      throw err;
    });
    return starting;
  };

  return {
    async fetch(req, info) {
      if (configError) return errorResponse(500, "server configuration error");
      let server: MxFlexServer;
      try {
        ({ server } = await ensure());
      } catch (err) {
        return err instanceof ConfigError
          ? errorResponse(500, "server configuration error")
          : errorResponse(503, "service unavailable", { "Retry-After": "5" });
      }
      return await server.fetch(req, info);
    },
    async server() {
      return (await ensure()).server;
    },
    async close() {
      if (closed) return;
      closed = true;
      const s = starting;
      if (!s) return;
      let started;
      try {
        started = await s;
      } catch {
        return;
      }
      await started.server.close();
      started.kv.close();
    },
  };
}

let defaultHandler: DeployHandler | undefined;

/** The Deno Deploy / `deno serve` entry: reads `Deno.env` on the first request. */
export default {
  fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    defaultHandler ??= createDeployHandler((k) => Deno.env.get(k));
    return defaultHandler.fetch(req, info);
  },
} satisfies Deno.ServeDefaultExport;
