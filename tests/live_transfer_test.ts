/**
 * Consultation transfer end to end (HTTP -> server -> CSTA over TLS -> simulator): hold and
 * call the target, then complete (`TransferCall`), or cancel; a consultation call that cannot
 * be placed gives the held call back.
 */
import assert from "node:assert/strict";
import { flexLogin, type Harness, openEvents, withHarness } from "./helpers/harness.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const MAXIM = { login: "maxim", password: "secret", ext: "3099" };

async function api(h: Harness, token: string, path: string, body?: unknown, method = "POST") {
  const res = await fetch(`${h.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function calls(h: Harness, token: string): Promise<Json[]> {
  return (await api(h, token, "/api/calls", undefined, "GET")).body.calls;
}

/** An answered call from 3044 to 3095 (the simulator answers after 50 ms). */
async function answeredCall(h: Harness, sse: Awaited<ReturnType<typeof openEvents>>) {
  const id = h.sim.incomingCall({ from: "3044", to: "3095" });
  await sse.until("EstablishedEvent");
  return id;
}

Deno.test("transfer: consult, then complete connects the caller with the target", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const tm = await flexLogin(h.url, MAXIM.login, MAXIM.password);
    const sse = await openEvents(h.url, t);
    const target = await openEvents(h.url, tm);
    const id = await answeredCall(h, sse);

    const r = await api(h, t, `/api/calls/${id}/transfer`, { to: "3099", consult: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.heldCall, { callId: id, deviceId: "3095" });
    assert.deepEqual([r.body.call.deviceId, r.body.call.called], ["3095", "3099"]);
    const consult: number = r.body.call.callId;
    const evs = await sse.until("EstablishedEvent");
    assert.deepEqual(evs.map((e) => e.event).slice(0, 2), ["HeldEvent", "OriginatedEvent"]);
    await target.until("EstablishedEvent");
    assert.deepEqual((await calls(h, t)).map((c) => [c.callId, c.state, c.peer]), [
      [id, "held", "3044"],
      [consult, "connected", "3099"],
    ]);

    // Complete: consultCallId defaults to the other current call.
    const mark = h.sim.mark();
    assert.equal((await api(h, t, `/api/calls/${id}/complete`)).status, 204);
    const cmd = await h.sim.waitFor("TransferCall", undefined, 5000, mark);
    assert.match(
      cmd.xml,
      new RegExp(
        `<heldCall><callID>${id}</callID><deviceID>3095</deviceID></heldCall>` +
          `<activeCall><callID>${consult}</callID><deviceID>3095</deviceID></activeCall>`,
      ),
    );
    const mine = await sse.until("TransferredEvent");
    const second = await sse.until("TransferredEvent");
    assert.deepEqual(
      [mine.at(-1)!, second.at(-1)!].map((e) => JSON.parse(e.data).callId).sort(),
      [id, consult].sort(),
    );
    assert.deepEqual(await calls(h, t), []);
    // 3044 and 3099 now talk to each other; the target's list shows it.
    const joined = h.sim.calls();
    assert.deepEqual(joined.map((c) => [c.calling, c.callee, c.state]), [[
      "3044",
      "3099",
      "connected",
    ]]);
    await target.until("EstablishedEvent");
    assert.deepEqual((await calls(h, tm)).map((c) => [c.callId, c.state, c.peer]), [
      [joined[0].id, "connected", "3044"],
    ]);
    await sse.cancel();
    await target.cancel();
  });
});

Deno.test("transfer: a consultation can be cancelled; complete needs a known second call", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const id = await answeredCall(h, sse);
    // No second call yet: nothing to complete with.
    let r = await api(h, t, `/api/calls/${id}/complete`);
    assert.deepEqual([r.status, r.body], [400, { error: "consultCallId required" }]);

    r = await api(h, t, `/api/calls/${id}/transfer`, { to: "3099", consult: "true" });
    assert.equal(r.status, 200);
    const consult: number = r.body.call.callId;
    await sse.until("EstablishedEvent");
    // Cancel: hang up the consultation call, take the held one back.
    assert.equal((await api(h, t, `/api/calls/${consult}`, undefined, "DELETE")).status, 204);
    await sse.until("ConnectionClearedEvent");
    assert.equal((await api(h, t, `/api/calls/${id}/retrieve`)).status, 204);
    await sse.until("RetrievedEvent");
    assert.deepEqual((await calls(h, t)).map((c) => [c.callId, c.state]), [[id, "connected"]]);
    // The MX refuses a transfer with a call that is not the user's.
    r = await api(h, t, `/api/calls/${id}/complete`, { consultCallId: 999 });
    assert.deepEqual([r.status, r.body], [422, { error: "invalid call id" }]);
    r = await api(h, t, `/api/calls/${id}/complete`, { consultCallId: "x" });
    assert.equal(r.status, 400);
    r = await api(h, t, `/api/calls/${id}/complete`, { deviceId: "3099" });
    assert.deepEqual([r.status, r.body], [403, { error: "device is not yours" }]);
    await sse.cancel();
  });
});

Deno.test("transfer: when the consultation call cannot be placed, the held call comes back", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const id = await answeredCall(h, sse);
    h.sim.setSilent(["MakeCall"]);
    const r = await api(h, t, `/api/calls/${id}/transfer`, { to: "3099", consult: true });
    assert.equal(r.status, 504);
    const evs = await sse.until("RetrievedEvent");
    assert.ok(evs.some((e) => e.event === "HeldEvent"));
    assert.deepEqual((await calls(h, t)).map((c) => [c.callId, c.state]), [[id, "connected"]]);
    await sse.cancel();
  }, { config: { requestTimeoutMs: 300 } });
});
