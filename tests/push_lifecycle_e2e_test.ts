/**
 * Pushes that follow the whole call (issue 14), end to end: devices registered over the
 * Proxy API, calls driven on the MX simulator (and answered through the Flex API for "this
 * device"), pushes received by the mock APNs (HTTP/2, token and certificate auth) and FCM.
 * For each scenario the exact sequence of pushes per device with push type, topic,
 * priority, expiration and collapse id; then two MXFlex processes on one KV sending each
 * push once with one shared APNs provider token.
 *
 * Devices of Dmitry (3095): an iPhone with the VoIP app (PushKit token + alert token, .p8
 * token auth), an iPad with the plain alert app (.p12 certificate), an Android phone (FCM).
 * Maxim (3099), the colleague, has an Android phone.
 */
import assert from "node:assert/strict";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import {
  basic,
  CERT,
  DMITRY,
  flexLogin,
  type Harness,
  KEY,
  startHarness,
} from "./helpers/harness.ts";
import { MockApns, mockEndpoints, MockFcm, type RecordedRequest } from "./helpers/mock_push.ts";
import { waitUntil } from "./helpers/wait.ts";

const FIXTURES = new URL("./fixtures/push/", import.meta.url).pathname;
const VOIP_APP = "com.example.voipapp";
const ALERT_APP = "com.example.mxflex";
const CALLER = "+15550100";
const MAXIM = { login: "maxim", password: "secret", ext: "3099" };

const IPHONE_VOIP = "a1".repeat(32);
const IPHONE_ALERT = "b2".repeat(32);
const IPAD = "c3".repeat(32);
const ANDROID = "fcm-dmitry:" + "d".repeat(60);
const MAXIM_ANDROID = "fcm-maxim:" + "m".repeat(60);

/** Config with both APNs credential kinds and FCM, all pointed at the mocks. */
function pushConfig(apns: MockApns, fcm: MockFcm): Record<string, unknown> {
  return {
    apns: { [`${FIXTURES}apns-both.p12`]: "mxflex-test" },
    apnsKeys: [{
      key: `${FIXTURES}AuthKey_TESTKEY123.p8`,
      keyId: "TESTKEY123",
      teamId: "TEAM123456",
      topic: VOIP_APP,
      voip: true,
    }],
    fcm: { "app-name": `${FIXTURES}service-account.json` },
    pushEndpoints: mockEndpoints(apns, fcm),
  };
}

async function register(
  h: Harness,
  path: string,
  body: Record<string, string>,
  auth = basic(),
): Promise<void> {
  const res = await fetch(`${h.url}/mx/test/token/${path}`, {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  assert.equal(res.status, 204, path);
}

/** Registers Dmitry's three devices and Maxim's phone; waits for both monitors. */
async function registerDevices(h: Harness): Promise<void> {
  await register(h, `apns/${VOIP_APP}`, { token: IPHONE_VOIP, alertToken: IPHONE_ALERT });
  await register(h, `apns/${ALERT_APP}`, { token: IPAD });
  await register(h, "gfcm/app-name", { token: ANDROID });
  await register(h, "fcm/app-name", { token: MAXIM_ANDROID }, basic(MAXIM.login, MAXIM.password));
  const mx = h.server.sessions.get("test")!;
  await waitUntil(
    () => mx.client.isMonitoring(DMITRY.ext) && mx.client.isMonitoring(MAXIM.ext),
    { what: "push monitors on 3095 and 3099" },
  );
}

/** One push as the device sees it, in a form that compares exactly. */
interface Seen {
  event: string;
  reason?: string;
  callId: number;
  /** APNs: `<topic> <push type> <priority>`; FCM: `<priority>` plus `+notification`. */
  transport: string;
  /** APNs `apns-collapse-id` / FCM `collapse_key`. */
  collapse: string;
  /** Seconds from the push's `time` to its expiry (APNs expiration, FCM ttl). */
  lifetime: number;
}

function apnsSeen(r: RecordedRequest): Seen {
  const p = JSON.parse(r.body);
  return {
    event: p.event,
    ...(p.reason ? { reason: p.reason } : {}),
    callId: p.callId,
    transport: `${r.headers["apns-topic"]} ${r.headers["apns-push-type"]} ${
      r.headers["apns-priority"]
    }`,
    collapse: r.headers["apns-collapse-id"],
    lifetime: Number(r.headers["apns-expiration"]) - p.time,
  };
}

function fcmSeen(r: RecordedRequest): Seen {
  const m = JSON.parse(r.body).message;
  return {
    event: m.data.event,
    ...(m.data.reason ? { reason: m.data.reason } : {}),
    callId: Number(m.data.callId),
    transport: m.android.priority + (m.notification ? " +notification" : ""),
    collapse: m.android.collapse_key,
    // ttl counts from the send; `time` is the MX event, at most a second before.
    lifetime: Number(m.android.ttl.replace(/s$/, "")),
  };
}

/** What each device has received so far. */
function devices(apns: MockApns, fcm: MockFcm): Record<string, Seen[]> {
  const fcmFor = (t: string) =>
    fcm.requests.filter((r) => JSON.parse(r.body).message.token === t).map(fcmSeen);
  return {
    iphoneVoip: apns.requestsFor(IPHONE_VOIP).map(apnsSeen),
    iphoneAlert: apns.requestsFor(IPHONE_ALERT).map(apnsSeen),
    ipad: apns.requestsFor(IPAD).map(apnsSeen),
    android: fcmFor(ANDROID),
    maximAndroid: fcmFor(MAXIM_ANDROID),
  };
}

/** FCM ttl is whole seconds left at send time: within a second of the nominal lifetime. */
function normalise(d: Record<string, Seen[]>): Record<string, Seen[]> {
  const out: Record<string, Seen[]> = {};
  for (const [k, list] of Object.entries(d)) {
    out[k] = list.map((s) => ({ ...s, lifetime: roundLifetime(s.lifetime) }));
  }
  return out;
}

function roundLifetime(v: number): number {
  for (const nominal of [30, 86_400]) if (Math.abs(v - nominal) <= 1) return nominal;
  return v;
}

const total = (d: Record<string, Seen[]>) => Object.values(d).reduce((n, l) => n + l.length, 0);

/** The pushes every one of Dmitry's devices gets for `incoming` of call `id`. */
function incomingFor(id: number, gcid: string): Record<string, Seen[]> {
  const seen = (transport: string, lifetime = 30): Seen => ({
    event: "incoming",
    callId: id,
    transport,
    collapse: gcid,
    lifetime,
  });
  return {
    iphoneVoip: [seen(`${VOIP_APP}.voip voip 10`)],
    iphoneAlert: [],
    ipad: [seen(`${ALERT_APP} alert 10`)],
    android: [seen("high")],
    maximAndroid: [],
  };
}

/** Dmitry's devices after `incoming` and then `event` (with `reason`) for call `id`. */
function lifecycleFor(
  id: number,
  gcid: string,
  event: string,
  reason?: string,
): Record<string, Seen[]> {
  const d = incomingFor(id, gcid);
  const r = reason ? { reason } : {};
  const missed = event === "missed";
  const apns = (app: string): Seen => ({
    event,
    ...r,
    callId: id,
    transport: missed ? `${app} alert 10` : `${app} background 5`,
    collapse: gcid,
    lifetime: missed ? 86_400 : 30,
  });
  d.iphoneAlert.push(apns(VOIP_APP));
  d.ipad.push(apns(ALERT_APP));
  d.android.push({
    event,
    ...r,
    callId: id,
    transport: missed ? "normal +notification" : "high",
    collapse: gcid,
    lifetime: missed ? 86_400 : 30,
  });
  return d;
}

/** Starts the mocks and a harness whose calls ring until the test acts. */
async function world() {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const h = await startHarness({ config: pushConfig(apns, fcm), sim: { answerAfterMs: -1 } });
  await registerDevices(h);
  return {
    h,
    apns,
    fcm,
    seen: () => normalise(devices(apns, fcm)),
    /** Rings Dmitry and waits until his three devices were told. */
    async ring(): Promise<{ id: number; gcid: string }> {
      const id = h.sim.incomingCall({ from: CALLER, to: DMITRY.ext });
      const gcid = h.sim.calls().find((c) => c.id === id)!.globalCallId;
      await waitUntil(() => total(devices(apns, fcm)) === 3, { what: "incoming on 3 devices" });
      assert.deepEqual(normalise(devices(apns, fcm)), incomingFor(id, gcid));
      return { id, gcid };
    },
    /** Waits for `n` pushes in all, then for the dispatcher to settle. */
    async settle(n: number): Promise<void> {
      await waitUntil(() => total(devices(apns, fcm)) >= n, { what: `${n} pushes` });
      await h.server.dispatcher!.close();
    },
    async close() {
      await h.close();
      await apns.close();
      await fcm.close();
    },
  };
}

type World = Awaited<ReturnType<typeof world>>;

/** Runs `fn` in a fresh world and always closes it. */
async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const w = await world();
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

/**
 * One scenario on Dmitry's devices: the call rings, `act` does what a phone or a person does,
 * and every device must have received exactly `incoming`, then `event` (with `reason`).
 */
function scenario(
  name: string,
  act: (w: World, callId: number) => Promise<unknown> | unknown,
  event: string,
  reason?: string,
): void {
  Deno.test(`push lifecycle: ${name}`, () =>
    withWorld(async (w) => {
      const { id, gcid } = await w.ring();
      await act(w, id);
      await w.settle(6);
      assert.deepEqual(w.seen(), lifecycleFor(id, gcid, event, reason));
    }));
}

// The MX does not say which of the user's devices answered: every device gets `answered`.
scenario("answered on this device (Flex API answer)", async (w, id) => {
  const token = await flexLogin(w.h.url);
  const res = await fetch(`${w.h.url}/api/calls/${id}/answer`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 204);
}, "answered");

scenario("answered on the desk phone", (w, id) => assert.ok(w.h.sim.answer(id)), "answered");

// Maxim took a call that never rang for him: nothing for his phone.
scenario(
  "picked up by a colleague",
  (w, id) => assert.ok(w.h.sim.pickup(id, MAXIM.ext)),
  "answered_elsewhere",
  "picked_up",
);

scenario(
  "the caller hangs up while it rings",
  (w, id) => assert.ok(w.h.sim.hangup(id, CALLER)),
  "cancelled",
  "caller_hung_up",
);

// The MX's ring timeout fires: the call goes to voicemail.
scenario(
  "no answer, diverted to voicemail",
  (w, id) => assert.ok(w.h.sim.sendToVoicemail(id)),
  "missed",
  "no_answer",
);

Deno.test("push lifecycle: transferred to a colleague who answers", () =>
  withWorld(async (w) => {
    const { id, gcid } = await w.ring();
    // Dmitry's desk phone hands the ringing call to Maxim, who answers it.
    const next = w.h.sim.transfer(id, DMITRY.ext, MAXIM.ext);
    assert.ok(next !== undefined);
    await waitUntil(() => devices(w.apns, w.fcm).maximAndroid.length === 1, {
      what: "Maxim's incoming",
    });
    assert.ok(w.h.sim.answer(next));
    await w.settle(8);
    const nextGcid = w.seen().maximAndroid[0].collapse;
    assert.notEqual(nextGcid, gcid, "the transferred call is a new call");
    assert.deepEqual(w.seen(), {
      ...lifecycleFor(id, gcid, "answered_elsewhere", "transferred"),
      maximAndroid: [
        { event: "incoming", callId: next, transport: "high", collapse: nextGcid, lifetime: 30 },
        { event: "answered", callId: next, transport: "high", collapse: nextGcid, lifetime: 30 },
      ],
    });
  }));

Deno.test("push lifecycle: the missed-call alert is localisable and reads in English", () =>
  withWorld(async (w) => {
    const { id } = await w.ring();
    assert.ok(w.h.sim.sendToVoicemail(id));
    await w.settle(6);
    const alert = JSON.parse(w.apns.requestsFor(IPHONE_ALERT)[0].body).aps.alert;
    assert.deepEqual(alert, {
      title: "Missed call",
      body: `Missed call from ${CALLER}`,
      "title-loc-key": "Missed call",
      "loc-key": "Missed call from %@",
      "loc-args": [CALLER],
    });
    const missed = JSON.parse(w.fcm.requests.at(-1)!.body).message;
    assert.deepEqual(missed.notification, {
      title: "Missed call",
      body: `Missed call from ${CALLER}`,
    });
    assert.deepEqual(missed.android.notification.body_loc_args, [CALLER]);
  }));

Deno.test("push lifecycle: two processes on one KV send each push once with one provider token", async () => {
  const apns = MockApns.start();
  const fcm = MockFcm.start();
  const dir = await Deno.makeTempDir();
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY }, answerAfterMs: -1 });
  const opts = { simulator: sim, config: pushConfig(apns, fcm), kvPath: `${dir}/kv` };
  const a = await startHarness(opts);
  const b = await startHarness(opts);
  try {
    await registerDevices(a);
    // Registrations reach one process; the other learns of them from the shared store when
    // it (re)connects. Here the VoIP and Maxim's devices register through b as well, so both
    // processes monitor both users.
    await register(b, `apns/${VOIP_APP}`, { token: IPHONE_VOIP, alertToken: IPHONE_ALERT });
    await register(b, "fcm/app-name", { token: MAXIM_ANDROID }, basic(MAXIM.login, MAXIM.password));
    const mxB = b.server.sessions.get("test")!;
    await waitUntil(
      () => mxB.client.isMonitoring(DMITRY.ext) && mxB.client.isMonitoring(MAXIM.ext),
      { what: "both monitors on the second process" },
    );
    // Events each process has routed to its push monitors (listeners run in order, so a
    // counted event's pushes are already with that process's dispatcher).
    const routed = [a, b].map((h) => {
      const n = { DeliveredEvent: 0, ConnectionClearedEvent: 0, EstablishedEvent: 0 };
      h.server.sessions.get("test")!.onCallEvent((ext, ev) => {
        if (ext === DMITRY.ext && ev.name in n) n[ev.name as keyof typeof n]++;
      });
      return n;
    });
    const first = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
    await waitUntil(() => total(devices(apns, fcm)) === 3, { what: "incoming" });
    sim.hangup(first, CALLER);
    await waitUntil(() => total(devices(apns, fcm)) === 6, { what: "cancelled" });
    const second = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
    await waitUntil(() => total(devices(apns, fcm)) === 9, { what: "second incoming" });
    assert.ok(sim.answer(second));
    await waitUntil(() => total(devices(apns, fcm)) === 12, { what: "answered" });
    await waitUntil(
      () =>
        routed.every((n) =>
          n.DeliveredEvent === 2 && n.ConnectionClearedEvent === 1 && n.EstablishedEvent === 1
        ),
      { what: "both processes saw every event" },
    );
    // Each process pushes one probe of its own, so both have used their provider token.
    const probe = { mx: "test", jid: DMITRY.jid, payload: { probe: true } };
    await a.server.dispatcher!.push({ ...probe, callKey: "probe-a" });
    await b.server.dispatcher!.push({ ...probe, callKey: "probe-b" });
    await Promise.all([a.server.dispatcher!.close(), b.server.dispatcher!.close()]);
    const probes = apns.requestsFor(IPHONE_VOIP).filter((r) => JSON.parse(r.body).probe);
    assert.deepEqual(probes.map((r) => r.headers["apns-collapse-id"]), ["probe-a", "probe-b"]);
    const gcid = (c: number) => devices(apns, fcm).android.find((s) => s.callId === c)!.collapse;
    const expected = lifecycleFor(first, gcid(first), "cancelled", "caller_hung_up");
    const then = lifecycleFor(second, gcid(second), "answered");
    for (const k of Object.keys(expected)) expected[k].push(...then[k]);
    const seen = devices(apns, fcm);
    seen.iphoneVoip = seen.iphoneVoip.filter((s) => s.event);
    seen.ipad = seen.ipad.filter((s) => s.event);
    seen.android = seen.android.filter((s) => s.event);
    assert.deepEqual(normalise(seen), expected);
    // Every token-auth push of both processes carried one provider token (one KV entry).
    const jwts = new Set(
      apns.requests.filter((r) => r.headers["authorization"]).map((r) =>
        r.headers["authorization"]
      ),
    );
    assert.equal(jwts.size, 1, [...jwts].join("\n"));
    const stored = [];
    for await (const e of a.kv.list({ prefix: ["push", "apns-provider-token"] })) stored.push(e);
    assert.equal(stored.length, 1);
    const sentBy = [a, b].map((h) => {
      const s = h.server.dispatcher!.stats();
      return Object.values(s).reduce((n, v) => n + v.sent, 0);
    });
    // 12 lifecycle pushes, 3 probes each (iPhone VoIP, iPad, Android).
    assert.equal(sentBy[0] + sentBy[1], 18, `sent by each: ${sentBy}`);
  } finally {
    await a.close({ keepSim: true });
    await b.close({ keepSim: true });
    await sim.close();
    await apns.close();
    await fcm.close();
    await Deno.remove(dir, { recursive: true });
  }
});
