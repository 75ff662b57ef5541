/**
 * The HTTP application: the middleware chain and every router, mounted on one hono app from
 * the services the composition root (`app.ts`) built. Nothing here creates a service.
 *
 * Order: client address (from the peer, or a trusted proxy's headers), request log (sees
 * every response, also errors), `Server`/`X-API-Version` headers,
 * path guard (before anything reads the path), shutdown 503, then the routers; `onError`
 * turns anything thrown into the `{"error": ...}` shape.
 *
 * @example
 * ```ts
 * const app = buildApp({ log, instanceId, metrics, sessions, flexMx, tokens, feed, vault,
 *   issuer, push,
 *   guard, streamLimits, trustedProxies, authCache, staticDirs, closing: () => false });
 * Deno.serve(app.fetch);
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Logger } from "../lib/log.ts";
import type {
  FlexFeed,
  MxSession,
  PushMonitors,
  StreamLimits,
  TokenMonitors,
} from "../lib/mx/mod.ts";
import type { TokenIssuer } from "../lib/auth/jwt.ts";
import type { VerifiedCache } from "../lib/auth/basic.ts";
import type { LoginGuard } from "../lib/auth/login_guard.ts";
import type { CredentialVault } from "../lib/store/credentials.ts";
import type { ServerMetrics } from "../lib/metrics.ts";
import type { HttpsStatus } from "../lib/listen/https_status.ts";
import { HttpError, toErrorResponse } from "../lib/http/errors.ts";
import { mxHttpError } from "../lib/http/mx_errors.ts";
import { requestLog } from "../lib/http/request_log.ts";
import { clientAddress } from "../lib/http/client_ip.ts";
import type { TrustedProxies } from "../lib/http/trusted_proxies.ts";
import { serverHeaders } from "../lib/http/server_headers.ts";
import { pathGuard } from "../lib/http/path_guard.ts";
import { shutdownGuard } from "../lib/http/shutdown_guard.ts";
import { VERSION } from "../lib/version.ts";
import { opsRoutes } from "./ops.ts";
import { flexRoutes } from "./flex.ts";
import { proxyRoutes } from "./proxy.ts";
import { metricsRoutes } from "./metrics.ts";
import { type StaticOptions, staticRoutes } from "./static.ts";

/** What the application is built from. */
export interface AppServices {
  log: Logger;
  /** This instance's id (`/readyz`). */
  instanceId: string;
  metrics: ServerMetrics;
  /** Every MX session by config name (Proxy API, `/readyz`). */
  sessions: Map<string, MxSession>;
  /** The MX serving `/api`. */
  flexMx: MxSession;
  /** Flex API tokens and their monitors. */
  tokens: TokenMonitors;
  /** The Flex API's live feed: event streams, current calls. */
  feed: FlexFeed;
  /** Sealed MX credentials of Flex tokens (their user sessions). */
  vault: CredentialVault;
  issuer: TokenIssuer;
  push: PushMonitors;
  /** Failed-login limits of both APIs (counters in KV). */
  guard: LoginGuard;
  /** Caps on concurrent `/api/events` streams. */
  streamLimits: StreamLimits;
  /** Proxies whose forwarding headers name the client. */
  trustedProxies: TrustedProxies;
  /** Successful Proxy Basic-auth verifications. */
  authCache: VerifiedCache<{ jid: string; ext: string }>;
  /** Bearer token opening `/metrics` beyond loopback. */
  metricsToken?: string;
  /** Static directories, searched in order (see `routes/static.ts`). */
  staticDirs: StaticOptions["dirs"];
  /** True once a graceful stop began (every request then gets 503). */
  closing: () => boolean;
  /** Stall limit of voicemail downloads, ms (default in `routes/proxy.ts`). */
  voicemailIdleMs?: number;
  /** The automatic certificate's state (ACME mode), shown by `/readyz`. */
  https?: HttpsStatus;
}

/**
 * Builds the hono application.
 *
 * @example
 * ```ts
 * const app = buildApp(services);
 * const res = await app.fetch(new Request("http://x/healthz"));
 * ```
 */
export function buildApp(s: AppServices): Hono {
  const app = new Hono();
  app.use("*", clientAddress(s.trustedProxies));
  app.use("*", requestLog({ log: s.log, observe: (r) => s.metrics.http(r) }));
  app.use("*", serverHeaders(VERSION));
  app.use("*", pathGuard());
  app.use("*", shutdownGuard(s.closing));
  app.onError((err, c) => {
    const h = err instanceof HttpError ? err : mxHttpError(err);
    if (!h) {
      s.log.error(`internal error on ${c.req.method} ${c.req.path}`, {
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
    }
    return toErrorResponse(h ?? err);
  });
  app.notFound(() => toErrorResponse(new HttpError(404, "not found")));
  app.route("/", opsRoutes(s.sessions, s.instanceId, s.https));
  app.route(
    "/",
    flexRoutes({
      mx: s.flexMx,
      tokens: s.tokens,
      feed: s.feed,
      issuer: s.issuer,
      log: s.log,
      guard: s.guard,
      streamLimits: s.streamLimits,
      vault: s.vault,
      voicemailIdleMs: s.voicemailIdleMs,
    }),
  );
  app.route(
    "/",
    proxyRoutes({
      sessions: s.sessions,
      authCache: s.authCache,
      guard: s.guard,
      push: s.push,
      log: s.log,
      voicemailIdleMs: s.voicemailIdleMs,
    }),
  );
  app.route("/", metricsRoutes({ registry: s.metrics.registry, token: s.metricsToken }));
  app.route("/", staticRoutes({ dirs: s.staticDirs }));
  return app;
}
