/**
 * The one error and JSON shape of the HTTP API: `{"error": "..."}`, indented with 4 spaces and
 * ending in a newline like the Go originals (`json.Encoder` with `SetIndent("", "    ")`), so the
 * seed's `Content-Length` values still hold.
 *
 * @example
 * ```ts
 * import { HttpError, toErrorResponse } from "./errors.ts";
 * try {
 *   throw new HttpError(400, "login required");
 * } catch (err) {
 *   const res = toErrorResponse(err); // 400 {"error": "login required"}
 * }
 * ```
 *
 * @module
 */

/** Content type of every JSON body. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/**
 * An error that carries its HTTP status (and optional extra headers, e.g. `WWW-Authenticate`).
 * Its message is shown to the client, so it must never hold secrets or internals.
 *
 * @example
 * ```ts
 * throw new HttpError(401, "unauthorized", { "WWW-Authenticate": 'Bearer realm="MXFlex"' });
 * ```
 */
export class HttpError extends Error {
  /** HTTP status code sent to the client. */
  readonly status: number;
  /** Extra response headers. */
  readonly headers?: Record<string, string>;

  /**
   * Creates an error with a status and client-visible message.
   *
   * @param status HTTP status code (400–599 expected).
   * @param message Client-visible text put into `{"error": message}`.
   * @param headers Extra response headers.
   */
  constructor(status: number, message: string, headers?: Record<string, string>) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    if (headers) this.headers = headers;
  }
}

/**
 * The one 429 of the API: `{"error": message}` with `Retry-After` in whole seconds (at least 1),
 * for every rate limit (Flex login, Proxy Basic auth).
 *
 * @example
 * ```ts
 * const r = limiter.check(ip);
 * if (!r.allowed) throw tooManyRequests("too many failed logins", r.retryAfterSeconds);
 * ```
 */
export function tooManyRequests(message: string, retryAfterSeconds: number): HttpError {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new HttpError(429, message, { "Retry-After": String(seconds) });
}

/**
 * The reason a streaming response body is cut on purpose (e.g. a stalled voicemail client).
 * `Deno.serve` writes the error a body stream fails with to stderr; this one has no stack, so
 * that is one line (`[BodyCut: client stalled]`), not a trace. Its message never reaches the
 * client, whose connection is simply closed.
 *
 * @example
 * ```ts
 * controller.error(new BodyCutError("client stalled"));
 * ```
 */
export class BodyCutError extends Error {
  /** @param message why the body was cut (shown on the server's stderr) */
  constructor(message: string) {
    super(message);
    this.name = "BodyCut";
    this.stack = `${this.name}: ${message}`;
  }
}

// Go's encoder escapes these even inside strings; JSON.stringify only emits them inside
// strings, so a global replace is safe and keeps byte-compatible output (and stops a JSON
// body sniffed as HTML from carrying markup).
const HTML_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/**
 * Serialises a value the way the originals did: 4-space indent, HTML-escaped, trailing newline.
 *
 * @example
 * ```ts
 * formatJson({ error: "x" }); // '{\n    "error": "x"\n}\n'
 * ```
 */
export function formatJson(body: unknown): string {
  const text = JSON.stringify(body, null, 4) ?? "null";
  return text.replace(/[<>&\u2028\u2029]/g, (c) => HTML_ESCAPES[c]) + "\n";
}

/**
 * A JSON response in the API's format.
 *
 * @example
 * ```ts
 * return jsonResponse({ token_type: "Bearer", access_token: token, expires_in: 3600 });
 * ```
 */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers?: Record<string, string>,
): Response {
  const h = new Headers(headers);
  h.set("Content-Type", JSON_CONTENT_TYPE);
  return new Response(formatJson(body), { status, headers: h });
}

/**
 * An error response `{"error": message}`.
 *
 * @example
 * ```ts
 * return errorResponse(406, "only sse support");
 * ```
 */
export function errorResponse(
  status: number,
  message: string,
  headers?: Record<string, string>,
): Response {
  return jsonResponse({ error: message }, status, headers);
}

/**
 * Maps anything thrown to a response. An {@link HttpError} (or subclass) with a status in 400–599
 * keeps its status, message and headers; everything else becomes 500 "internal error" — the raw
 * message or stack of an unknown error is never sent.
 *
 * @example
 * ```ts
 * app.onError((err) => toErrorResponse(err));
 * ```
 */
export function toErrorResponse(err: unknown): Response {
  if (err instanceof HttpError && err.status >= 400 && err.status <= 599) {
    return errorResponse(err.status, err.message, err.headers);
  }
  return errorResponse(500, "internal error");
}
