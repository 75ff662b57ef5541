/**
 * The client address end to end: `trustedProxies` makes MXFlex believe `X-Forwarded-For` /
 * `Forwarded` from those peers only, for the login limits, the request log and the `/metrics`
 * loopback check; spoofed headers from any other peer change nothing. The proxy is 127.0.0.1,
 * an untrusted client 127.0.0.2 (node:http bound to that address).
 */
import assert from "node:assert/strict";
import { DMITRY, withHarness } from "./helpers/harness.ts";
import { fetchFrom } from "./helpers/from_address.ts";
import { createLogger } from "../lib/log.ts";

const PROXY = "127.0.0.1";
const STRANGER = "127.0.0.2";

function login(from: string, url: string, headers: Record<string, string>, password = "wrong") {
  return fetchFrom(from, `${url}/api/login`, {
    method: "POST",
    headers,
    body: new URLSearchParams({ login: DMITRY.login, password }),
  });
}

async function status(res: Promise<Response>): Promise<number> {
  const r = await res;
  await r.body?.cancel();
  return r.status;
}

const config = { trustedProxies: [PROXY], rateLimits: { loginAddress: { failures: 3 } } };

Deno.test("client address: behind a trusted proxy each client has its own login limits", async () => {
  await withHarness(async (h) => {
    const xff = (ip: string) => ({ "x-forwarded-for": `198.51.100.1, ${ip}` });
    for (let i = 0; i < 3; i++) {
      assert.equal(await status(login(PROXY, h.url, xff("203.0.113.7"))), 401);
    }
    assert.equal(await status(login(PROXY, h.url, xff("203.0.113.7"))), 429);
    // Another client behind the same proxy (today: the same address, so refused too).
    assert.equal(await status(login(PROXY, h.url, xff("203.0.113.8"), DMITRY.password)), 200);
    // RFC 7239 Forwarded works the same, IPv6 included (counted per /64).
    const fwd = (n: number) => ({ forwarded: `for="[2001:db8:0:1::${n}]:443";proto=https` });
    for (let i = 1; i <= 3; i++) assert.equal(await status(login(PROXY, h.url, fwd(i))), 401);
    assert.equal(await status(login(PROXY, h.url, fwd(9))), 429);
    assert.equal(await status(login(PROXY, h.url, xff("2001:db8:0:2::1"), DMITRY.password)), 200);
  }, { config });
});

Deno.test("client address: headers from an untrusted peer are ignored (spoofing)", async () => {
  await withHarness(async (h) => {
    // The stranger claims to be a victim behind the proxy, a new address each time.
    for (let i = 0; i < 3; i++) {
      const spoof = {
        "x-forwarded-for": `203.0.113.${50 + i}`,
        forwarded: `for=203.0.113.${50 + i}`,
      };
      assert.equal(await status(login(STRANGER, h.url, spoof)), 401);
    }
    // It was all counted against the stranger's own address, whatever it claims next.
    const next = { "x-forwarded-for": "203.0.113.99" };
    assert.equal(await status(login(STRANGER, h.url, next, DMITRY.password)), 429);
    // The victims it named were charged nothing.
    const victim = { "x-forwarded-for": "203.0.113.50" };
    assert.equal(await status(login(PROXY, h.url, victim, DMITRY.password)), 200);
  }, { config });
});

Deno.test("client address: /metrics is local only for a local client, not for a local proxy", async () => {
  await withHarness(async (h) => {
    const metrics = (from: string, headers: Record<string, string>) =>
      status(fetchFrom(from, `${h.url}/metrics`, { headers }));
    // Through the trusted local proxy: the real client decides.
    assert.equal(await metrics(PROXY, { "x-forwarded-for": "203.0.113.7" }), 403);
    assert.equal(await metrics(PROXY, { forwarded: 'for="[2001:db8::1]"' }), 403);
    assert.equal(await metrics(PROXY, { "x-forwarded-for": "127.0.0.1" }), 200);
    // A proxy that names nobody, or garbage, or two disagreeing headers: unknown, not local.
    assert.equal(await metrics(PROXY, {}), 403);
    assert.equal(await metrics(PROXY, { forwarded: "for=127.0.0.1;for=127.0.0.1" }), 403);
    assert.equal(await metrics(PROXY, { forwarded: "for=unknown" }), 403);
    assert.equal(
      await metrics(PROXY, { "x-forwarded-for": "203.0.113.7", forwarded: "for=127.0.0.1" }),
      403,
    );
    // A direct loopback client that is not a proxy is local whatever it claims.
    assert.equal(await metrics(STRANGER, { "x-forwarded-for": "203.0.113.7" }), 200);
  }, { config });
});

Deno.test("client address: the request log names the client the trusted proxy names", async () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", format: "json", sink: (l) => lines.push(l) });
  await withHarness(async (h) => {
    await status(login(PROXY, h.url, { "x-forwarded-for": "203.0.113.7" }));
    await status(login(STRANGER, h.url, { "x-forwarded-for": "203.0.113.8" }));
    await status(fetchFrom(PROXY, `${h.url}/healthz`, { headers: { forwarded: "for=x;;=" } }));
  }, { config, log });
  const http = lines.map((l) => JSON.parse(l)).filter((r) => r.msg === "http");
  assert.deepEqual(
    http.map((r) => [r.path, r.status, r.client]),
    [["/api/login", 401, "203.0.113.7"], ["/api/login", 401, STRANGER], [
      "/healthz",
      200,
      "unknown",
    ]],
  );
  const refused = lines.map((l) => JSON.parse(l)).filter((r) => r.msg === "login refused");
  assert.deepEqual(refused.map((r) => r.ip), ["203.0.113.7", STRANGER]);
});
