/**
 * `GET /metrics`: Prometheus text exposition (format 0.0.4).
 *
 * Open to requests from loopback (127.0.0.0/8, ::1, ::ffff:127.x) or carrying
 * `Authorization: Bearer <metricsToken>`; everyone else gets 401 (a token is configured)
 * or 403 (none is). "From loopback" is the client address of lib/http/client_ip.ts: behind
 * a proxy listed in `trustedProxies` it is the client the proxy names, so a local proxy does
 * not make the public look local (a trusted proxy that names nobody gives "unknown", which is
 * not loopback). Without `trustedProxies`, a reverse proxy on the same host makes every
 * request look local: list it, or block `/metrics` at the proxy.
 *
 * @module
 */
import { Hono } from "hono";
import type { Registry } from "../lib/metrics.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../lib/metrics.ts";
import { HttpError } from "../lib/http/errors.ts";
import { clientIp } from "../lib/http/client_ip.ts";

/** Options for {@link metricsRoutes}. */
export interface MetricsRouteOptions {
  registry: Registry;
  /** Bearer token that opens `/metrics` to non-loopback clients; unset = loopback only. */
  token?: string;
}

/**
 * Whether an address is a loopback address.
 *
 * @example
 * ```ts
 * isLoopback("127.0.0.1"); // true
 * isLoopback("10.0.0.1");  // false
 * ```
 */
export function isLoopback(ip: string): boolean {
  const a = ip.toLowerCase().replace(/^\[|\]$/g, "");
  if (a === "::1" || a === "0:0:0:0:0:0:0:1") return true;
  const v4 = a.startsWith("::ffff:") ? a.slice(7) : a;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Compares two strings in time independent of where they differ. */
function safeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ (y[i % (y.length || 1)] ?? 0);
  return diff === 0;
}

/**
 * Builds the `/metrics` router.
 *
 * @example
 * ```ts
 * app.route("/", metricsRoutes({ registry: metrics.registry, token: config.metricsToken }));
 * ```
 */
export function metricsRoutes(o: MetricsRouteOptions): Hono {
  const app = new Hono();
  app.get("/metrics", (c) => {
    if (!isLoopback(clientIp(c))) {
      if (!o.token) throw new HttpError(403, "forbidden");
      const m = (c.req.header("authorization") ?? "").match(/^Bearer\s+(\S+)\s*$/i);
      if (!m || !safeEqual(m[1], o.token)) {
        throw new HttpError(401, "unauthorized", { "WWW-Authenticate": 'Bearer realm="metrics"' });
      }
    }
    return new Response(o.registry.render(), {
      headers: { "Content-Type": PROMETHEUS_CONTENT_TYPE, "Cache-Control": "no-store" },
    });
  });
  return app;
}
