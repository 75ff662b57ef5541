/**
 * The HTTP API as a hostile or careless client uses it, end to end (HTTP -> server -> CSTA over
 * TLS -> simulator and back): each test is a bug found by attacking a running server, kept so
 * it stays fixed. Text the MX cannot carry, device tokens the docs allow, login names padded
 * to dodge the limits, paths spelled with encoded letters, a token whose MX password changed,
 * impossible dates.
 */
import assert from "node:assert/strict";
import { basic, DMITRY, flexLogin, type Harness, withHarness } from "./helpers/harness.ts";
import { fetchFrom } from "./helpers/from_address.ts";
import { defaultUsers } from "../lib/mxsim/mod.ts";
import { MockApns, mockEndpoints, MockFcm } from "./helpers/mock_push.ts";
import { waitUntil } from "./helpers/wait.ts";

const FIXTURES = new URL("./fixtures/push/", import.meta.url).pathname;

function send(
  h: Harness,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${h.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function answer(res: Response | Promise<Response>): Promise<[number, unknown]> {
  const r = await res;
  const text = await r.text();
  return [r.status, text ? JSON.parse(text) : null];
}

Deno.test("attack: text the MX cannot carry is 400 at once, never sent (no 504, no NUL in a frame)", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      note: "before",
      content: new Uint8Array(64),
    });
    const mark = h.sim.mark();
    // A lone surrogate reaches the MX as U+FFFD, so its confirmation never matched: a 504
    // after the MX timeout. NUL and other C0 controls are not XML at all.
    const cases: Array<[string, string, unknown, string]> = [
      ["PUT", "/api/presence", { status: "Away", note: "\ud800" }, "note"],
      ["PUT", "/api/presence", { status: "Away", note: "a\udc00b" }, "note"],
      ["PATCH", `/api/voicemail/${id}`, { note: "x\u0000y" }, "note"],
      ["PATCH", `/api/voicemail/${id}`, { note: "esc\u001b[2J" }, "note"],
      ["PATCH", `/api/voicemail/${id}`, { note: "\uffff" }, "note"],
      ["POST", "/api/call", { to: "3099\ud800" }, "to"],
    ];
    for (const [method, path, body, field] of cases) {
      const started = Date.now();
      const [status, json] = await answer(send(h, method, path, t, body));
      assert.deepEqual(
        [status, json],
        [400, { error: `${field} has characters that cannot be sent` }],
        `${method} ${path} ${JSON.stringify(body)}`,
      );
      assert.ok(Date.now() - started < 1500, "answered without waiting for the MX");
    }
    const proxy = await fetch(`${h.url}/mx/test/call`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ from: DMITRY.ext, to: "\u0001" }),
    });
    assert.deepEqual(await answer(proxy), [400, {
      error: "to has characters that cannot be sent",
    }]);

    // Tab, new line and astral characters are fine in a voicemail note.
    assert.equal(
      (await send(h, "PATCH", `/api/voicemail/${id}`, t, { note: "a\tb\n😀" })).status,
      204,
    );
    assert.equal(
      (await send(h, "PUT", "/api/presence", t, { status: "Busy", note: "😀" })).status,
      204,
    );
    // The later markers arrived; none of the bad ones was sent.
    const sent = h.sim.received.filter((m) => m.seq >= mark);
    assert.deepEqual(
      sent.filter((m) => m.name === "presence").map((m) => m.xml),
      ['<presence status="Busy"><presenceNote>😀</presenceNote></presence>'],
    );
    // deno-lint-ignore no-control-regex
    assert.ok(!sent.some((m) => /[\u0000-\u0008\u001b\ufffd\uffff]/.test(m.xml)));
    assert.ok(!sent.some((m) => m.name === "MakeCall"));
    assert.equal(h.sim.voicemails(DMITRY.ext).find((v) => v.mailId === id)?.note, "a\tb\n😀");
  });
});

Deno.test("attack: device tokens of up to 1024 characters register and get the pushes; numbers, controls and non-ASCII are 400", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const config = {
    apns: { [`${FIXTURES}apns-both.p12`]: "mxflex-test" },
    fcm: { "app-name": `${FIXTURES}service-account.json` },
    pushEndpoints: mockEndpoints(apns, fcm),
  };
  try {
    await withHarness(async (h) => {
      const register = (path: string, body: unknown) =>
        fetch(`${h.url}/mx/test/token/${path}`, {
          method: "POST",
          headers: { authorization: basic(), "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      // openapi PushToken.token said 20–4096; the body parser stopped at 256, and the token
      // store (the token is part of its KV keys, at most 2 KiB) failed with 500 beyond ~1.9 KiB.
      const long = "fcm:" + "A1b2-C3d4_".repeat(30); // 304 characters
      const longest = "f".repeat(1024);
      assert.equal((await register("fcm/app-name", { token: ` ${long} ` })).status, 204);
      assert.equal((await register("fcm/app-name", { token: longest })).status, 204);
      for (
        const body of [
          { token: "f".repeat(1025) },
          { token: "f".repeat(4096) },
          { token: 12345678901234567890123 }, // a JSON number: was stored as "1.2345678901234568e+22"
          { token: "a1b2c3d4".repeat(4) + "\u0000" },
          { token: "é".repeat(30) },
          { token: "has spaces in the middle of it" },
          {},
        ]
      ) {
        assert.deepEqual(
          await answer(register("fcm/app-name", body)),
          [400, { error: "bad push token" }],
          JSON.stringify(body).slice(0, 60),
        );
      }
      const apnsToken = "a1b2c3d4".repeat(8);
      for (const alertToken of ["b".repeat(257), "short", 5, "c\u0007".repeat(20)]) {
        assert.deepEqual(
          await answer(register("apns/com.example.mxflex", { token: apnsToken, alertToken })),
          [400, { error: "bad alert token" }],
          String(alertToken).slice(0, 20),
        );
      }
      // An empty alertToken is no alertToken, as before.
      const empty = await register("apns/com.example.mxflex", { token: apnsToken, alertToken: "" });
      assert.equal(empty.status, 204);

      await waitUntil(() => h.server.sessions.get("test")!.client.isMonitoring(DMITRY.ext), {
        what: "monitor on the user's extension",
      });
      h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
      const tokens = () => fcm.requests.map((r) => JSON.parse(r.body).message.token);
      await waitUntil(() => tokens().includes(long) && tokens().includes(longest), {
        what: "the incoming push to both long tokens",
      });
      assert.ok(!tokens().some((t) => t.startsWith("1.23")), "no token from a JSON number");
    }, { config });
  } finally {
    await apns.close();
    await fcm.close();
  }
});

Deno.test("attack: a login padded with spaces shares the login's limits (Proxy Basic auth)", async () => {
  await withHarness(async (h) => {
    const from = (ip: string, login: string, password: string) =>
      fetchFrom(ip, `${h.url}/mx/test/addressbook`, {
        headers: { authorization: "Basic " + btoa(`${login}:${password}`) },
      });
    for (let i = 0; i < 3; i++) {
      assert.equal((await from("127.0.0.2", DMITRY.login, `wrong${i}`)).status, 401);
    }
    assert.equal((await from("127.0.0.2", DMITRY.login, "wrong")).status, 429);
    // The MX trims the name (the simulator does): " dmitry" with the right password is
    // dmitry. Each padding was a fresh pair of limits, so fresh guesses.
    assert.equal((await from("127.0.0.2", ` ${DMITRY.login}`, "wrong")).status, 429);
    assert.equal((await from("127.0.0.2", `${DMITRY.login}  `, DMITRY.password)).status, 429);
    assert.equal((await from("127.0.0.2", ` ${DMITRY.login.toUpperCase()}`, "x")).status, 429);
    // The user at their own address is not affected.
    assert.equal((await from("127.0.0.1", DMITRY.login, DMITRY.password)).status, 200);
  }, { config: { rateLimits: { loginAddress: { failures: 3 } } } });
});

Deno.test("attack: percent-encoded letters, digits, '-', '_' and '~' in the path are 400, never the route they spell", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const auth = { Authorization: `Bearer ${t}` };
    // A proxy that blocks /metrics by prefix lets /%6detrics through; hono decodes it.
    for (
      const p of [
        "/%6detrics",
        "/m%45trics",
        "/%72eadyz",
        "/api/%63alls",
        "/api/call%73",
        "/mx/test/%61ddressbook",
        "/api/voicemail/%38%30",
        "/api/openapi%2Dyaml",
        "/x%5Fy",
        "/%7Euser",
      ]
    ) {
      const res = await fetch(`${h.url}${p}`, { headers: auth });
      assert.deepEqual(await answer(res), [400, { error: "bad request path" }], p);
    }
    // Encoded reserved and non-ASCII characters, and anything in the query, still pass.
    for (const [p, want] of [["/a%20b", 404], ["/%C3%A9", 404], ["/api/calls?x=%6d", 200]]) {
      const res = await fetch(`${h.url}${p}`, { headers: auth });
      await res.body?.cancel();
      assert.equal(res.status, want, p as string);
    }
  });
});

Deno.test("attack: a token whose MX password changed gets 401 'log in again' with the Bearer challenge, and the MX is asked once", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    h.sim.updateUser(DMITRY.jid, { password: "changed" });
    const mark = h.sim.mark();
    for (const path of ["/api/voicemail", "/api/calllog", "/api/voicemail/80"]) {
      const res = await send(h, "GET", path, t);
      assert.equal(
        res.headers.get("www-authenticate"),
        'Bearer realm="MXFlex", error="invalid_token"',
      );
      assert.deepEqual(
        await answer(res),
        [401, { error: "user session unavailable, log in again" }],
        path,
      );
    }
    const put = await send(h, "PUT", "/api/presence", t, { status: "Away" });
    assert.deepEqual(await answer(put), [401, { error: "user session unavailable, log in again" }]);
    // The token still serves what needs no user session.
    assert.equal((await answer(send(h, "GET", "/api/calls", t)))[0], 200);
    // A later login is the marker: only the first request tried the stale credential.
    await flexLogin(h.url, DMITRY.login, "changed");
    const logins = h.sim.received.filter((m) => m.seq >= mark && m.name === "loginRequest");
    assert.equal(logins.length, 2, "one refused user session, then the new login");
  });
});

Deno.test("attack: impossible dates in the call-log timestamp are 400 on both APIs", async () => {
  await withHarness(async (h) => {
    // One record: a non-empty log answers at once (an empty one ends by a 2 s timeout).
    h.sim.addCallLog(DMITRY.ext, {});
    const t = await flexLogin(h.url);
    const get = (api: "flex" | "proxy", ts: string) =>
      api === "flex"
        ? send(h, "GET", `/api/calllog?timestamp=${encodeURIComponent(ts)}`, t)
        : fetch(`${h.url}/mx/test/calllog?timestamp=${encodeURIComponent(ts)}`, {
          headers: { authorization: basic() },
        });
    for (const api of ["flex", "proxy"] as const) {
      for (
        const ts of [
          "2017-02-30T00:00:00Z",
          "2017-02-29T12:00:00Z",
          "2017-04-31T00:00:00+02:00",
          "2017-07-28T24:00:00Z",
          "2017-00-10T00:00:00Z",
          "2017-13-01T00:00:00Z",
        ]
      ) {
        assert.deepEqual(await answer(get(api, ts)), [400, { error: "bad timestamp format" }], ts);
      }
      for (const ts of ["2016-02-29T23:59:59Z", "2017-07-28T14:31:47.123456789+03:00", "0"]) {
        const [status] = await answer(get(api, ts));
        assert.equal(status, 200, `${api} ${ts}`);
      }
    }
  });
});

Deno.test("attack: one user holds at most 10 MX user sessions; downloads it never reads cannot open hundreds", async () => {
  await withHarness(async (h) => {
    const id = h.sim.addVoicemail(DMITRY.ext, { from: "3099", content: new Uint8Array(1 << 20) });
    const t = await flexLogin(h.url);
    const base = h.sim.sessionCount();
    // Downloads whose bodies are never read: each held its user session for the stall limit.
    const held = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${h.url}/api/voicemail/${id}?access_token=${t}`)),
    );
    assert.deepEqual([...new Set(held.map((r) => r.status))], [200]);
    const more = await Promise.all([
      fetch(`${h.url}/api/voicemail/${id}?access_token=${t}`),
      send(h, "GET", "/api/voicemail", t),
      fetch(`${h.url}/mx/test/voicemail`, { headers: { authorization: basic() } }),
    ]);
    for (const r of more) {
      assert.equal(r.headers.get("retry-after"), "5");
      assert.deepEqual(await answer(r), [429, { error: "too many MX sessions for this user" }]);
    }
    assert.equal(h.sim.sessionCount(), base + 10, "the refused ones were closed at once");
    // Another user is not affected.
    const maxim = await fetch(`${h.url}/mx/test/voicemail`, {
      headers: { authorization: basic("maxim", "secret") },
    });
    assert.equal((await answer(maxim))[0], 200);
    // A download that ends frees its slot.
    await held[0].body!.cancel();
    await waitUntil(() => h.sim.sessionCount() === base + 9, {
      what: "the cancelled session gone",
    });
    assert.equal((await answer(send(h, "GET", "/api/voicemail", t)))[0], 200);
    await Promise.all(held.slice(1).map((r) => r.body!.cancel()));
  });
});

Deno.test("attack: a JSON login password that is a number is its digits; another type is 400, never an empty password", async () => {
  const pin = {
    login: "pin",
    password: "1234",
    jid: "43884854999999999",
    ext: "5999",
    firstName: "Pin",
    lastName: "User",
  };
  await withHarness(async (h) => {
    const login = (password: unknown) =>
      fetch(`${h.url}/api/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ login: pin.login, password }),
      });
    const mark = h.sim.mark();
    for (const password of [["1234"], { p: "1234" }, true]) {
      assert.deepEqual(
        await answer(login(password)),
        [400, { error: "password must be a string" }],
        JSON.stringify(password),
      );
    }
    const [status] = await answer(login(1234));
    assert.equal(status, 200);
    // The later login is the marker: the bad ones never reached the MX.
    const tried = h.sim.received.filter((m) => m.seq >= mark && m.name === "loginRequest");
    assert.equal(tried.length, 1);
  }, { sim: { users: [...defaultUsers(), pin] } });
});
