/**
 * Metrics registry, `/metrics` (content, route-pattern labels, loopback/token protection) and
 * the request-log middleware (request ids, levels, no query strings or bodies in logs).
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  escapeLabelValue,
  formatValue,
  PROMETHEUS_CONTENT_TYPE,
  Registry,
  ServerMetrics,
} from "../lib/metrics.ts";
import { isValidRequestId, requestId, requestLog } from "../lib/http/request_log.ts";
import { isLoopback, metricsRoutes } from "../routes/metrics.ts";
import type { Logger } from "../lib/log.ts";
import { DMITRY, flexLogin, withHarness } from "./helpers/harness.ts";

/** The value of one sample line, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function remote(hostname: string): Deno.ServeHandlerInfo {
  return {
    remoteAddr: { hostname, port: 40000, transport: "tcp" },
    completed: Promise.resolve(),
  } as Deno.ServeHandlerInfo;
}

/** A logger that records every line. */
function captureLogger(): Logger & { lines: { level: string; msg: string; f: string }[] } {
  const lines: { level: string; msg: string; f: string }[] = [];
  const w = (level: string) => (msg: string, f?: Record<string, unknown>) =>
    lines.push({ level, msg, f: JSON.stringify(f ?? {}) });
  return { lines, debug: w("debug"), info: w("info"), warn: w("warn"), error: w("error") };
}

Deno.test("metrics: registry renders the text format 0.0.4", () => {
  const r = new Registry();
  const c = r.counter("jobs_total", "Jobs\\done\nok.", ["kind"]);
  c.inc({ kind: 'a"b\\c\nd' });
  c.inc({ kind: "x" }, 2.5);
  assert.throws(() => c.inc({ kind: "x" }, -1), RangeError);
  const g = r.gauge("temp", "Temperature.");
  g.set(undefined, -Infinity);
  const h = r.histogram("lat_seconds", "Latency.", ["op"], [0.1, 1]);
  h.observe({ op: "get" }, 0.05);
  h.observe({ op: "get" }, 0.5);
  h.observe({ op: "get" }, 7);
  h.observe({ op: "get" }, NaN); // ignored
  assert.equal(r.counter("jobs_total", "again", ["kind"]), c, "same name returns same metric");
  assert.throws(() => r.gauge("jobs_total", "clash"), TypeError);
  assert.throws(() => r.counter("bad-name", "x"), TypeError);
  assert.throws(() => r.histogram("h2", "x", ["le"]), TypeError);
  assert.throws(() => r.histogram("h3", "x", [], [1, 0.5]), TypeError);
  assert.equal(
    r.render(),
    [
      "# HELP jobs_total Jobs\\\\done\\nok.",
      "# TYPE jobs_total counter",
      'jobs_total{kind="a\\"b\\\\c\\nd"} 1',
      'jobs_total{kind="x"} 2.5',
      "# HELP temp Temperature.",
      "# TYPE temp gauge",
      "temp -Inf",
      "# HELP lat_seconds Latency.",
      "# TYPE lat_seconds histogram",
      'lat_seconds_bucket{op="get",le="0.1"} 1',
      'lat_seconds_bucket{op="get",le="1"} 2',
      'lat_seconds_bucket{op="get",le="+Inf"} 3',
      'lat_seconds_sum{op="get"} 7.55',
      'lat_seconds_count{op="get"} 3',
      "",
    ].join("\n"),
  );
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(escapeLabelValue("plain"), "plain");
  // Reads do not create series.
  assert.equal(c.value({ kind: "never" }), 0);
  assert.equal(h.count({ op: "never" }), 0);
  assert.ok(!r.render().includes("never"));
});

Deno.test("metrics: collect hooks read sessions and SSE clients at scrape time; push outcomes per app and event", () => {
  let state = "connecting";
  const m = new ServerMetrics({
    sseClients: () => 7,
    sessions: () => [{ name: "main", state, reconnects: 3 }],
  });
  m.registry.onCollect(() => {
    throw new Error("a broken hook does not break the scrape");
  });
  let text = m.registry.render();
  assert.equal(sample(text, "sse_clients"), 7);
  assert.equal(sample(text, 'mx_session_state{mx="main",state="connecting"}'), 1);
  assert.equal(sample(text, 'mx_session_state{mx="main",state="connected"}'), 0);
  assert.equal(sample(text, 'mx_reconnects_total{mx="main"}'), 3);
  assert.ok(!text.includes("push_sent_total{"));
  state = "connected";
  for (let i = 0; i < 5; i++) m.push.sent("fcm:app", "incoming", 40);
  m.push.sent("fcm:app", "missed", 3000);
  m.push.failed("fcm:app", "incoming");
  m.push.pruned("apns:com.app", "cancelled");
  text = m.registry.render();
  assert.equal(sample(text, 'mx_session_state{mx="main",state="connecting"}'), 0);
  assert.equal(sample(text, 'mx_session_state{mx="main",state="connected"}'), 1);
  assert.equal(sample(text, 'push_sent_total{app="fcm:app",event="incoming"}'), 5);
  assert.equal(sample(text, 'push_sent_total{app="fcm:app",event="missed"}'), 1);
  assert.equal(sample(text, 'push_failed_total{app="fcm:app",event="incoming"}'), 1);
  assert.equal(sample(text, 'push_pruned_total{app="apns:com.app",event="cancelled"}'), 1);
  assert.equal(
    sample(text, 'push_latency_seconds_bucket{app="fcm:app",event="incoming",le="0.05"}'),
    5,
  );
  assert.equal(
    sample(text, 'push_latency_seconds_bucket{app="fcm:app",event="missed",le="2.5"}'),
    0,
  );
  assert.equal(sample(text, 'push_latency_seconds_bucket{app="fcm:app",event="missed",le="5"}'), 1);
  assert.equal(sample(text, 'push_latency_seconds_count{app="fcm:app",event="incoming"}'), 5);
  // Unknown methods do not grow label cardinality.
  m.http({ route: "/x", method: "BREW", status: 404, ms: 1 });
  m.http({ route: "/x", method: "SPILL", status: 404, ms: 1 });
  text = m.registry.render();
  assert.equal(sample(text, 'http_requests_total{route="/x",method="OTHER",status="404"}'), 2);
});

Deno.test("metrics: loopback check", () => {
  for (const ip of ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.ok(isLoopback(ip), ip);
  }
  for (const ip of ["10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", "unknown", "", "127.0.0.1.evil"]) {
    assert.ok(!isLoopback(ip), ip);
  }
});

Deno.test("metrics: /metrics is loopback-only unless the bearer token matches", async () => {
  const registry = new Registry();
  registry.counter("x_total", "x").inc();
  for (const token of [undefined, "s3cret-token"]) {
    const app = new Hono();
    app.onError((err) => {
      const s = (err as { status?: number }).status ?? 500;
      return new Response(JSON.stringify({ error: err.message }), { status: s });
    });
    app.route("/", metricsRoutes({ registry, token }));
    const get = (ip: string, auth?: string) =>
      app.fetch(
        new Request("http://h/metrics", { headers: auth ? { authorization: auth } : {} }),
        remote(ip),
      );
    let res = await get("127.0.0.1");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    assert.match(await res.text(), /^x_total 1$/m);
    res = await get("203.0.113.9");
    assert.equal(res.status, token ? 401 : 403);
    await res.body?.cancel();
    res = await get("203.0.113.9", "Bearer wrong");
    assert.equal(res.status, token ? 401 : 403);
    await res.body?.cancel();
    res = await get("203.0.113.9", `Bearer ${token}x`);
    assert.equal(res.status, token ? 401 : 403);
    await res.body?.cancel();
    if (token) {
      res = await get("203.0.113.9", `Bearer ${token}`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^x_total 1$/m);
    }
  }
});

Deno.test("metrics: end to end — route patterns, MX state, CSTA frames, SSE clients", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const auth = { authorization: `Bearer ${token}` };
    const sse = await fetch(`${h.url}/api/events`, {
      headers: { ...auth, accept: "text/event-stream" },
    });
    assert.equal(sse.status, 200);
    let res = await fetch(`${h.url}/api/calls/12345/hold`, { method: "POST", headers: auth });
    await res.body?.cancel();
    res = await fetch(`${h.url}/api/calls/777/hold`, { method: "POST", headers: auth });
    await res.body?.cancel();
    const holdStatus = res.status;
    res = await fetch(`${h.url}/no/such/file.txt`);
    await res.body?.cancel();
    res = await fetch(`${h.url}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    const text = await res.text();
    assert.equal(
      sample(text, 'http_requests_total{route="/api/login",method="POST",status="200"}'),
      1,
    );
    // The hono pattern, not the raw path: both calls share one series.
    assert.equal(
      sample(
        text,
        `http_requests_total{route="/api/calls/:callId/hold",method="POST",status="${holdStatus}"}`,
      ),
      2,
    );
    assert.ok(!text.includes("12345"), "raw path values never become labels");
    assert.ok(!text.includes("such"), "raw static paths never become labels");
    assert.equal(
      sample(text, 'http_request_duration_seconds_count{route="/api/calls/:callId/hold"}'),
      2,
    );
    assert.equal(sample(text, 'mx_session_state{mx="test",state="connected"}'), 1);
    assert.equal(sample(text, 'mx_session_state{mx="test",state="disconnected"}'), 0);
    assert.equal(sample(text, 'mx_reconnects_total{mx="test"}'), 0);
    assert.equal(sample(text, "sse_clients"), 1);
    assert.ok(sample(text, 'csta_frames_total{direction="in"}')! > 0);
    assert.ok(sample(text, 'csta_frames_total{direction="out"}')! > 0);
    assert.ok(sample(text, "csta_command_duration_seconds_count")! > 0);
    assert.equal(sample(text, "csta_timeouts_total"), undefined);
    assert.ok(!text.includes(token), "no secrets in metrics");
    await sse.body?.cancel();

    // A reply that never comes is a timeout.
    h.sim.setSilent(["MakeCall"]);
    res = await fetch(`${h.url}/api/call`, {
      method: "POST",
      headers: auth,
      body: new URLSearchParams({ to: "3044" }),
    });
    assert.equal(res.status, 504);
    await res.body?.cancel();
    h.sim.setSilent([]);
    const after = await (await fetch(`${h.url}/metrics`)).text();
    assert.equal(sample(after, "csta_timeouts_total"), 1);
    assert.equal(
      sample(after, 'http_requests_total{route="/api/call",method="POST",status="504"}'),
      1,
    );
    assert.equal(sample(after, "sse_clients"), 0);
  });
});

Deno.test("metrics: /metrics through the whole server refuses non-loopback clients", async () => {
  await withHarness(async (h) => {
    const res = await h.server.fetch(new Request("http://x/metrics"), remote("198.51.100.7"));
    assert.ok(res.status === 401 || res.status === 403, `status ${res.status}`);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    await res.body?.cancel();
  });
});

Deno.test("request log: X-Request-Id is echoed when well formed, generated otherwise", async () => {
  await withHarness(async (h) => {
    let res = await fetch(`${h.url}/healthz`, { headers: { "x-request-id": "abc-123.X_y:z" } });
    await res.body?.cancel();
    assert.equal(res.headers.get("x-request-id"), "abc-123.X_y:z");
    for (const bad of ["has space", "x".repeat(65), "é", "a/b", "<script>"]) {
      res = await fetch(`${h.url}/healthz`, { headers: { "x-request-id": bad } });
      await res.body?.cancel();
      const id = res.headers.get("x-request-id") ?? "";
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/);
    }
    // Error responses and 404s carry it too.
    res = await fetch(`${h.url}/api/contacts`);
    await res.body?.cancel();
    assert.equal(res.status, 401);
    assert.ok(res.headers.get("x-request-id"));
    res = await fetch(`${h.url}/index.html`, { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 301);
    assert.ok(res.headers.get("x-request-id"));
  });
  assert.ok(isValidRequestId("a"));
  assert.ok(!isValidRequestId(""));
  assert.ok(!isValidRequestId(null));
});

Deno.test("request log: one line per request, debug for 2xx/3xx, info for 4xx/5xx, no secrets", async () => {
  const log = captureLogger();
  const seen: string[] = [];
  const app = new Hono();
  app.use("*", requestLog({ log, observe: (r) => seen.push(`${r.route} ${r.status}`) }));
  app.onError((_err, c) => c.json({ error: "boom" }, 500));
  app.get("/ok/:id", (c) => c.text(requestId(c)));
  app.post("/login", async (c) => {
    await c.req.text();
    return c.json({ error: "unauthorized" }, 401);
  });
  app.get("/fail", () => {
    throw new Error("internal");
  });
  let res = await app.request("/ok/42?access_token=SECRET-JWT-VALUE", {
    headers: { "x-request-id": "req-1", authorization: "Bearer SECRET-HEADER" },
  });
  assert.equal(await res.text(), "req-1");
  res = await app.request("/login?password=SECRET-Q", {
    method: "POST",
    body: "login=dmitry&password=SECRET-BODY",
  });
  await res.body?.cancel();
  res = await app.request("/fail");
  await res.body?.cancel();
  res = await app.request("/nothing-here");
  await res.body?.cancel();
  assert.equal(log.lines.length, 4);
  assert.deepEqual(log.lines.map((l) => l.level), ["debug", "info", "info", "info"]);
  assert.deepEqual(seen, ["/ok/:id 200", "/login 401", "/fail 500", "unmatched 404"]);
  const first = JSON.parse(log.lines[0].f);
  assert.equal(first.method, "GET");
  assert.equal(first.route, "/ok/:id");
  assert.equal(first.path, "/ok/42");
  assert.equal(first.status, 200);
  assert.equal(first.id, "req-1");
  assert.equal(typeof first.ms, "number");
  const all = JSON.stringify(log.lines);
  for (const secret of ["SECRET", "access_token", "password", DMITRY.password]) {
    assert.ok(!all.includes(secret), `${secret} leaked into the request log`);
  }
});
