/**
 * `Server` and `X-API-Version` (lib/http/server_headers.ts) on every kind of response the
 * middleware chain of routes/mod.ts produces, end to end.
 */
import assert from "node:assert/strict";
import { flexLogin, startHarness, withHarness } from "./helpers/harness.ts";
import { VERSION } from "../lib/version.ts";

function assertHeaders(res: Response, what: string): void {
  assert.equal(res.headers.get("server"), `MXFlex/${VERSION}`, what);
  assert.equal(res.headers.get("x-api-version"), "1.0", what);
}

Deno.test("server headers: on success, errors thrown by routes, unknown paths and SSE streams", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const cases: Array<[string, RequestInit, number]> = [
      ["/healthz", {}, 200],
      ["/api/contacts", { headers: { authorization: `Bearer ${t}` } }, 200],
      ["/api/contacts", {}, 401],
      ["/nope/nothing", {}, 404],
      [
        "/api/events",
        { headers: { authorization: `Bearer ${t}`, accept: "application/json" } },
        406,
      ],
    ];
    for (const [path, init, status] of cases) {
      const res = await fetch(`${h.url}${path}`, init);
      assert.equal(res.status, status, path);
      assertHeaders(res, `${path} ${status}`);
      await res.body?.cancel();
    }
    const sse = await fetch(`${h.url}/api/events?access_token=${t}`, {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(sse.status, 200);
    assertHeaders(sse, "SSE");
    await sse.body?.cancel();
  });
});

Deno.test("server headers: also on the 503 answered while the server stops", async () => {
  const h = await startHarness();
  try {
    const closing = h.server.close();
    const res = await fetch(`${h.url}/healthz`);
    assert.equal(res.status, 503);
    assertHeaders(res, "503");
    await res.body?.cancel();
    await closing;
  } finally {
    await h.close();
  }
});
