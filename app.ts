/**
 * The composition root: builds every service of MXFlex from a configuration (MX sessions,
 * Flex tokens and their monitors, the call-event -> SSE link, auth, push, metrics) and hands
 * them to `routes/mod.ts`, which mounts the middleware and routers, behind one `fetch`
 * handler. `main.ts` adds the listener; tests and the Deno Deploy entry use this directly.
 *
 * @module
 */
import type { Hono } from "hono";
import { type AppConfig, ConfigError } from "./lib/config.ts";
import type { Logger } from "./lib/log.ts";
import { MxSession } from "./lib/mx/session.ts";
import { PushMonitors } from "./lib/mx/push_monitors.ts";
import { TokenMonitors } from "./lib/mx/token_monitors.ts";
import { FlexFeed } from "./lib/mx/flex_events.ts";
import { TokenIssuer } from "./lib/auth/jwt.ts";
import { SigningKeys } from "./lib/auth/signing_keys.ts";
import { LiveTokenStore } from "./lib/store/live_tokens.ts";
import { ChangeFeed } from "./lib/store/change_feed.ts";
import { VerifiedCache } from "./lib/auth/basic.ts";
import { LoginGuard } from "./lib/auth/login_guard.ts";
import { TrustedProxies } from "./lib/http/trusted_proxies.ts";
import { SseHub } from "./lib/sse/hub.ts";
import { KvTrustStore } from "./lib/store/trust.ts";
import { TokenStore } from "./lib/store/tokens.ts";
import { CredentialVault } from "./lib/store/credentials.ts";
import { PushDedupe } from "./lib/store/dedupe.ts";
import { ProviderTokenStore } from "./lib/store/provider_tokens.ts";
import { PushDispatcher } from "./lib/push/dispatcher.ts";
import { loadPushConfig } from "./lib/push/config.ts";
import type { WireLogger } from "./lib/csta/wire_log.ts";
import type { HttpsStatus } from "./lib/listen/https_status.ts";
import type { Backoff } from "./lib/csta/client.ts";
import { ServerMetrics } from "./lib/metrics.ts";
import { buildApp } from "./routes/mod.ts";
import { isWebClientFile } from "./lib/web_client_files.ts";
import { hostName } from "./lib/instance.ts";

/** Options for {@link MxFlexServer.create}. */
export interface ServerOptions {
  config: AppConfig;
  log: Logger;
  /**
   * Deno KV: device tokens, push dedupe, certificate trust, login-limit counters, signing keys,
   * live tokens. Every instance sharing it shares that state.
   */
  kv: Deno.Kv;
  /** This instance's id (`/readyz`, `/metrics`); default `config.instanceId`, else the host name. */
  instanceId?: string;
  wireLog?: WireLogger;
  /** Static directories, searched in order; default `[config.staticDir, <built-in static/>]`. */
  staticDirs?: string[];
  /** Reconnect backoff for MX sessions (tests use small values). */
  backoff?: Backoff;
  /** Backoff after an MX refused the server account; default 30 s doubling to 10 min. */
  authBackoff?: Backoff;
  /** SSE heartbeat interval; default 15 s. */
  sseHeartbeatMs?: number;
  /** Bearer token opening `/metrics` beyond loopback; default `config.metricsToken`. */
  metricsToken?: string;
  /**
   * A voicemail download whose client reads nothing for this long is cut and the MX transfer
   * cancelled, ms; default 60 s (tests use small values).
   */
  voicemailIdleMs?: number;
  /**
   * The automatic certificate's state, written by `listen()` in ACME mode: `/readyz` shows it,
   * `/metrics` exports the expiry and renewal failures.
   */
  https?: HttpsStatus;
}

/** What {@link MxFlexServer.create} assembled. */
interface ServerParts {
  sessions: Map<string, MxSession>;
  hub: SseHub;
  app: Hono;
  tokens: TokenMonitors;
  feed: FlexFeed;
  log: Logger;
  dispatcher: PushDispatcher | undefined;
  metrics: ServerMetrics;
  lifecycle: { closing: boolean };
  instanceId: string;
  push: PushMonitors;
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
  /** The Flex API's live feed (call events, presence, contacts, current calls). */
  readonly feed: FlexFeed;
  /** Push dispatcher (undefined when no push app is configured). */
  readonly dispatcher?: PushDispatcher;
  /** Prometheus metrics (served at `/metrics`). */
  readonly metrics: ServerMetrics;
  /** This instance's id. */
  readonly instanceId: string;

  /** Push registrations and their monitors. */
  readonly push: PushMonitors;

  #log: Logger;
  #lifecycle: { closing: boolean };
  #closed?: Promise<void>;
  #started = false;

  private constructor(p: ServerParts) {
    this.sessions = p.sessions;
    this.hub = p.hub;
    this.app = p.app;
    this.tokens = p.tokens;
    this.feed = p.feed;
    this.dispatcher = p.dispatcher;
    this.metrics = p.metrics;
    this.instanceId = p.instanceId;
    this.push = p.push;
    this.#log = p.log;
    this.#lifecycle = p.lifecycle;
  }

  /** Builds everything; nothing connects until {@link start}. */
  static async create(o: ServerOptions): Promise<MxFlexServer> {
    const { config, log, kv } = o;
    const instanceId = o.instanceId || config.instanceId || hostName();
    const trust = await KvTrustStore.open(kv);
    const sessions = new Map<string, MxSession>();
    const metrics = new ServerMetrics({
      instanceId,
      liveTokens: () => tokens.size,
      sseClients: () => hub.subscriberCount(),
      sessions: () =>
        [...sessions.values()].map((s) => ({
          name: s.name,
          state: s.state,
          reconnects: s.client.reconnects,
        })),
      certificate: () => o.https?.active ? o.https : undefined,
    });
    for (const m of config.mx) {
      let caPem: string | undefined;
      if (m.tls.ca) {
        const path = resolvePath(config.baseDir, m.tls.ca);
        try {
          caPem = await Deno.readTextFile(path);
        } catch (err) {
          throw new ConfigError(`${m.key}.tls.ca: cannot read ${path}: ${(err as Error).message}`);
        }
      }
      sessions.set(
        m.name,
        new MxSession(m, {
          log,
          trust,
          caPem,
          requestTimeoutMs: config.requestTimeoutMs,
          connectTimeoutMs: config.connectTimeoutMs,
          wireLog: o.wireLog,
          backoff: o.backoff,
          authBackoff: o.authBackoff,
          serverLogin: m.name === config.flexMx ? { platform: "iPhone", version: "1.0" } : {},
          observer: metrics.csta,
        }),
      );
    }
    const hub = new SseHub({ heartbeatMs: o.sseHeartbeatMs });
    // Shared with every instance on this KV: the signing keys (so tokens are valid on all of
    // them and across restarts) and the change feeds (logins, logouts, push registrations).
    const keys = await SigningKeys.open(kv, {
      ttlSeconds: config.tokenTtl,
      rotateSeconds: config.tokenKeyRotation,
    });
    const issuer = new TokenIssuer({ ttlSeconds: config.tokenTtl, keys });
    const feedOpts = {
      pollMs: config.kvPollMs || defaultKvPollMs(config.db),
      onError: (err: unknown) => log.warn(`kv feed: ${(err as Error).message}`),
    };

    for (const w of config.warnings) log.warn(w);
    const pushCfg = await loadPushConfig(config.push, config.baseDir, {
      providerTokens: new ProviderTokenStore(kv),
    });
    for (const w of pushCfg.warnings) log.warn(w);
    const store = new TokenStore(kv);
    const dispatcher = pushCfg.apps.size
      ? new PushDispatcher({
        store,
        dedupe: new PushDedupe(kv),
        apps: pushCfg.apps,
        ringTimeoutMs: pushCfg.ringTimeoutMs,
        observer: metrics.push,
        log: (m) => log.info(m),
      })
      : undefined;
    const push = new PushMonitors({
      store,
      dispatcher,
      apps: new Set(pushCfg.apps.keys()),
      log,
      feed: new ChangeFeed(kv, "push", feedOpts),
    });
    for (const s of sessions.values()) push.attach(s);

    // The Flex API: its MX's call events of monitored extensions, presence and address-book
    // changes go to the hub, and each token holds a monitor reference until logout or expiry.
    const flexMx = sessions.get(config.flexMx)!;
    const feed = new FlexFeed(flexMx, hub);
    const tokens = new TokenMonitors(flexMx, new LiveTokenStore(kv, { feed: feedOpts }), log);
    // Each token's sealed MX credential (its user session) goes with the token: wiped at
    // logout (the route) and expiry (here, on every instance; KV expires it too).
    const vault = new CredentialVault(kv);
    tokens.onExpired((jti) => vault.wipe(jti));
    await tokens.start();
    await push.start();

    const lifecycle = { closing: false };
    const app = buildApp({
      log,
      metrics,
      instanceId,
      sessions,
      flexMx,
      tokens,
      feed,
      vault,
      issuer,
      push,
      guard: new LoginGuard(kv, config.rateLimits),
      streamLimits: config.rateLimits.streams,
      trustedProxies: TrustedProxies.parse(config.trustedProxies),
      authCache: new VerifiedCache({ ttlMs: 5 * 60_000 }),
      metricsToken: o.metricsToken ?? (config.metricsToken || undefined),
      staticDirs: o.staticDirs ??
        [config.staticDir, { path: BUILTIN_STATIC, serves: isWebClientFile }],
      closing: () => lifecycle.closing,
      voicemailIdleMs: o.voicemailIdleMs,
      https: o.https,
    });
    return new MxFlexServer({
      sessions,
      hub,
      app,
      tokens,
      feed,
      log,
      dispatcher,
      metrics,
      lifecycle,
      instanceId,
      push,
    });
  }

  /** The request handler (for `Deno.serve`). */
  fetch = (req: Request, info?: Deno.ServeHandlerInfo): Response | Promise<Response> =>
    this.app.fetch(req, info);

  /** Connects every MX session (in the background; HTTP works meanwhile, answering 503). */
  start(): void {
    this.#started = true;
    for (const s of this.sessions.values()) s.start();
  }

  /**
   * Graceful stop: new requests get 503 (retry), SSE clients are told to retry, monitors are
   * released, MX sessions logged out, then `stopped` is logged (when it was started). Safe to
   * call more than once.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#lifecycle.closing = true;
      this.#closed = (async () => {
        this.hub.closeAll(5_000);
        this.push.close();
        await this.tokens.close();
        this.feed.close();
        await Promise.all([...this.sessions.values()].map((s) => s.stop()));
        await this.dispatcher?.close();
        this.hub.close();
        // Only a server that ran says so (a failed start-up prints its one error line only).
        if (this.#started) this.#log.info("stopped");
      })();
    }
    return this.#closed;
  }
}

/**
 * How often an instance reads the change feeds' heads by default: 250 ms on a local KV file
 * (`kv.watch` does not see other processes' writes there), 10 s on KV Connect, where `watch`
 * carries changes at once and the timer is only a safety net.
 *
 * @example
 * ```ts
 * defaultKvPollMs("mxproxy.db");                  // 250
 * defaultKvPollMs("https://kv.example.net/db/1"); // 10000
 * ```
 */
export function defaultKvPollMs(db: string): number {
  return /^https?:\/\//i.test(db) ? 10_000 : 250;
}

/** Resolves `p` against `base` unless it is absolute. */
export function resolvePath(base: string, p: string): string {
  return p.startsWith("/") ? p : `${base}/${p}`;
}
