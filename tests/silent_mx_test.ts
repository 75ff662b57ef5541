/**
 * An MX that accepts TCP but says nothing: every HTTP request answers within its documented
 * bound. The connect timeout (`connectTimeoutMs`, here 200 ms) is set far below the test's own
 * bound and the reply timeout (`requestTimeoutMs`, here 60 s) far above it, so a request that
 * waited for any other timer than the connect timeout would hit the test's abort instead.
 */
import assert from "node:assert/strict";
import { basic, DMITRY, flexLogin, startHarness } from "./helpers/harness.ts";
import { SilentTcp } from "./helpers/silent_tcp.ts";
import { waitUntil } from "./helpers/wait.ts";

/** The test's own bound on every request: far above the 200 ms connect timeout. */
const TEST_BOUND_MS = 10_000;
const TIMEOUTS = { connectTimeoutMs: 200, requestTimeoutMs: 60_000 };

function call(url: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(TEST_BOUND_MS) });
}

async function expectStatus(res: Response, status: number, what: string): Promise<unknown> {
  const body = await res.json();
  assert.equal(res.status, status, `${what}: ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body as object), ["error"], what);
  return body;
}

Deno.test("silent MX: login and every proxy endpoint answer 504 on the connect timeout", async () => {
  const silent = new SilentTcp();
  const h = await startHarness({
    waitReady: false,
    config: {
      mx: { test: { addr: `127.0.0.1:${silent.port}`, login: "server", password: "password" } },
      ...TIMEOUTS,
    },
  });
  try {
    const login = await call(h.url, "/api/login", {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
    });
    assert.deepEqual(await expectStatus(login, 504, "login"), { error: "MX connect timeout" });
    const auth = { authorization: basic() };
    for (
      const [method, path, body] of [
        ["GET", "/mx/test/addressbook"],
        ["GET", "/mx/test/calllog"],
        ["GET", "/mx/test/voicemail"],
        ["GET", "/mx/test/voicemail/80"],
        ["PATCH", "/mx/test/voicemail/80", '{"readed":true}'],
        ["DELETE", "/mx/test/voicemail/80"],
        ["POST", "/mx/test/call", '{"from":"79031744445","to":"3099"}'],
      ]
    ) {
      const res = await call(h.url, path, {
        method,
        headers: { ...auth, "content-type": "application/json" },
        body,
      });
      assert.deepEqual(await expectStatus(res, 504, `${method} ${path}`), {
        error: "MX connect timeout",
      });
    }
    // The server session is trying too, and /readyz says why it is not ready.
    const ready = await call(h.url, "/readyz");
    assert.equal(ready.status, 503);
    const r = await ready.json();
    assert.equal(r.ready, false);
    assert.equal(r.mx.test.error, "MX connect timeout");
    assert.ok(silent.accepted >= 2, "the listener really accepted the connections");
  } finally {
    await h.close();
    await silent.close();
  }
});

Deno.test("silent MX: after it goes silent, calls are 503 at once, contacts come from the cache", async () => {
  const h = await startHarness({ config: TIMEOUTS });
  let silent: SilentTcp | undefined;
  try {
    const token = await flexLogin(h.url);
    const bearer = { authorization: `Bearer ${token}` };
    const mx = h.server.sessions.get("test")!;
    // The MX goes away and something silent takes its port.
    const port = h.sim.port;
    await h.sim.close();
    silent = new SilentTcp(port);
    // Positive marker: a reconnect attempt reached the silent listener and timed out.
    await waitUntil(() => mx.state !== "connected" && mx.lastError === "MX connect timeout", {
      what: () => `a connect timeout (last error: ${mx.lastError})`,
      timeoutMs: TEST_BOUND_MS,
    });
    const made = await call(h.url, "/api/call", {
      method: "POST",
      headers: bearer,
      body: new URLSearchParams({ to: "3099" }),
    });
    assert.deepEqual(await expectStatus(made, 503, "call"), {
      error: "MX unavailable: MX connect timeout",
    });
    const hold = await call(h.url, "/api/calls/38/hold", { method: "POST", headers: bearer });
    await expectStatus(hold, 503, "hold");
    const contacts = await call(h.url, "/api/contacts", { headers: bearer });
    assert.equal(contacts.status, 200, "the address book is kept across outages");
    assert.ok((await contacts.json()).contacts.length > 0);
    const vm = await call(h.url, "/mx/test/voicemail", { headers: { authorization: basic() } });
    await expectStatus(vm, 504, "voicemail");
    const logout = await call(h.url, "/api/logout", { headers: bearer });
    assert.equal(logout.status, 204);
  } finally {
    await h.close({ keepSim: true });
    await silent?.close();
  }
});
