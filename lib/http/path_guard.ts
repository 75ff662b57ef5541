/**
 * Refuses request paths that different layers would read differently, as hono middleware.
 *
 * `Deno.serve` hands the request target over as sent (`req.url` keeps `%2e%2e`, `..` and `\`),
 * hono's `c.req.path` percent-decodes it (`/x/%2e%2e/metrics` becomes `/x/../metrics`), and
 * `new URL(req.url).pathname` resolves dot-segments and turns `\` into `/` (`/metrics`). A
 * fronting proxy that allows or blocks by path prefix sees yet another form. So a path is
 * answered 400 `{"error": "bad request path"}` when, before the query string, it holds:
 *
 * - a backslash, raw or encoded (`\`, `%5c`);
 * - an encoded slash (`%2f`) or an encoded dot (`%2e`), in any letter case;
 * - any other encoded unreserved character (a letter, digit, `-`, `_` or `~`: `/%6detrics` is
 *   `/metrics` to hono, but not to a proxy that blocks `/metrics` by prefix);
 * - a dot-segment (`/./`, `/../`, or one at the end).
 *
 * Well-behaved clients never send these (RFC 3986 §2.3 and §6.2.2: unreserved characters are
 * not percent-encoded and dot-segments are removed by the client), so nothing legitimate is
 * refused. Encoded reserved and non-ASCII characters (`%20`, `%3a`, `%c3%a9`) pass.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.use("*", pathGuard()); // before any router
 * ```
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { HttpError } from "./errors.ts";

// %2d-%2e, %30-%39, %41-%5a, %5f, %61-%7a, %7e: the unreserved characters (RFC 3986 §2.3).
const UNSAFE_RE = /\\|%5c|%2f|%2[de]|%3[0-9]|%[46][1-9a-f]|%[57][0-9a]|%5f|%7e|\/\.\.?(?:\/|$)/i;

/**
 * Whether the path of an absolute request URL (`req.url`) is one {@link pathGuard} refuses.
 *
 * @example
 * ```ts
 * isUnsafePath("http://h/x/%2e%2e/metrics"); // true
 * isUnsafePath("http://h/api/contacts?q=%2e"); // false: only the path counts
 * ```
 */
export function isUnsafePath(url: string): boolean {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return false;
  const q = url.indexOf("?", start);
  const h = url.indexOf("#", start);
  const end = q < 0 ? (h < 0 ? url.length : h) : q;
  return UNSAFE_RE.test(url.slice(start, end));
}

/**
 * Builds the middleware: a 400 {@link HttpError} for an unsafe path, else the next handler.
 *
 * @example
 * ```ts
 * app.use("*", pathGuard());
 * ```
 */
export function pathGuard(): MiddlewareHandler {
  return async (c, next) => {
    if (isUnsafePath(c.req.url)) throw new HttpError(400, "bad request path");
    await next();
  };
}
