/**
 * Answers 503 `{"error": "server shutting down"}` with `Retry-After` while the server stops,
 * as hono middleware.
 *
 * During a graceful stop tokens and monitors are being released, so answering normally would
 * tell clients their token was revoked (401) and end their sessions; 503 says "retry".
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * let closing = false;
 * const app = new Hono();
 * app.use("*", shutdownGuard(() => closing));
 * ```
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { HttpError } from "./errors.ts";

/** Seconds a client is asked to wait before retrying during a shutdown. */
export const SHUTDOWN_RETRY_AFTER_S = 5;

/**
 * Builds the middleware; `closing()` is asked on every request.
 *
 * @example
 * ```ts
 * app.use("*", shutdownGuard(() => lifecycle.closing));
 * ```
 */
export function shutdownGuard(closing: () => boolean): MiddlewareHandler {
  return async (_c, next) => {
    if (closing()) {
      throw new HttpError(503, "server shutting down", {
        "Retry-After": String(SHUTDOWN_RETRY_AFTER_S),
      });
    }
    await next();
  };
}
