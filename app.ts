/**
 * Assembles MXFlex from a configuration: MX sessions, auth, SSE hub, push, and the HTTP
 * routers, behind one `fetch` handler. `main.ts` adds the listener; tests and the Deno
 * Deploy entry use this directly.
 *
 * @module
 */
import { Hono } from "hono";
import type { AppConfig } from "./lib/config.ts";
import type { Logger } from "./lib/log.ts";
import { MxSession } from "./lib/mx/session.ts";
import { PushMonitors } from "./lib/mx/push_monitors.ts";
import type { TokenMonitors } from "./lib/mx/token_monitors.ts";
import { TokenIssuer } from "./lib/auth/jwt.ts";
import { VerifiedCache } from "./lib/auth/basic.ts";
import { RateLimiter } from "./lib/auth/rate_limit.ts";
import { SseHub } from "./lib/sse/hub.ts";
import { HttpError, toErrorResponse } from "./lib/http/errors.ts";
import { mxHttpError } from "./lib/http/mx_errors.ts";
import { KvTrustStore } from "./lib/store/trust.ts";
import { TokenStore } from "./lib/store/tokens.ts";
import { PushDedupe } from "./lib/store/dedupe.ts";
import { PushDispatcher } from "./lib/push/dispatcher.ts";
import { loadPushConfig } from "./lib/push/config.ts";
import type { WireLogger } from "./lib/csta/wire_log.ts";
import type { Backoff } from "./lib/csta/client.ts";
import { VERSION } from "./lib/version.ts";
import { flexRoutes } from "./routes/flex.ts";
import { proxyRoutes } from "./routes/proxy.ts";
import { staticRoutes } from "./routes/static.ts";
import { isWebClientFile } from "./lib/web_client_files.ts";
import { opsRoutes } from "./routes/ops.ts";
import { ServerMetrics } from "./lib/metrics.ts";
import { requestLog } from "./lib/http/request_log.ts";
import { metricsRoutes } from "./routes/metrics.ts";

/** Options for {@link MxFlexServer.create}. */
export interface ServerOptions {
  config: AppConfig;
  log: Logger;
  /** Deno KV (device tokens, push dedupe, certificate trust). */
  kv: Deno.Kv;
  wireLog?: WireLogger;
  /** Static directories, searched in order; default `[config.staticDir, <built-in static/>]`. */
  staticDirs?: string[];
  /** Reconnect backoff for MX sessions (tests use small values). */
  backoff?: Backoff;
  /** SSE heartbeat interval; default 15 s. */
  sseHeartbeatMs?: number;
  /** Bearer token opening `/metrics` beyond loopback; default `config.metricsToken`. */
  metricsToken?: string;
}

/** Directory of the built-in web client. */
export const BUILTIN_STATIC = new URL("./static", import.meta.url).pathname;

/**
 * The assembled server.
 *
 * @example
 * ```ts
 * const srv = await MxFlexServer.create({ config, log, kv });
 * srv.start();
 * Deno.serve({ port: 8080 }, srv.fetch);
 * ```
 */
export class MxFlexServer {
  /** Every MX session by config name. */
  readonly sessions: Map<string, MxSession>;
  /** The SSE broadcaster. */
  readonly hub: SseHub;
  /** The hono application. */
  readonly app: Hono;
  /** Flex API token bookkeeping. */
  readonly tokens: TokenMonitors;
  /** Push dispatcher (undefined when no push app is configured). */
  readonly dispatcher?: PushDispatcher;
  /** Prometheus metrics (served at `/metrics`). */
  readonly metrics: ServerMetrics;

  #log: Logger;
  #lifecycle: { closing: boolean };
  #closed?: Promise<void>;

  private constructor(
    sessions: Map<string, MxSession>,
    hub: SseHub,
    app: Hono,
    tokens: TokenMonitors,
    log: Logger,
    dispatcher: PushDispatcher | undefined,
    metrics: ServerMetrics,
    lifecycle: { closing: boolean },
  ) {
    this.#lifecycle = lifecycle;
    this.metrics = metrics;
    this.sessions = sessions;
    this.hub = hub;
    this.app = app;
    this.tokens = tokens;
    this.#log = log;
    this.dispatcher = dispatcher;
  }

  /** Builds everything; nothing connects until {@link start}. */
  static async create(o: ServerOptions): Promise<MxFlexServer> {
    const { config, log, kv } = o;
    const trust = await KvTrustStore.open(kv);
    const sessions = new Map<string, MxSession>();
    const metrics = new ServerMetrics({
      sseClients: () => hub.subscriberCount(),
      sessions: () =>
        [...sessions.values()].map((s) => ({
          name: s.name,
          state: s.state,
          reconnects: s.client.reconnects,
        })),
      push: () => dispatcher?.stats(),
    });
    for (const m of config.mx) {
      let caPem: string | undefined;
      if (m.tls.ca) caPem = await Deno.readTextFile(resolvePath(config.baseDir, m.tls.ca));
      sessions.set(
        m.name,
        new MxSession(m, {
          log,
          trust,
          caPem,
          requestTimeoutMs: config.requestTimeoutMs,
          wireLog: o.wireLog,
          backoff: o.backoff,
          serverLogin: m.name === config.flexMx ? { platform: "iPhone", version: "1.0" } : {},
          observer: metrics.csta,
        }),
      );
    }
    const hub = new SseHub({ heartbeatMs: o.sseHeartbeatMs });
    const issuer = new TokenIssuer({ ttlSeconds: config.tokenTtl });

    const pushCfg = await loadPushConfig(config.push, config.baseDir);
    for (const w of pushCfg.warnings) log.warn(w);
    const store = new TokenStore(kv);
    const dispatcher = pushCfg.apps.size
      ? new PushDispatcher({
        store,
        dedupe: new PushDedupe(kv),
        apps: pushCfg.apps,
        log: (m) => log.info(m),
      })
      : undefined;
    const push = new PushMonitors({
      store,
      dispatcher,
      apps: new Set(pushCfg.apps.keys()),
      log,
    });
    for (const s of sessions.values()) push.attach(s);

    const flex = flexRoutes({
      mx: sessions.get(config.flexMx)!,
      issuer,
      hub,
      log,
      loginLimiter: new RateLimiter({ limit: 10, windowMs: 60_000 }),
      ipLimiter: new RateLimiter({ limit: 60, windowMs: 60_000 }),
    });
    const lifecycle = { closing: false };
    const app = new Hono();
    app.use("*", requestLog({ log, observe: (r) => metrics.http(r) }));
    app.use("*", async (c, next) => {
      // Shutting down: tokens and monitors are being released, so answering normally would
      // tell clients their token was revoked (401) and end their sessions. 503 says "retry".
      if (lifecycle.closing) {
        throw new HttpError(503, "server shutting down", { "Retry-After": "5" });
      }
      await next();
      c.res.headers.set("Server", `MXFlex/${VERSION}`);
      c.res.headers.set("X-API-Version", "1.0");
    });
    app.onError((err, c) => {
      const h = err instanceof HttpError ? err : mxHttpError(err);
      if (!h) {
        log.error(`internal error on ${c.req.method} ${c.req.path}`, {
          error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        });
      }
      return toErrorResponse(h ?? err);
    });
    app.notFound(() => toErrorResponse(new HttpError(404, "not found")));
    app.route("/", opsRoutes(sessions));
    app.route("/", flex.app);
    app.route(
      "/",
      proxyRoutes({
        sessions,
        authCache: new VerifiedCache({ ttlMs: 5 * 60_000 }),
        failLimiter: new RateLimiter({ limit: 20, windowMs: 60_000 }),
        push,
        log,
      }),
    );
    const metricsToken = o.metricsToken ?? (config.metricsToken || undefined);
    app.route("/", metricsRoutes({ registry: metrics.registry, token: metricsToken }));
    app.route(
      "/",
      staticRoutes({
        dirs: o.staticDirs ??
          [config.staticDir, { path: BUILTIN_STATIC, serves: isWebClientFile }],
      }),
    );
    return new MxFlexServer(sessions, hub, app, flex.tokens, log, dispatcher, metrics, lifecycle);
  }

  /** The request handler (for `Deno.serve`). */
  fetch = (req: Request, info?: Deno.ServeHandlerInfo): Response | Promise<Response> =>
    this.app.fetch(req, info);

  /** Connects every MX session (in the background; HTTP works meanwhile, answering 503). */
  start(): void {
    for (const s of this.sessions.values()) s.start();
  }

  /**
   * Graceful stop: new requests get 503 (retry), SSE clients are told to retry, monitors are
   * released, MX sessions logged out. Safe to call more than once.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#lifecycle.closing = true;
      this.#closed = (async () => {
        this.hub.closeAll(5_000);
        await this.tokens.close();
        await Promise.all([...this.sessions.values()].map((s) => s.stop()));
        await this.dispatcher?.close();
        this.hub.close();
        this.#log.info("stopped");
      })();
    }
    return this.#closed;
  }
}

/** Resolves `p` against `base` unless it is absolute. */
export function resolvePath(base: string, p: string): string {
  return p.startsWith("/") ? p : `${base}/${p}`;
}
