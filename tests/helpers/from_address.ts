/**
 * HTTP requests from a chosen local address (`fetch` and `Deno.connect` cannot pick one):
 * `node:http` with `localAddress`, so a test can be a second client at 127.0.0.2 while the
 * server listens on 127.0.0.1. Bodies are read whole.
 *
 * @module
 */
import http from "node:http";

/** Request options: a subset of `fetch`'s. */
export interface FromInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams;
}

/**
 * Sends one request from `localAddress` (a new connection each time) and returns the response.
 *
 * @example
 * ```ts
 * const res = await fetchFrom("127.0.0.2", `${h.url}/api/login`, {
 *   method: "POST", body: new URLSearchParams({ login: "dmitry", password: "wrong" }),
 * });
 * res.status; // 401
 * ```
 */
export function fetchFrom(
  localAddress: string,
  url: string,
  init: FromInit = {},
): Promise<Response> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.body instanceof URLSearchParams) {
    body = init.body.toString();
    headers["content-type"] ??= "application/x-www-form-urlencoded";
  } else {
    body = init.body;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname,
      port: Number(u.port),
      path: u.pathname + u.search,
      method: init.method ?? "GET",
      headers,
      localAddress,
      agent: false,
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (d: Uint8Array) => chunks.push(d));
      res.on("error", reject);
      res.on("end", () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(", ") : v);
        }
        const status = res.statusCode ?? 0;
        const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let off = 0;
        for (const c of chunks) {
          bytes.set(c, off);
          off += c.length;
        }
        resolve(
          new Response(status === 204 || status === 304 ? null : bytes, { status, headers: h }),
        );
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
