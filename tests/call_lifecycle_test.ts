/**
 * The pure derivation of push lifecycle steps from call events (lib/mx/call_lifecycle.ts):
 * every row of its rule table, the payload shape, and what must produce nothing.
 */
import assert from "node:assert/strict";
import { CallLifecycle, type LifecycleStep } from "../lib/mx/call_lifecycle.ts";
import type { CallEvent } from "../lib/csta/events.ts";

const E = "3095";
const CALLER = "3044";
const GCID = "2808630435142227021";
const T0 = 1_700_000_000_000;
/** The seed's incoming fields (mx-protocol §4.8) for the call below, in the seed's order. */
const SEED_FIELDS = {
  callId: 21,
  deviceId: E,
  globalCallId: GCID,
  alertingDevice: E,
  callingDevice: CALLER,
  calledDevice: E,
  lastRedirectionDevice: "",
  localConnectionInfo: "alerting",
  cause: "normal",
  callTypeFlags: 170917889,
};

function ev(name: string, data: Record<string, unknown>, callId = 21): CallEvent {
  return { name, monitorCrossRefId: 1, callId, data: { callId, deviceId: E, ...data } };
}

const delivered = (o: Record<string, unknown> = {}, callId = 21) =>
  ev("DeliveredEvent", {
    globalCallId: GCID,
    alertingDevice: E,
    callingDevice: CALLER,
    calledDevice: E,
    localConnectionInfo: "alerting",
    cause: "normal",
    callTypeFlags: 170917889,
    cads: [{ name: "__FIRST_CALL_ID__", type: "string", value: "63022-00-0000D-15" }],
    ...o,
  }, callId);
const established = (answeringDevice: string) =>
  ev("EstablishedEvent", { globalCallId: GCID, answeringDevice, callingDevice: CALLER });
const diverted = (cause: string, newDestination = "*86", divertingDevice = E) =>
  ev("DivertedEvent", { divertingDevice, newDestination, cause });
const cleared = (releasingDevice: string) =>
  ev("ConnectionClearedEvent", { releasingDevice, cause: "normal" });
const transferred = (to: string) =>
  ev("TransferredEvent", { transferringDevice: E, transferredToDevice: to, cause: "normal" });

/** Rings, then feeds `end`; returns both steps. */
function ringThen(end: CallEvent): [LifecycleStep | undefined, LifecycleStep | undefined] {
  const life = new CallLifecycle();
  return [life.next(E, delivered(), T0), life.next(E, end, T0 + 5_500)];
}

Deno.test("lifecycle: incoming keeps the seed payload exactly and adds event", () => {
  const step = new CallLifecycle().next(E, delivered(), T0);
  assert.deepEqual(step, {
    event: "incoming",
    reason: undefined,
    callKey: GCID,
    at: T0,
    payload: { ...SEED_FIELDS, time: T0 / 1000, event: "incoming" },
  });
  // Same key order as the seed (mx-protocol §4.8), event last.
  assert.deepEqual(Object.keys(step!.payload).slice(-3), ["callTypeFlags", "time", "event"]);
});

Deno.test("lifecycle: follow-ups carry the incoming fields, their own time, event and reason", () => {
  const [, step] = ringThen(cleared(CALLER));
  assert.equal(step?.callKey, GCID);
  assert.equal(step?.at, T0 + 5_500);
  assert.deepEqual(step?.payload, {
    ...SEED_FIELDS,
    time: Math.floor((T0 + 5_500) / 1000),
    event: "cancelled",
    reason: "caller_hung_up",
  });
});

Deno.test("lifecycle: every rule of the table", () => {
  const cases: Array<[string, CallEvent, string, string | undefined]> = [
    ["answered here (desk phone or app)", established(E), "answered", undefined],
    ["answered, no answering device named", established(""), "answered", undefined],
    ["answered by a colleague", established("3099"), "answered_elsewhere", "picked_up"],
    ["picked up", diverted("callPickup", "3099"), "answered_elsewhere", "picked_up"],
    ["deflected", diverted("redirected", "3099"), "answered_elsewhere", "redirected"],
    ["transferred away", transferred("3099"), "answered_elsewhere", "transferred"],
    ["no answer -> voicemail", diverted("callForwardNoAnswer"), "missed", "no_answer"],
    ["no answer (short cause)", diverted("noAnswer"), "missed", "no_answer"],
    ["busy forwarding", diverted("callForwardBusy"), "missed", "busy"],
    ["forwarded, cause normal", diverted("normal", "79031744445"), "missed", "forwarded"],
    ["caller hung up", cleared(CALLER), "cancelled", "caller_hung_up"],
    ["declined on the desk phone", cleared(E), "cancelled", "declined"],
    ["cleared by the MX", cleared(""), "missed", "no_answer"],
  ];
  for (const [what, end, event, reason] of cases) {
    const [first, step] = ringThen(end);
    assert.equal(first?.event, "incoming", what);
    assert.equal(step?.event, event, what);
    assert.equal(step?.reason, reason, what);
    assert.equal(step?.payload.reason, reason, what);
  }
});

Deno.test("lifecycle: one outcome per call; repeated and late events are ignored", () => {
  const life = new CallLifecycle();
  assert.equal(life.next(E, delivered(), T0)?.event, "incoming");
  assert.equal(life.next(E, delivered(), T0 + 10), undefined, "repeated alerting");
  assert.equal(life.next(E, established(E), T0 + 20)?.event, "answered");
  assert.equal(life.next(E, cleared(CALLER), T0 + 30), undefined, "hang-up after answer");
  assert.equal(life.next(E, delivered(), T0 + 40), undefined, "the same call again");
  // Another call is tracked on its own.
  assert.equal(life.next(E, delivered({ globalCallId: "" }, 22), T0 + 50)?.callKey, "22");
});

Deno.test("lifecycle: calls that never rang here produce nothing", () => {
  const life = new CallLifecycle();
  // The user's own outgoing call: the far end alerts.
  const out = delivered({ alertingDevice: "3099", calledDevice: "3099", callingDevice: E });
  assert.equal(life.next(E, out, T0), undefined);
  assert.equal(life.next(E, established("3099"), T0 + 1), undefined);
  // A call to a colleague seen on this monitor (alerting elsewhere, called here: forwarded).
  assert.equal(life.next(E, delivered({ alertingDevice: "3099" }, 23), T0), undefined);
  // Immediate forwarding: diverted before it rang.
  assert.equal(life.next(E, diverted("callForwardImmediate", "3099"), T0), undefined);
  // A self-call.
  assert.equal(life.next(E, delivered({ callingDevice: E }, 24), T0), undefined);
  // Events of other kinds never end a call.
  const life2 = new CallLifecycle();
  life2.next(E, delivered(), T0);
  assert.equal(life2.next(E, ev("HeldEvent", { holdingDevice: CALLER }), T0 + 1), undefined);
  assert.equal(life2.next(E, diverted("normal", E, CALLER), T0 + 2), undefined, "diverted here");
  assert.equal(life2.next(E, transferred(E), T0 + 3), undefined, "transferred here");
  assert.equal(life2.next(E, established(E), T0 + 4)?.event, "answered");
});

Deno.test("lifecycle: extensions are tracked separately; old calls are forgotten", () => {
  const life = new CallLifecycle({ maxAgeMs: 60_000 });
  life.next(E, delivered(), T0);
  const other = { ...delivered({ alertingDevice: "3099", calledDevice: "3099" }) };
  other.data.deviceId = "3099";
  assert.equal(life.next("3099", other, T0)?.event, "incoming");
  assert.equal(life.next("3099", established("3099"), T0 + 1)?.event, "answered");
  assert.equal(life.next(E, established("3099"), T0 + 2)?.event, "answered_elsewhere");
  assert.equal(life.size, 2);
  life.next(E, delivered({}, 30), T0 + 61_000);
  assert.equal(life.size, 1, "the entries of the first call are swept");
});
