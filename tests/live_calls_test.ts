/**
 * Current calls end to end (HTTP -> server -> CSTA over TLS -> simulator and back):
 * `GET /api/calls` follows ringing, answer, hold, retrieve, hang-up, decline, outgoing calls,
 * a call answered on another phone, picked up by a colleague or sent to voicemail, a reload,
 * an MX outage and a logout.
 */
import assert from "node:assert/strict";
import { flexLogin, type Harness, openEvents, withHarness } from "./helpers/harness.ts";
import { waitUntil } from "./helpers/wait.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function currentCalls(h: Harness, token: string): Promise<Json[]> {
  const res = await fetch(`${h.url}/api/calls`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return (await res.json()).calls;
}

async function post(h: Harness, token: string, path: string, method = "POST"): Promise<number> {
  const res = await fetch(`${h.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}` },
  });
  await res.body?.cancel();
  return res.status;
}

/** Calls stay where they are unless the test moves them. */
const STILL = { sim: { answerAfterMs: -1 } };

Deno.test("calls: an incoming call through ringing, answer, hold, retrieve and hang-up", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    assert.deepEqual(await currentCalls(h, t), []);
    const before = Math.floor(Date.now() / 1000);
    const id = h.sim.incomingCall({ from: "3044", to: "3095" });
    await sse.until("DeliveredEvent");
    const [ringing] = await currentCalls(h, t);
    assert.deepEqual(ringing, {
      callId: id,
      deviceId: "3095",
      state: "alerting",
      direction: "incoming",
      peer: "3044",
      peerName: "Peter Hyde", // from the address book: the DeliveredEvent names nobody
      since: ringing.since,
    });
    assert.ok(ringing.since >= before && ringing.since <= Math.floor(Date.now() / 1000) + 1);

    assert.equal(await post(h, t, `/api/calls/${id}/answer`), 204);
    await sse.until("EstablishedEvent");
    assert.deepEqual((await currentCalls(h, t)).map((c) => [c.callId, c.state, c.since]), [
      [id, "connected", ringing.since],
    ]);
    assert.equal(await post(h, t, `/api/calls/${id}/hold`), 204);
    await sse.until("HeldEvent");
    assert.equal((await currentCalls(h, t))[0].state, "held");
    assert.equal(await post(h, t, `/api/calls/${id}/retrieve`), 204);
    await sse.until("RetrievedEvent");
    assert.equal((await currentCalls(h, t))[0].state, "connected");

    // A reload: a new stream and GET /api/calls show the same call.
    await sse.cancel();
    const again = await openEvents(h.url, t);
    assert.deepEqual((await currentCalls(h, t)).map((c) => [c.callId, c.state]), [
      [id, "connected"],
    ]);
    assert.equal(await post(h, t, `/api/calls/${id}`, "DELETE"), 204);
    await again.until("ConnectionClearedEvent");
    assert.deepEqual(await currentCalls(h, t), []);
    await again.cancel();
  }, STILL);
});

Deno.test("calls: DELETE on a ringing incoming call declines it", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const id = h.sim.incomingCall({ from: "+14155550123", to: "3095" });
    await sse.until("DeliveredEvent");
    assert.equal((await currentCalls(h, t))[0].state, "alerting");
    const mark = h.sim.mark();
    assert.equal(await post(h, t, `/api/calls/${id}`, "DELETE"), 204);
    const clear = await h.sim.waitFor("ClearConnection", undefined, 5000, mark);
    assert.match(clear.xml, new RegExp(`<callID>${id}</callID><deviceID>3095</deviceID>`));
    const cleared = await sse.until("ConnectionClearedEvent");
    assert.equal(JSON.parse(cleared.at(-1)!.data).releasingDevice, "3095");
    assert.deepEqual(await currentCalls(h, t), []);
    // The MX dropped the call (nobody rings), and the caller's call is in the log as missed.
    assert.equal(h.sim.calls().some((c) => c.id === id), false);
    assert.equal(h.sim.callLog("3095").at(-1)?.missed, true);
    await sse.cancel();
  }, STILL);
});

Deno.test("calls: an outgoing call is initiated, then rings at the far end, with the peer's name", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const res = await fetch(`${h.url}/api/call`, {
      method: "POST",
      headers: { Authorization: `Bearer ${t}` },
      body: new URLSearchParams({ to: "3099" }),
    });
    const { call } = await res.json();
    await sse.until("DeliveredEvent");
    assert.deepEqual(
      (await currentCalls(h, t)).map((c) => [c.callId, c.state, c.direction, c.peer, c.peerName]),
      [[call.callId, "alerting", "outgoing", "3099", "Maxim Donchenko"]],
    );
    h.sim.hangup(call.callId, "3099");
    await sse.until("ConnectionClearedEvent");
    assert.deepEqual(await currentCalls(h, t), []);
    await sse.cancel();
  }, STILL);
});

Deno.test("calls: a call answered on another phone leaves the list", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const id = h.sim.incomingCall({ from: "+15550100", to: "3095" });
    await sse.until("DeliveredEvent");
    assert.equal((await currentCalls(h, t)).length, 1);
    assert.equal(h.sim.answerElsewhere(id, "3044"), true);
    const evs = await sse.until("EstablishedEvent");
    assert.equal(JSON.parse(evs.at(-1)!.data).answeringDevice, "3044");
    assert.deepEqual(await currentCalls(h, t), []);
    await sse.cancel();
  }, STILL);
});

Deno.test("calls: a call picked up by a colleague or sent to voicemail leaves the list", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    for (const step of ["pickup", "voicemail"]) {
      const id = h.sim.incomingCall({ from: "+15550100", to: "3095" });
      await sse.until("DeliveredEvent");
      assert.equal((await currentCalls(h, t)).length, 1, step);
      assert.equal(step === "pickup" ? h.sim.pickup(id, "3044") : h.sim.sendToVoicemail(id), true);
      const diverted = await sse.until("DivertedEvent");
      assert.equal(JSON.parse(diverted.at(-1)!.data).divertingDevice, "3095");
      assert.deepEqual(await currentCalls(h, t), [], step);
      h.sim.hangup(id);
    }
    await sse.cancel();
  }, STILL);
});

Deno.test("calls: an MX outage forgets the calls; logout and a new login start empty", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    h.sim.incomingCall({ from: "+15550100", to: "3095" });
    await sse.until("DeliveredEvent");
    assert.equal((await currentCalls(h, t)).length, 1);
    // What happens to calls while the session is down is unknown: they are forgotten.
    const mx = h.server.sessions.get("test")!;
    const reconnects = mx.reconnects;
    h.sim.dropConnections();
    await waitUntil(() => mx.reconnects > reconnects && mx.state === "connected", {
      what: "MX session back",
    });
    assert.deepEqual(await currentCalls(h, t), []);
    await sse.cancel();

    // A call seen, then logout (the monitor stops): a new login does not show it.
    h.sim.incomingCall({ from: "+15550102", to: "3095" });
    await waitUntil(async () => (await currentCalls(h, t)).length === 1, { what: "a call" });
    assert.equal(await post(h, t, "/api/logout", "GET"), 204);
    const t2 = await flexLogin(h.url);
    assert.deepEqual(await currentCalls(h, t2), []);
  }, STILL);
});
