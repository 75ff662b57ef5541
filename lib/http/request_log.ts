/**
 * Request ids and one log line per request, as hono middleware.
 *
 * - Every response carries `X-Request-Id`: the client's own when it is well formed
 *   (1–64 characters of `A-Z a-z 0-9 . _ : -`), otherwise a new random UUID.
 * - One line per request: method, route pattern, path, status, milliseconds to response
 *   headers, request id, client address (lib/http/client_ip.ts: behind a trusted proxy, the
 *   client it names). 2xx/3xx at debug level, 4xx/5xx at info.
 * - Never logged: the query string (it may carry `access_token`), headers (Authorization,
 *   cookies) and bodies (passwords, push tokens, voicemail).
 *
 * The route is hono's matched pattern (`/mx/:name/voicemail/:id`), not the raw path, so it
 * is safe as a metrics label; requests no route matched are `unmatched`.
 *
 * @example
 * ```ts
 * app.use("*", requestLog({ log, observe: (o) => metrics.http(o) }));
 * app.get("/x", (c) => c.text(requestId(c)));
 * ```
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Logger } from "../log.ts";
import { clientIp } from "./client_ip.ts";

/** Response (and accepted request) header carrying the request id. */
export const REQUEST_ID_HEADER = "X-Request-Id";

const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
/** Longest path written to the log (the rest is cut). */
const MAX_LOGGED_PATH = 200;

/** One finished request as reported to `observe`. */
export interface RequestRecord {
  /** Request id sent back in `X-Request-Id`. */
  id: string;
  method: string;
  /** Matched route pattern, or "unmatched". */
  route: string;
  status: number;
  /** Time until the response (headers) was ready, ms. */
  ms: number;
}

/** Options for {@link requestLog}. */
export interface RequestLogOptions {
  log: Logger;
  /** Called once per request after the response is ready (metrics). */
  observe?: (r: RequestRecord) => void;
  /** Clock in ms; default `performance.now`. */
  now?: () => number;
}

/**
 * Whether an incoming `X-Request-Id` is acceptable as is.
 *
 * @example
 * ```ts
 * isValidRequestId("b7f1c2d0-1"); // true
 * isValidRequestId("a b\n");      // false
 * ```
 */
export function isValidRequestId(v: string | null | undefined): v is string {
  return typeof v === "string" && ID_RE.test(v);
}

/**
 * The request id of the current request (set by {@link requestLog}; "" without it).
 *
 * @example
 * ```ts
 * log.info("login", { requestId: requestId(c) });
 * ```
 */
// deno-lint-ignore no-explicit-any
export function requestId(c: Context<any>): string {
  const v = (c.get as (k: string) => unknown)("requestId");
  return typeof v === "string" ? v : "";
}

/**
 * The route pattern hono matched for this request, or "unmatched".
 *
 * @example
 * ```ts
 * await next();
 * matchedRoute(c); // "/api/calls/:callId/hold"
 * ```
 */
// deno-lint-ignore no-explicit-any
export function matchedRoute(c: Context<any>): string {
  let r: { method: string; path: string } | undefined;
  try {
    r = matchedRoutes(c)[c.req.routeIndex];
  } catch {
    // No match result (should not happen inside a hono app).
  }
  // A catch-all middleware being last means no route handled the request.
  if (!r || (r.method === "ALL" && (r.path === "*" || r.path === "/*"))) return "unmatched";
  return r.path;
}

/**
 * Builds the middleware. Mount it first, so it also sees responses made by `onError` and
 * `notFound`.
 *
 * @example
 * ```ts
 * app.use("*", requestLog({ log }));
 * ```
 */
export function requestLog(o: RequestLogOptions): MiddlewareHandler {
  const now = o.now ?? (() => performance.now());
  return async (c, next) => {
    const start = now();
    const incoming = c.req.header(REQUEST_ID_HEADER);
    const id = isValidRequestId(incoming) ? incoming : crypto.randomUUID();
    (c.set as (k: string, v: unknown) => void)("requestId", id);
    await next();
    // Responses can be immutable (e.g. Response.redirect); replace them to add the header.
    try {
      c.res.headers.set(REQUEST_ID_HEADER, id);
    } catch {
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set(REQUEST_ID_HEADER, id);
    }
    const ms = Math.round((now() - start) * 10) / 10;
    const status = c.res.status;
    const route = matchedRoute(c);
    const rec: RequestRecord = { id, method: c.req.method, route, status, ms };
    let path = c.req.path; // pathname only: never the query string
    if (path.length > MAX_LOGGED_PATH) path = path.slice(0, MAX_LOGGED_PATH) + "…";
    const client = clientIp(c);
    const fields = { method: rec.method.slice(0, 16), route, path, status, ms, id, client };
    if (status >= 400) o.log.info("http", fields);
    else o.log.debug("http", fields);
    try {
      o.observe?.(rec);
    } catch {
      // Metrics must never break a response.
    }
  };
}
