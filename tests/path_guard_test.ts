/**
 * Request paths that layers read differently (lib/http/path_guard.ts). Measured first, on a
 * bare `Deno.serve` + hono app: `Deno.serve` does not normalise the request target (`req.url`
 * keeps `%2e%2e`, `..` and `\` as sent; the same over HTTP/2, checked by hand), hono's `c.req.path`
 * percent-decodes `%2e` into a literal `..` (and `%5c` into `\`) without resolving it, and
 * `new URL(req.url).pathname` resolves dot-segments and reads `\` as `/`. So
 * `/x/%2e%2e/metrics` is `/x/%2e%2e/metrics` to a prefix-matching proxy, `/x/../metrics` to
 * the router and `/metrics` to any code that parses the URL: MXFlex answers such paths 400.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { Hono } from "hono";
import { CERT, type Harness, withHarness } from "./helpers/harness.ts";
import { rawGet } from "./helpers/raw_http.ts";
import { isUnsafePath } from "../lib/http/path_guard.ts";

/** The shapes the removed hand-written server normalised to `/metrics`, and their cousins. */
const UNSAFE = [
  "/x/%2e%2e/metrics",
  "/x/%2E%2E/metrics",
  "/x/.%2e/metrics",
  "/x/%2e./metrics",
  "/%2e/metrics",
  "/x/..\\metrics",
  "/x\\..\\metrics",
  "/x/%5c../metrics",
  "/x/%5C..%5Cmetrics",
  "/x%2f..%2fmetrics",
  "/x%2F..%2Fmetrics",
  "/x/../metrics",
  "/./metrics",
  "/x/..",
  "/api/%2e%2e/metrics",
  "/mx/test/%2e%2e/%2e%2e/metrics",
];

/** The harness's HTTP port. */
function port(h: Pick<Harness, "url">): number {
  return Number(new URL(h.url).port);
}

Deno.test("path facts: Deno.serve keeps the raw target in req.url, hono decodes %2e to '..' and %5c to '\\' without resolving, new URL() resolves '..' and '\\' to /metrics", async () => {
  const seen: Record<string, { url: string; path: string; parsed: string }> = {};
  const app = new Hono();
  app.get("*", (c) => {
    const raw = c.req.url.slice(c.req.url.indexOf("/", 8));
    seen[raw] = { url: raw, path: c.req.path, parsed: new URL(c.req.url).pathname };
    return c.text("ok");
  });
  const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    const h = { url: `http://127.0.0.1:${srv.addr.port}` } as Harness;
    // raw target -> [hono's c.req.path, new URL(req.url).pathname]
    const want: Record<string, [string, string]> = {
      "/x/%2e%2e/metrics": ["/x/../metrics", "/metrics"],
      "/x/..\\metrics": ["/x/..\\metrics", "/metrics"],
      "/x/../metrics": ["/x/../metrics", "/metrics"],
      // hono decodes a backslash that the URL parser leaves encoded
      "/x/%5c../metrics": ["/x/\\../metrics", "/x/%5c../metrics"],
    };
    for (const [raw, [path, parsed]] of Object.entries(want)) {
      assert.equal((await rawGet(port(h), raw)).status, 200);
      assert.deepEqual(seen[raw], { url: raw, path, parsed }, raw);
    }
  } finally {
    await srv.shutdown();
  }
});

Deno.test("path guard: encoded dot-segments, encoded slashes and backslashes are 400 over HTTP/1.1, never /metrics", async () => {
  await withHarness(async (h) => {
    // The target the tricks aim at is really there (open to loopback).
    const metrics = await rawGet(port(h), "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^# (HELP|TYPE) /m);
    for (const t of UNSAFE) {
      const r = await rawGet(port(h), t);
      assert.equal(r.status, 400, `${t}: ${r.status} ${r.text.slice(0, 80)}`);
      assert.deepEqual(JSON.parse(r.text), { error: "bad request path" }, t);
      // Still a normal MXFlex response: logged with a request id, server headers set.
      assert.ok(r.headers.get("x-request-id"), t);
      assert.match(r.headers.get("server") ?? "", /^MXFlex\//, t);
    }
    // Without the guard the static route (which parses the URL) resolved this to /index.html.
    assert.equal((await rawGet(port(h), "/x/%2e%2e/index.html")).status, 400);
  });
});

Deno.test("path guard: the same paths are 400 over HTTP/2 (raw :path via node:http2, ALPN h2)", async () => {
  await withHarness(async (h) => {
    const session = http2.connect(h.url, { ca: CERT });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once("connect", () => resolve());
        session.once("error", reject);
      });
      assert.equal(session.alpnProtocol, "h2");
      const get = (path: string) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = session.request({ ":method": "GET", ":path": path });
          let status = 0, text = "";
          req.on("response", (hd) => status = Number(hd[":status"]));
          req.setEncoding("utf8");
          req.on("data", (d: string) => text += d);
          req.on("end", () => resolve({ status, text }));
          req.on("error", reject);
        });
      assert.equal((await get("/healthz")).status, 200);
      for (const t of UNSAFE) {
        const r = await get(t);
        assert.equal(r.status, 400, `${t}: ${r.status}`);
        assert.deepEqual(JSON.parse(r.text), { error: "bad request path" }, t);
      }
    } finally {
      session.close();
    }
  }, { tls: true });
});

Deno.test("path guard: ordinary paths, dots inside names and encoded characters in the query pass", async () => {
  await withHarness(async (h) => {
    for (const t of ["/healthz?x=%2e%2e%2f%5c", "/api/openapi.yaml", "/", "/..x", "/a.b/c..d"]) {
      const r = await rawGet(port(h), t);
      // Not refused: served (200) or simply not there (404).
      const want = t.startsWith("/..x") || t.startsWith("/a.b") ? 404 : 200;
      assert.equal(r.status, want, `${t}: ${r.status} ${r.text.slice(0, 80)}`);
    }
  });
  assert.equal(isUnsafePath("http://h/a.b/c..d/...x"), false);
  assert.equal(isUnsafePath("http://h/a/b?c=/../%2e"), false);
  assert.equal(isUnsafePath("http://h/a/b/."), true);
});
