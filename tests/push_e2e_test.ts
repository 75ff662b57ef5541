/**
 * Incoming-call pushes end to end: device tokens registered over the Proxy API, a call
 * placed on the MX simulator, pushes received by local mock APNs (HTTP/2 over TLS) and FCM
 * servers. Also: exactly one push per device with two MXFlex instances sharing one KV, and
 * monitors restored from the token store after a restart.
 */
import assert from "node:assert/strict";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import { basic, CERT, DMITRY, type Harness, KEY, startHarness } from "./helpers/harness.ts";
import { MockApns, mockEndpoints, MockFcm } from "./helpers/mock_push.ts";
import { waitUntil } from "./helpers/wait.ts";

const FIXTURES = new URL("./fixtures/push/", import.meta.url).pathname;
const APNS_TOKEN = "a1b2c3d4".repeat(8);
const APNS_SANDBOX_TOKEN = "feedbeef".repeat(8);
const FCM_TOKEN = "fcm-device-token:" + "z".repeat(60);

function pushConfig(apns: MockApns, fcm: MockFcm): Record<string, unknown> {
  return {
    apns: { [`${FIXTURES}apns-both.p12`]: "mxflex-test" },
    fcm: { "app-name": `${FIXTURES}service-account.json` },
    pushEndpoints: mockEndpoints(apns, fcm),
  };
}

async function register(h: Harness, path: string, token: string): Promise<Response> {
  return await fetch(`${h.url}/mx/test/token/${path}`, {
    method: "POST",
    headers: { authorization: basic(), "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
}

/** Waits until the instance's server session has its monitor on `ext` confirmed. */
async function waitMonitoring(h: Harness, ext: string): Promise<void> {
  const mx = h.server.sessions.get("test")!;
  await waitUntil(() => mx.client.isMonitoring(ext), { what: `monitor on ${ext}` });
}

/** Counts the `name` events of `ext` an instance has routed (to its push monitors too). */
function countDelivered(h: Harness, ext: string, name = "DeliveredEvent"): () => number {
  let n = 0;
  h.server.sessions.get("test")!.onCallEvent((e, ev) => {
    if (e === ext && ev.name === name) n++;
  });
  return () => n;
}

Deno.test("push: an incoming call reaches every registered device once", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const h = await startHarness({ config: pushConfig(apns, fcm) });
  try {
    for (
      const [path, token] of [
        ["apns/com.example.mxflex", APNS_TOKEN],
        ["apns/com.example.mxflex?sandbox", APNS_SANDBOX_TOKEN],
        ["gfcm/app-name", FCM_TOKEN],
      ]
    ) {
      const res = await register(h, path, token);
      assert.equal(res.status, 204, path);
    }
    const res = await register(h, "apns/com.example.mxflex", "short");
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "bad push token" });
    const badAlert = await fetch(`${h.url}/mx/test/token/apns/com.example.mxflex`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ token: APNS_TOKEN, alertToken: "has white space in it, too short" }),
    });
    assert.equal(badAlert.status, 400);
    assert.deepEqual(await badAlert.json(), { error: "bad alert token" });
    // The user's extension is now monitored on the server session (the monitor confirmed, so
    // the call's events are routed to it).
    await waitMonitoring(h, DMITRY.ext);

    const callId = h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
    await waitUntil(
      () =>
        apns.requestsFor(APNS_TOKEN).length === 1 &&
        apns.requestsFor(APNS_SANDBOX_TOKEN).length === 1 &&
        fcm.requests.length === 1,
      { what: "three pushes" },
    );
    const req = apns.requestsFor(APNS_TOKEN)[0];
    assert.equal(req.headers["apns-topic"], "com.example.mxflex");
    assert.ok(req.headers["apns-push-type"]);
    assert.equal(req.headers["apns-priority"], "10");
    const body = JSON.parse(req.body);
    assert.equal(body.callId, callId);
    assert.equal(body.deviceId, DMITRY.ext);
    assert.equal(body.alertingDevice, DMITRY.ext);
    assert.equal(body.callingDevice, "3044");
    assert.equal(body.localConnectionInfo, "alerting");
    assert.equal(typeof body.globalCallId, "string");
    assert.equal(typeof body.time, "number");
    assert.ok("lastRedirectionDevice" in body);
    const fcmMsg = JSON.parse(fcm.requests[0].body).message;
    assert.equal(fcmMsg.token, FCM_TOKEN);
    assert.equal(fcmMsg.data.callId, String(callId));

    // The simulator answers after 50 ms: every device gets `answered` for the same call.
    await waitUntil(
      () =>
        apns.requestsFor(APNS_TOKEN).length === 2 &&
        apns.requestsFor(APNS_SANDBOX_TOKEN).length === 2 &&
        fcm.requests.length === 2,
      { what: "three answered pushes" },
    );
    const answered = JSON.parse(apns.requestsFor(APNS_TOKEN)[1].body);
    assert.equal(answered.event, "answered");
    assert.equal(answered.callId, callId);
    assert.equal(JSON.parse(fcm.requests[1].body).message.data.event, "answered");

    // An outgoing call pushes nothing.
    const out = await fetch(`${h.url}/mx/test/call`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ from: "1", to: "3099" }),
    });
    assert.equal(out.status, 200);
    const outCall = (await out.json()).callId;

    // Unregister: no push for the next call to that device.
    const del = await fetch(`${h.url}/mx/test/token/gfcm/app-name`, {
      method: "DELETE",
      headers: { authorization: basic(), "content-type": "application/json" },
      body: JSON.stringify({ token: FCM_TOKEN }),
    });
    assert.equal(del.status, 204);
    const next = h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
    // The later positive marker: the next call's two pushes follow the first call's two, so
    // the outgoing call pushed nothing in between.
    await waitUntil(() => apns.requestsFor(APNS_TOKEN).length >= 4, { what: "next call's pushes" });
    const ids = apns.requestsFor(APNS_TOKEN).map((r) => JSON.parse(r.body).callId);
    assert.deepEqual(ids, [callId, callId, next, next]);
    assert.ok(!ids.includes(outCall));
    assert.equal(fcm.requests.length, 2, "the unregistered FCM device got nothing more");
  } finally {
    await h.close();
    await apns.close();
    await fcm.close();
  }
});

Deno.test("push: a token APNs reports as unregistered (410) is pruned", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const h = await startHarness({ config: pushConfig(apns, fcm) });
  try {
    assert.equal((await register(h, "apns/com.example.mxflex", APNS_TOKEN)).status, 204);
    apns.script(APNS_TOKEN, { status: 410, body: { reason: "Unregistered" } });
    h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
    await waitUntil(() => apns.requestsFor(APNS_TOKEN).length === 1, { what: "push" });
    await waitUntil(
      () => (h.server.dispatcher?.stats()["apns:com.example.mxflex"]?.pruned ?? 0) === 1,
      { what: "prune" },
    );
    // The dispatcher counts the invalid token before its removal from KV has finished.
    const left = async () => {
      const keys = [];
      for (const prefix of [["push", "token"], ["push", "user"]]) {
        for await (const e of h.kv.list({ prefix })) keys.push(e.key);
      }
      return keys;
    };
    await waitUntil(async () => (await left()).length === 0, {
      what: "token removed from the store",
    });
  } finally {
    await h.close();
    await apns.close();
    await fcm.close();
  }
});

Deno.test("push: two MXFlex instances sharing one KV send one push per device", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const dir = await Deno.makeTempDir();
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  const a = await startHarness({
    simulator: sim,
    config: pushConfig(apns, fcm),
    kvPath: `${dir}/kv`,
  });
  const b = await startHarness({
    simulator: sim,
    config: pushConfig(apns, fcm),
    kvPath: `${dir}/kv`,
  });
  try {
    assert.equal((await register(a, "apns/com.example.mxflex", APNS_TOKEN)).status, 204);
    // Instance b learns about the token from the shared store when it restores monitors;
    // registering through b as well is the realistic path for a load-balanced pair.
    assert.equal((await register(b, "apns/com.example.mxflex", APNS_TOKEN)).status, 204);
    await waitMonitoring(a, DMITRY.ext);
    await waitMonitoring(b, DMITRY.ext);
    const seenA = countDelivered(a, DMITRY.ext), seenB = countDelivered(b, DMITRY.ext);
    const answeredA = countDelivered(a, DMITRY.ext, "EstablishedEvent");
    const answeredB = countDelivered(b, DMITRY.ext, "EstablishedEvent");
    for (let i = 0; i < 3; i++) sim.incomingCall({ from: "3044", to: DMITRY.ext });
    // Each call rings and is answered: incoming + answered, from whichever process claimed.
    await waitUntil(() => apns.requestsFor(APNS_TOKEN).length >= 6, { what: "six pushes" });
    // Both instances have handed all three calls to their dispatchers; closing a dispatcher
    // waits for its deliveries in flight, so every push either instance sends has arrived.
    await waitUntil(
      () => seenA() === 3 && seenB() === 3 && answeredA() === 3 && answeredB() === 3,
      { what: "both instances saw 3 calls ring and be answered" },
    );
    await Promise.all([a.server.dispatcher!.close(), b.server.dispatcher!.close()]);
    const seen = apns.requestsFor(APNS_TOKEN).map((r) => {
      const p = JSON.parse(r.body);
      return `${p.callId} ${p.event}`;
    });
    assert.equal(seen.length, 6, "one push per call and event, not two");
    assert.equal(new Set(seen).size, 6, seen.join(", "));
  } finally {
    await a.close({ keepSim: true });
    await b.close({ keepSim: true });
    await sim.close();
    await apns.close();
    await fcm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("push: after a restart, monitors are restored from the stored tokens", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const dir = await Deno.makeTempDir();
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  try {
    const first = await startHarness({
      simulator: sim,
      config: pushConfig(apns, fcm),
      kvPath: `${dir}/kv`,
    });
    assert.equal((await register(first, "apns/com.example.mxflex", APNS_TOKEN)).status, 204);
    await first.close({ keepSim: true });
    const mark = sim.mark();
    const second = await startHarness({
      simulator: sim,
      config: pushConfig(apns, fcm),
      kvPath: `${dir}/kv`,
    });
    try {
      await sim.waitFor("MonitorStart", (m) => m.xml.includes(">3095<"), 5000, mark);
      const mx = second.server.sessions.get("test")!;
      await waitUntil(() => mx.client.isMonitoring(DMITRY.ext), { what: "monitor confirmed" });
      sim.incomingCall({ from: "3044", to: DMITRY.ext });
      await waitUntil(() => apns.requestsFor(APNS_TOKEN).length === 1, {
        what: "push after restart",
      });
    } finally {
      await second.close({ keepSim: true });
    }
  } finally {
    await sim.close();
    await apns.close();
    await fcm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function unregister(h: Harness, path: string, token: string, auth = basic()) {
  const res = await fetch(`${h.url}/mx/test/token/${path}`, {
    method: "DELETE",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("push: a token re-registered by another user moves; DELETE answers 204 either way", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const h = await startHarness({ config: pushConfig(apns, fcm), sim: { answerAfterMs: -1 } });
  const maxim = basic("maxim", "secret");
  try {
    assert.equal((await register(h, "apns/com.example.mxflex", APNS_TOKEN)).status, 204);
    await waitMonitoring(h, DMITRY.ext);
    const mark = h.sim.mark();
    // The same device now logs in as Maxim (3099) and registers the token again.
    const res = await fetch(`${h.url}/mx/test/token/apns/com.example.mxflex`, {
      method: "POST",
      headers: { authorization: maxim, "content-type": "application/json" },
      body: JSON.stringify({ token: APNS_TOKEN }),
    });
    assert.equal(res.status, 204);
    // Dmitry had no other token: his monitor is released.
    await h.sim.waitFor("MonitorStop", undefined, 5000, mark);
    const mx = h.server.sessions.get("test")!;
    assert.equal(mx.holders(DMITRY.ext), 0);
    assert.equal(mx.holders("3099"), 1);
    // A call to Dmitry no longer reaches the device; one to Maxim does (the marker).
    h.sim.incomingCall({ from: "3044", to: DMITRY.ext });
    const toMaxim = h.sim.incomingCall({ from: "3044", to: "3099" });
    await waitUntil(() => apns.requestsFor(APNS_TOKEN).length >= 1, {
      what: "push to Maxim's device",
    });
    assert.deepEqual(apns.requestsFor(APNS_TOKEN).map((r) => JSON.parse(r.body).callId), [toMaxim]);

    // DELETE: 204 for a token that is not the caller's (and it stays Maxim's) ...
    assert.equal(await unregister(h, "apns/com.example.mxflex", APNS_TOKEN), 204);
    const users = await (async () => {
      const out = [];
      for await (const e of h.kv.list({ prefix: ["push", "user"] })) out.push(e.key[3]);
      return out;
    })();
    assert.deepEqual(users, ["43884852031096113"]);
    // ... for one never registered, and twice for one that was.
    assert.equal(await unregister(h, "apns/com.example.mxflex", "f".repeat(64)), 204);
    assert.equal(await unregister(h, "apns/com.example.mxflex", APNS_TOKEN, maxim), 204);
    assert.equal(await unregister(h, "apns/com.example.mxflex", APNS_TOKEN, maxim), 204);
    for (const part of ["token", "user", "seen"]) {
      for await (const e of h.kv.list({ prefix: ["push", part] })) assert.fail(`left: ${e.key}`);
    }
    // Malformed requests are still refused.
    assert.equal(await unregister(h, "apns/com.example.mxflex", "short"), 400);
  } finally {
    await h.close();
    await apns.close();
    await fcm.close();
  }
});
