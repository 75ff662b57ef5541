/**
 * The call tracker on its own: the state machine over call events (lib/mx/call_tracker.ts)
 * for incoming, outgoing, held, picked-up-elsewhere, diverted, transferred, failed calls.
 */
import assert from "node:assert/strict";
import { CallTracker, trackCall } from "../lib/mx/call_tracker.ts";
import type { CallEvent } from "../lib/mx/types.ts";

const ME = "3095";

function ev(name: string, callId: number, data: Record<string, unknown>): CallEvent {
  return { name, monitorCrossRefId: 1, callId, data: { callId, deviceId: ME, ...data } };
}

const delivered = (id: number, calling: string, alerting: string, called = alerting) =>
  ev("DeliveredEvent", id, {
    alertingDevice: alerting,
    callingDevice: calling,
    calledDevice: called,
    localConnectionInfo: "alerting",
  });
const established = (id: number, calling: string, answering: string, names = {}) =>
  ev("EstablishedEvent", id, {
    answeringDevice: answering,
    callingDevice: calling,
    calledDevice: answering,
    ...names,
  });

Deno.test("call tracker: an incoming call rings, is answered, held, retrieved and cleared", () => {
  let now = 1000;
  const t = new CallTracker(() => now);
  assert.equal(t.apply(ME, delivered(21, "3044", ME)), true);
  assert.deepEqual(t.list(ME), [{
    callId: 21,
    deviceId: ME,
    state: "alerting",
    direction: "incoming",
    peer: "3044",
    peerName: "",
    since: 1000,
  }]);
  now = 1005;
  t.apply(ME, established(21, "3044", ME, { callingDisplayName: "Peter Hyde" }));
  assert.deepEqual(
    [t.get(ME, 21)?.state, t.get(ME, 21)?.peerName, t.get(ME, 21)?.since],
    ["connected", "Peter Hyde", 1000],
  );
  t.apply(ME, ev("HeldEvent", 21, { holdingDevice: ME }));
  assert.equal(t.get(ME, 21)?.state, "held");
  t.apply(ME, ev("RetrievedEvent", 21, { retrievingDevice: ME }));
  assert.equal(t.get(ME, 21)?.state, "connected");
  t.apply(ME, ev("ConnectionClearedEvent", 21, { releasingDevice: "3044" }));
  assert.deepEqual(t.list(ME), []);
});

Deno.test("call tracker: an outgoing call is initiated, rings at the far end, connects", () => {
  const t = new CallTracker(() => 7);
  t.apply(ME, ev("OriginatedEvent", 22, { callingDevice: ME, calledDevice: "3099" }));
  assert.deepEqual(t.list(ME).map((c) => [c.state, c.direction, c.peer]), [
    ["initiated", "outgoing", "3099"],
  ]);
  t.apply(ME, delivered(22, ME, "3099"));
  assert.deepEqual(t.list(ME).map((c) => [c.state, c.direction, c.peer]), [
    ["alerting", "outgoing", "3099"],
  ]);
  t.apply(
    ME,
    established(22, ME, "3099", { answeringDisplayName: "Maxim Donchenko" }),
  );
  assert.deepEqual(t.list(ME).map((c) => [c.state, c.peer, c.peerName]), [
    ["connected", "3099", "Maxim Donchenko"],
  ]);
  // a display name that is only the number is no name
  const u = new CallTracker();
  u.apply(ME, established(23, ME, "+15550100", { answeringDisplayName: "+15550100" }));
  assert.equal(u.get(ME, 23)?.peerName, "");
  // the other side holding it is not "held" (by the user)
  t.apply(ME, ev("HeldEvent", 22, { holdingDevice: "3099" }));
  assert.equal(t.get(ME, 22)?.state, "connected");
});

Deno.test("call tracker: a call picked up elsewhere, diverted away, transferred or failed leaves", () => {
  const t = new CallTracker();
  // ringing here, answered by 3044 (pickup): gone
  t.apply(ME, delivered(31, "+15550100", ME));
  t.apply(ME, established(31, "+15550100", "3044"));
  assert.equal(t.get(ME, 31), undefined);
  // ringing here, diverted to voicemail: gone
  t.apply(ME, delivered(32, "+15550100", ME));
  t.apply(ME, ev("DivertedEvent", 32, { divertingDevice: ME, newDestination: "3000" }));
  assert.equal(t.get(ME, 32), undefined);
  // my outgoing call diverted at the far end: still mine, new peer
  t.apply(ME, ev("OriginatedEvent", 33, { callingDevice: ME, calledDevice: "3099" }));
  t.apply(ME, ev("DivertedEvent", 33, { divertingDevice: "3099", newDestination: "3044" }));
  assert.equal(t.get(ME, 33)?.peer, "3044");
  // transferred (by me or the other side), failed: gone
  t.apply(ME, ev("TransferredEvent", 33, { transferringDevice: ME }));
  assert.equal(t.get(ME, 33), undefined);
  t.apply(ME, ev("OriginatedEvent", 34, { callingDevice: ME, calledDevice: "123" }));
  t.apply(ME, ev("FailedEvent", 34, { callingDevice: ME, calledDevice: "123" }));
  assert.deepEqual(t.list(ME), []);
});

Deno.test("call tracker: events about other devices, unknown calls and no-ops change nothing", () => {
  const t = new CallTracker();
  // a DeliveredEvent that is not about me (neither calling nor ringing here)
  assert.equal(t.apply(ME, delivered(41, "3044", "3099")), false);
  // hold / retrieve / clear of an unknown call
  for (const name of ["HeldEvent", "RetrievedEvent", "ConnectionClearedEvent"]) {
    assert.equal(t.apply(ME, ev(name, 42, {})), false, name);
  }
  // no call id
  assert.equal(t.apply(ME, ev("OriginatedEvent", 0, { calledDevice: "1" })), false);
  // the same event twice: the second changes nothing, and trackCall returns the same call
  t.apply(ME, delivered(43, "3044", ME));
  const c = t.get(ME, 43);
  assert.equal(t.apply(ME, delivered(43, "3044", ME)), false);
  assert.strictEqual(trackCall(c, ME, delivered(43, "3044", ME), 0), c);
  assert.equal(t.apply(ME, ev("RecordingStateEvent", 43, {})), false);
  // per extension
  assert.deepEqual(t.list("3099"), []);
  t.forget(ME);
  assert.deepEqual(t.list(ME), []);
  t.apply(ME, delivered(44, "3044", ME));
  t.clear();
  assert.deepEqual(t.list(ME), []);
});

Deno.test("call tracker: a call to me by number only (no alertingDevice) rings here", () => {
  const t = new CallTracker();
  t.apply(ME, delivered(51, "+15550100", "", ME));
  assert.deepEqual(t.list(ME).map((c) => [c.state, c.direction, c.peer]), [
    ["alerting", "incoming", "+15550100"],
  ]);
});
