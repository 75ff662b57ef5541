/**
 * The client's address, as hono middleware: the connection's peer as seen by `Deno.serve`
 * (hono passes the handler info as `env`), or, from a trusted reverse proxy, the client it
 * names in `Forwarded` / `X-Forwarded-For` (lib/http/forwarded.ts). Rate limits, the request
 * log and the `/metrics` loopback check all read it through {@link clientIp}.
 *
 * @example
 * ```ts
 * app.use("*", clientAddress(TrustedProxies.parse(config.trustedProxies)));
 * app.get("/who", (c) => c.text(clientIp(c)));
 * ```
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { resolveClient, UNKNOWN_CLIENT } from "./forwarded.ts";
import { canonicalIp, TrustedProxies } from "./trusted_proxies.ts";

const KEY = "clientIp";

// deno-lint-ignore no-explicit-any
function peerOf(c: Context<any>): string {
  const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return info?.remoteAddr?.hostname ?? UNKNOWN_CLIENT;
}

/**
 * Builds the middleware that resolves the client address once per request. Mount it first.
 *
 * @example
 * ```ts
 * app.use("*", clientAddress(TrustedProxies.NONE)); // headers never believed
 * ```
 */
export function clientAddress(trusted: TrustedProxies = TrustedProxies.NONE): MiddlewareHandler {
  return async (c, next) => {
    (c.set as (k: string, v: unknown) => void)(
      KEY,
      resolveClient(peerOf(c), c.req.raw.headers, trusted),
    );
    await next();
  };
}

/**
 * The client address of the request (canonical IP, or "unknown"). Without the middleware it is
 * the connection's peer: no header is believed.
 *
 * @example
 * ```ts
 * log.info("login refused", { login, ip: clientIp(c) });
 * ```
 */
// deno-lint-ignore no-explicit-any
export function clientIp(c: Context<any>): string {
  const v = (c.get as (k: string) => unknown)(KEY);
  if (typeof v === "string") return v;
  const peer = peerOf(c);
  return canonicalIp(peer) ?? UNKNOWN_CLIENT;
}
