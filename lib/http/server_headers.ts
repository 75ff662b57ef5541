/**
 * Adds `Server: MXFlex/<version>` and `X-API-Version` to every response, as hono middleware
 * (the originals sent both).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.use("*", serverHeaders("1.2.3")); // Server: MXFlex/1.2.3, X-API-Version: 1.0
 * ```
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";

/** Value of the `X-API-Version` header. */
export const API_VERSION = "1.0";

/**
 * Builds the middleware. Mounted before the routers it also marks error responses (hono
 * turns a thrown error into the response before `next()` returns).
 *
 * @example
 * ```ts
 * app.use("*", serverHeaders(VERSION));
 * ```
 */
export function serverHeaders(version: string): MiddlewareHandler {
  const server = `MXFlex/${version}`;
  return async (c, next) => {
    await next();
    c.res.headers.set("Server", server);
    c.res.headers.set("X-API-Version", API_VERSION);
  };
}
