/**
 * The client's address as seen by `Deno.serve` (hono passes the handler info as `env`).
 * Forwarded headers are not trusted: anyone can send them.
 *
 * @module
 */
import type { Context } from "hono";

/** Returns the remote IP of the request, or "unknown". */
// deno-lint-ignore no-explicit-any
export function clientIp(c: Context<any>): string {
  const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return info?.remoteAddr?.hostname ?? "unknown";
}
