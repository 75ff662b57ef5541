/**
 * Flex API end to end: HTTP -> MXFlex -> CSTA over TLS -> MX simulator, and back.
 */
import assert from "node:assert/strict";
import { decodeJwt, SignJWT } from "jose";
import { EventSource } from "eventsource";
import {
  CERT,
  DMITRY,
  eventSeq,
  flexLogin,
  openEvents,
  SseReader,
  startHarness,
  withHarness,
} from "./helpers/harness.ts";
import { waitUntil } from "./helpers/wait.ts";

function auth(token: string): HeadersInit {
  return { authorization: `Bearer ${token}` };
}

Deno.test("flex: login returns a JWT with the seed's claims; the user is monitored", async () => {
  await withHarness(async (h) => {
    const res = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /application\/json/);
    const body = await res.json();
    assert.deepEqual(Object.keys(body), ["token_type", "access_token", "expires_in"]);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 3600);
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.sub, DMITRY.jid); // a string: all 17 digits survive
    assert.equal(claims.ext, DMITRY.ext);
    assert.equal(claims.mx, h.sim.sn);
    assert.equal(claims.exp! - claims.iat!, 3610);
    // The simulator saw a User/CRM/1.0 login and a MonitorStart for 3095 on the server session.
    const login = h.sim.received.find((m) =>
      m.name === "loginRequest" && m.xml.includes("<userName>dmitry</userName>")
    );
    assert.ok(login);
    assert.match(login.xml, /type="User" platform="CRM" version="1.0"/);
    assert.ok(h.sim.received.some((m) => m.name === "MonitorStart" && m.xml.includes(">3095<")));
    assert.equal(h.server.sessions.get("test")!.holders("3095"), 1);
  });
});

Deno.test("flex: login accepts JSON bodies too", async () => {
  await withHarness(async (h) => {
    const res = await fetch(`${h.url}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login: DMITRY.login, password: DMITRY.password }),
    });
    assert.equal(res.status, 200);
    assert.ok((await res.json()).access_token);
  });
});

Deno.test("flex: login failures are 400/401 with an error body", async () => {
  await withHarness(async (h) => {
    let res = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: "wrong" }),
    });
    assert.equal(res.status, 401);
    assert.ok((await res.json()).error);
    res = await fetch(`${h.url}/api/login`, { method: "POST", body: new URLSearchParams({}) });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "login required" });
    res = await fetch(`${h.url}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(res.status, 400);
    assert.ok((await res.json()).error);
  });
});

Deno.test("flex: repeated wrong passwords are rate limited per login", async () => {
  await withHarness(async (h) => {
    let last = 0;
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${h.url}/api/login`, {
        method: "POST",
        body: new URLSearchParams({ login: "3044", password: "bad" }),
      });
      await res.body?.cancel();
      last = res.status;
    }
    assert.equal(last, 429);
  });
});

Deno.test("flex: the token works from header, query and form body", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const viaHeader = await fetch(`${h.url}/api/contacts`, { headers: auth(t) });
    assert.equal(viaHeader.status, 200);
    await viaHeader.body?.cancel();
    const viaQuery = await fetch(`${h.url}/api/contacts?access_token=${t}`);
    assert.equal(viaQuery.status, 200);
    await viaQuery.body?.cancel();
    const viaForm = await fetch(`${h.url}/api/call`, {
      method: "POST",
      body: new URLSearchParams({ to: "3099", access_token: t }),
    });
    assert.equal(viaForm.status, 200);
    await viaForm.body?.cancel();
  });
});

Deno.test("flex: missing, tampered, alg:none and foreign-key tokens are 401", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    let res = await fetch(`${h.url}/api/contacts`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm="MXFlex"/);
    assert.deepEqual(await res.json(), { error: "unauthorized" });
    const [hd, pl, sig] = t.split(".");
    const payload = JSON.parse(atob(pl.replace(/-/g, "+").replace(/_/g, "/")));
    payload.ext = "3099";
    const b64 = (o: unknown) =>
      btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const tampered = `${hd}.${b64(payload)}.${sig}`;
    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`;
    const foreign = await new SignJWT(payload).setProtectedHeader({ alg: "HS256" }).sign(
      crypto.getRandomValues(new Uint8Array(64)),
    );
    for (const bad of [tampered, none, foreign, t.slice(0, -5), "garbage"]) {
      res = await fetch(`${h.url}/api/contacts`, { headers: auth(bad) });
      assert.equal(res.status, 401, bad);
      // The RFC 6750 challenge for a rejected token, and the issuer's short reason.
      assert.equal(
        res.headers.get("www-authenticate"),
        'Bearer realm="MXFlex", error="invalid_token"',
        bad,
      );
      assert.deepEqual(await res.json(), { error: "invalid token" });
    }
  });
});

Deno.test("flex: contacts come sorted by extension with presence, and support ETag", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const res = await fetch(`${h.url}/api/contacts`, { headers: auth(t) });
    assert.equal(res.status, 200);
    const { contacts } = await res.json();
    assert.ok(contacts.length > 50, "address book needs paging in the simulator");
    const exts = contacts.map((c: { ext: string }) => Number(c.ext));
    assert.deepEqual(exts, [...exts].sort((a, b) => a - b));
    assert.deepEqual(contacts[0], {
      jid: "43884852633771555",
      status: "LoggedOut",
      firstName: "SMS",
      lastName: "Gateway C73",
      ext: "3010",
    });
    const me = contacts.find((c: { ext: string }) => c.ext === "3095");
    assert.equal(me.jid, DMITRY.jid);
    assert.equal(me.status, "Available");
    const etag = res.headers.get("etag")!;
    const again = await fetch(`${h.url}/api/contacts`, {
      headers: { ...auth(t), "if-none-match": etag },
    });
    assert.equal(again.status, 304);
    // RFC 9110 §13.1.2: `*` matches any current representation, and the comparison is weak
    // (the tag without its `W/` prefix is the same tag).
    for (const inm of ["*", etag.replace(/^W\//, ""), `"other", ${etag}`]) {
      const r = await fetch(`${h.url}/api/contacts`, {
        headers: { ...auth(t), "if-none-match": inm },
      });
      assert.equal(r.status, 304, `If-None-Match: ${inm}`);
    }
    // A change on the MX is pushed to the cache and changes the ETag.
    h.sim.updateUser("43884852031096113", { firstName: "Max" });
    const mx = h.server.sessions.get("test")!;
    await waitUntil(() => mx.contact("43884852031096113")?.firstName === "Max", {
      what: "the AbUpdateUserEvent in the cache",
    });
    const changed = await fetch(`${h.url}/api/contacts`, {
      headers: { ...auth(t), "if-none-match": etag },
    });
    assert.equal(changed.status, 200);
    const max = (await changed.json()).contacts.find((c: { ext: string }) => c.ext === "3099");
    assert.equal(max.firstName, "Max");
  });
});

Deno.test("flex: outgoing call produces the seed's event sequence on SSE, hang-up clears it", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const res = await fetch(`${h.url}/api/call`, {
      method: "POST",
      headers: auth(t),
      body: new URLSearchParams({ to: "3099" }),
    });
    assert.equal(res.status, 200);
    const { call } = await res.json();
    assert.deepEqual(Object.keys(call), ["callId", "deviceId", "called"]);
    assert.equal(typeof call.callId, "number");
    assert.equal(call.deviceId, "3095");
    assert.equal(call.called, "3099");
    const evs = await sse.until("EstablishedEvent");
    assert.deepEqual(evs.map((e) => e.event), [
      "OriginatedEvent",
      "DeliveredEvent",
      "EstablishedEvent",
    ]);
    const ids = evs.map((e) => eventSeq(e.id));
    assert.ok(ids[0] < ids[1] && ids[1] < ids[2], "ids increase");
    const orig = JSON.parse(evs[0].data);
    assert.deepEqual(Object.keys(orig).slice(0, 5), [
      "callId",
      "deviceId",
      "callingDevice",
      "calledDevice",
      "cause",
    ]);
    assert.equal(orig.callId, call.callId);
    assert.equal(orig.callingDevice, "3095");
    const del = JSON.parse(evs[1].data);
    assert.equal(del.alertingDevice, "3099");
    assert.equal(typeof del.globalCallId, "string");
    const hang = await fetch(`${h.url}/api/calls/${call.callId}`, {
      method: "DELETE",
      headers: auth(t),
    });
    assert.equal(hang.status, 204);
    const cleared = await sse.until("ConnectionClearedEvent");
    assert.equal(JSON.parse(cleared.at(-1)!.data).callId, call.callId);
    await sse.cancel();
  });
});

Deno.test("flex: incoming call, answer, hold, retrieve and transfer produce events", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const callId = h.sim.incomingCall({ from: "+14155550123", to: "3095" });
    const delivered = JSON.parse((await sse.until("DeliveredEvent")).at(-1)!.data);
    assert.equal(delivered.callId, callId);
    assert.equal(delivered.alertingDevice, "3095");
    assert.equal(delivered.callingDevice, "+14155550123");
    const post = (path: string, body?: Record<string, string>) =>
      fetch(`${h.url}/api/calls/${callId}/${path}`, {
        method: "POST",
        headers: auth(t),
        body: body ? new URLSearchParams(body) : undefined,
      });
    let res = await post("answer");
    assert.equal(res.status, 204);
    await sse.until("EstablishedEvent");
    res = await post("hold");
    assert.equal(res.status, 204);
    assert.equal(JSON.parse((await sse.until("HeldEvent")).at(-1)!.data).callId, callId);
    res = await post("retrieve");
    assert.equal(res.status, 204);
    await sse.until("RetrievedEvent");
    res = await post("transfer", { to: "3099" });
    assert.equal(res.status, 200);
    assert.equal(typeof (await res.json()).call.callId, "number");
    await sse.until("TransferredEvent");
    await sse.cancel();
  }, { sim: { answerAfterMs: -1 } });
});

Deno.test("flex: call control validates input and ownership", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    let res = await fetch(`${h.url}/api/calls/abc/hold`, { method: "POST", headers: auth(t) });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "bad call id" });
    res = await fetch(`${h.url}/api/calls/12/hold`, {
      method: "POST",
      headers: auth(t),
      body: new URLSearchParams({ deviceId: "3099" }),
    });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    // Unknown call: the MX answers CSTAErrorCode, shown with its message.
    res = await fetch(`${h.url}/api/calls/99999/hold`, { method: "POST", headers: auth(t) });
    assert.equal(res.status, 422);
    assert.match((await res.json()).error, /call/);
    res = await fetch(`${h.url}/api/call`, { method: "POST", headers: auth(t) });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "to field is empty" });
    res = await fetch(`${h.url}/api/calls/1/transfer`, { method: "POST", headers: auth(t) });
    assert.equal(res.status, 400);
    await res.body?.cancel();
  });
});

Deno.test("flex: SSE needs the event-stream Accept header", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const res = await fetch(`${h.url}/api/events`, {
      headers: { ...auth(t), accept: "application/json" },
    });
    assert.equal(res.status, 406);
    assert.deepEqual(await res.json(), { error: "only sse support" });
  });
});

Deno.test("flex: Last-Event-ID replays missed events after a reconnect", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    h.sim.incomingCall({ from: "3044", to: "3095" });
    const first = await sse.next();
    await sse.cancel();
    // Events keep coming while the client is away (answered after answerAfterMs).
    const later = await openEvents(h.url, t);
    await later.until("EstablishedEvent");
    await later.cancel();
    const replay = await openEvents(h.url, t, { lastEventId: first.id });
    const again = await replay.until("EstablishedEvent");
    assert.ok(again.length >= 1);
    assert.ok(eventSeq(again[0].id) > eventSeq(first.id), "only events after Last-Event-ID");
    await replay.cancel();
  });
});

Deno.test("flex: only the user's own calls reach the stream", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const other = await flexLogin(h.url, "maxim", "secret").catch(() => undefined);
    const sse = await openEvents(h.url, t);
    // A call between two other extensions must not show up for 3095.
    h.sim.incomingCall({ from: "+15550001", to: "3044" });
    const mine = h.sim.incomingCall({ from: "+15550002", to: "3095" });
    const ev = await sse.next();
    assert.equal(JSON.parse(ev.data).callId, mine);
    await sse.cancel();
    void other;
  });
});

Deno.test("flex: logout stops that token only; monitors are reference-counted", async () => {
  await withHarness(async (h) => {
    const mx = h.server.sessions.get("test")!;
    const t1 = await flexLogin(h.url);
    const t2 = await flexLogin(h.url);
    assert.equal(mx.holders("3095"), 2);
    const s1 = await openEvents(h.url, t1);
    const res = await fetch(`${h.url}/api/logout`, { headers: auth(t1) });
    assert.equal(res.status, 204);
    assert.ok(await s1.ended(), "the logged-out token's stream ends");
    assert.equal(mx.holders("3095"), 1);
    const after = await fetch(`${h.url}/api/contacts`, { headers: auth(t1) });
    assert.equal(after.status, 401);
    await after.body?.cancel();
    // The other token still streams events.
    const s2 = await openEvents(h.url, t2);
    h.sim.incomingCall({ from: "3044", to: "3095" });
    assert.equal((await s2.next()).event, "DeliveredEvent");
    await s2.cancel();
    const mark = h.sim.mark();
    await (await fetch(`${h.url}/api/logout`, { headers: auth(t2) })).body?.cancel();
    assert.equal(mx.holders("3095"), 0);
    await h.sim.waitFor("MonitorStop", undefined, 5000, mark);
  });
});

Deno.test("flex: a real EventSource client receives events", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const es = new EventSource(`${h.url}/api/events?access_token=${t}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const got = new Promise<MessageEvent>((resolve, reject) => {
        es.addEventListener("DeliveredEvent", (e) => resolve(e as MessageEvent));
        timer = setTimeout(() => reject(new Error("no event")), 5000);
      });
      await new Promise<void>((r) => es.addEventListener("open", () => r()));
      const callId = h.sim.incomingCall({ from: "3044", to: "3095" });
      const ev = await got;
      assert.equal(JSON.parse(ev.data).callId, callId);
      assert.ok(ev.lastEventId);
    } finally {
      clearTimeout(timer);
      es.close();
    }
  });
});

Deno.test("flex: 503 while the MX is down, recovery when it returns (monitors restored)", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const mx = h.server.sessions.get("test")!;
    await h.sim.pause();
    await waitUntil(() => mx.state !== "connected", {
      what: "MXFlex to notice the dropped session",
    });
    let res = await fetch(`${h.url}/api/call`, {
      method: "POST",
      headers: auth(t),
      body: new URLSearchParams({ to: "3099" }),
    });
    assert.equal(res.status, 503);
    assert.match((await res.json()).error, /MX unavailable/);
    res = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
    });
    assert.ok(res.status === 503 || res.status === 504, `login while down: ${res.status}`);
    await res.body?.cancel();
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 503);
    await ready.body?.cancel();
    await h.sim.resume();
    await mx.ready(10_000);
    // The monitor came back on its own: events flow without a new login.
    const sse = await openEvents(h.url, t);
    const callId = h.sim.incomingCall({ from: "3044", to: "3095" });
    assert.equal(JSON.parse((await sse.next()).data).callId, callId);
    await sse.cancel();
    assert.ok(mx.client.reconnects >= 1);
  });
});

Deno.test("flex: the HTTP server answers 503 when started while the MX is unreachable", async () => {
  const h = await startHarness({ waitReady: false, config: {} });
  try {
    await h.sim.pause();
    h.server.sessions.get("test")!.client.dropSession();
    const res = await fetch(`${h.url}/healthz`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("flex: an over-long password is 400, never an MX frame overflow", async () => {
  await withHarness(async (h) => {
    const res = await fetch(`${h.url}/api/login`, {
      method: "POST",
      body: new URLSearchParams({ login: DMITRY.login, password: "&".repeat(14_000) }),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "password too long" });
  });
});

Deno.test("flex: calls may start from the user's own phones, not a colleague's extension", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    let res = await fetch(`${h.url}/api/call`, {
      method: "POST",
      headers: auth(t),
      body: new URLSearchParams({ from: "3099", to: "3044" }),
    });
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), { error: "from is another user's extension" });
    res = await fetch(`${h.url}/api/call`, {
      method: "POST",
      headers: auth(t),
      body: new URLSearchParams({ from: "3095", to: "3044" }),
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

Deno.test("flex: contacts ETags differ between server instances", async () => {
  const a = await startHarness();
  const b = await startHarness({ simulator: a.sim });
  try {
    const ta = await flexLogin(a.url), tb = await flexLogin(b.url);
    const ra = await fetch(`${a.url}/api/contacts`, { headers: auth(ta) });
    const rb = await fetch(`${b.url}/api/contacts`, {
      headers: { ...auth(tb), "if-none-match": ra.headers.get("etag")! },
    });
    await ra.body?.cancel();
    assert.equal(rb.status, 200, "a restarted server must not honour an old ETag");
    await rb.body?.cancel();
  } finally {
    await b.close({ keepSim: true });
    await a.close();
  }
});

Deno.test("flex: login and live events over HTTPS with HTTP/2 (ALPN h2, no HTTP/1.1 fallback)", async () => {
  // http1: false makes any non-h2 negotiation a request failure.
  const client = Deno.createHttpClient({ caCerts: [CERT], http1: false, http2: true });
  try {
    await withHarness(async (h) => {
      assert.match(h.url, /^https:/);
      const login = await fetch(`${h.url}/api/login`, {
        method: "POST",
        body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
        client,
      });
      assert.equal(login.status, 200);
      const t = (await login.json()).access_token;
      const res = await fetch(`${h.url}/api/events?access_token=${t}`, {
        headers: { accept: "text/event-stream" },
        client,
      });
      assert.equal(res.status, 200);
      const sse = new SseReader(res);
      const callId = h.sim.incomingCall({ from: "3044", to: "3095" });
      assert.equal(JSON.parse((await sse.next()).data).callId, callId);
      await sse.cancel();
    }, { tls: true });
  } finally {
    client.close();
  }
});
