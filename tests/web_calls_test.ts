/**
 * The web client's call state machine (static/lib/calls.js), a pure function
 * `(calls, event, me) -> calls`: unit tests for every event and edge (incoming, outgoing,
 * held, retrieved, transferred, diverted, cleared, failed, picked up elsewhere, unknown
 * events, other devices, tombstones), then the same function folding the real event stream
 * of MXFlex while the MX simulator rings, answers, holds and hangs up.
 */
import assert from "node:assert/strict";
import {
  addPlacedCall,
  applyCallEvent,
  type Call,
  CALL_EVENTS,
  callActions,
  type CallEvent,
  type Calls,
  MAX_ENDED,
  NO_CALLS,
} from "../static/lib/calls.js";
import { CALL_EVENTS as SERVER_CALL_EVENTS } from "../lib/csta/events.ts";
import { DMITRY, flexLogin, SseReader, withHarness } from "./helpers/harness.ts";

const ME = "3095";
const T0 = 1_700_000_000_000;

/** An event as the stream delivers it, `at` T0 + `dt` seconds. */
function ev(name: string, data: Record<string, unknown>, dt = 0): CallEvent {
  return { name, data: { deviceId: ME, ...data }, at: T0 + dt * 1000 };
}

/** Folds events from `calls` (default none). */
function fold(events: CallEvent[], calls: Calls = NO_CALLS): Calls {
  return events.reduce((acc, e) => applyCallEvent(acc, e, ME), calls);
}

function only(calls: Calls, id: number): Readonly<Call> {
  const c = calls.get(id);
  assert.ok(c, `call ${id} in ${JSON.stringify([...calls.keys()])}`);
  return c;
}

const ringing = (id = 21, from = "3044") =>
  ev("DeliveredEvent", {
    callId: id,
    alertingDevice: ME,
    callingDevice: from,
    calledDevice: ME,
    localConnectionInfo: "alerting",
  });

Deno.test("web calls: the client listens for every call event the server sends", () => {
  // The server accepts the MX's "TransferedEvent" spelling and sends it as TransferredEvent.
  const sent = [...SERVER_CALL_EVENTS].filter((n) => n !== "TransferedEvent").sort();
  assert.deepEqual([...CALL_EVENTS].sort(), sent);
});

Deno.test("web calls: incoming call rings, is answered, held by me, retrieved, cleared", () => {
  let calls = fold([ringing(21)]);
  let c = only(calls, 21);
  assert.equal(c.state, "ringing");
  assert.equal(c.direction, "in");
  assert.equal(c.remote, "3044");
  assert.equal(c.since, T0);
  assert.deepEqual(callActions(c), ["answer", "decline"]);

  calls = fold([
    ev("EstablishedEvent", {
      callId: 21,
      answeringDevice: ME,
      callingDevice: "3044",
      calledDevice: ME,
      callingDisplayName: "Peter Hyde",
    }, 5),
  ], calls);
  c = only(calls, 21);
  assert.equal(c.state, "established");
  assert.equal(c.remoteName, "Peter Hyde");
  assert.equal(c.connectedAt, T0 + 5000);
  assert.deepEqual(callActions(c), ["hold", "transfer", "hangup"]);

  calls = fold([ev("HeldEvent", { callId: 21, holdingDevice: ME }, 6)], calls);
  assert.equal(only(calls, 21).state, "held");
  assert.deepEqual(callActions(only(calls, 21)), ["retrieve", "transfer", "hangup"]);
  calls = fold([ev("RetrievedEvent", { callId: 21, retrievingDevice: ME }, 7)], calls);
  c = only(calls, 21);
  assert.equal(c.state, "established");
  assert.equal(c.connectedAt, T0 + 5000, "the clock keeps running from the first answer");

  calls = fold([
    ev("ConnectionClearedEvent", { callId: 21, releasingDevice: "3044", cause: "normal" }, 9),
  ], calls);
  c = only(calls, 21);
  assert.equal(c.state, "cleared");
  assert.equal(c.endedAt, T0 + 9000);
  assert.deepEqual(c.history, ["ringing", "established", "held", "established", "cleared"]);
  assert.deepEqual(callActions(c), []);
});

Deno.test("web calls: outgoing call originated, delivered, established with the MX's name", () => {
  const calls = fold([
    ev("ServiceInitiatedEvent", { callId: 39, initiatingDevice: ME }),
    ev("OriginatedEvent", { callId: 39, callingDevice: ME, calledDevice: "3099" }),
    ev("DeliveredEvent", {
      callId: 39,
      alertingDevice: "3099",
      callingDevice: ME,
      calledDevice: "3099",
    }, 1),
    ev("EstablishedEvent", {
      callId: 39,
      answeringDevice: "3099",
      answeringDisplayName: "Maxim Donchenko",
      callingDevice: ME,
      calledDevice: "3099",
      callingDisplayName: "Dmitry",
    }, 3),
  ]);
  const c = only(calls, 39);
  assert.equal(c.direction, "out");
  assert.equal(c.remote, "3099");
  assert.equal(c.remoteName, "Maxim Donchenko");
  assert.equal(c.connectedAt, T0 + 3000);
  assert.deepEqual(c.history, ["originated", "delivered", "established"]);
  assert.deepEqual(callActions(fold([ev("OriginatedEvent", { callId: 1 })]).get(1)!), [
    "hangup",
  ]);
});

Deno.test("web calls: an established call seen first takes its direction from the caller", () => {
  const mine = fold([
    ev("EstablishedEvent", { callId: 5, answeringDevice: "3044", callingDevice: ME }),
  ]);
  assert.equal(only(mine, 5).direction, "out");
  assert.equal(only(mine, 5).remote, "3044");
  const theirs = fold([
    ev("EstablishedEvent", { callId: 6, answeringDevice: ME, callingDevice: "3044" }),
  ]);
  assert.equal(only(theirs, 6).direction, "in");
  assert.equal(only(theirs, 6).remote, "3044");
});

Deno.test("web calls: held by the other party is remote-held, with only hang up", () => {
  const calls = fold([
    ringing(8),
    ev("EstablishedEvent", { callId: 8, answeringDevice: ME, callingDevice: "3044" }),
    ev("HeldEvent", { callId: 8, holdingDevice: "3044" }),
  ]);
  assert.equal(only(calls, 8).state, "remote-held");
  assert.deepEqual(callActions(only(calls, 8)), ["hangup"]);
  const back = fold([ev("RetrievedEvent", { callId: 8, retrievingDevice: "3044" })], calls);
  assert.equal(only(back, 8).state, "established");
});

Deno.test("web calls: transferred by me ends the call; by the other party changes who", () => {
  const talking = fold([
    ringing(30, "+14155550124"),
    ev("EstablishedEvent", {
      callId: 30,
      answeringDevice: ME,
      callingDevice: "+14155550124",
      callingDisplayName: "Caller",
    }),
  ]);
  const mine = fold([
    ev("TransferredEvent", { callId: 30, transferringDevice: ME, transferredToDevice: "3099" }, 2),
  ], talking);
  assert.equal(only(mine, 30).state, "cleared");
  assert.equal(only(mine, 30).note, "Transferred to 3099");
  assert.equal(only(mine, 30).endedAt, T0 + 2000);

  const theirs = fold([
    ev("TransferredEvent", {
      callId: 30,
      transferringDevice: "+14155550124",
      transferredToDevice: "3044",
    }),
  ], talking);
  const c = only(theirs, 30);
  assert.equal(c.state, "established");
  assert.equal(c.remote, "3044");
  assert.equal(c.remoteName, "", "the old party's name does not stick to the new one");

  // My transfer of a call never seen: nothing to show.
  const unknown = fold([ev("TransferredEvent", { callId: 99, transferringDevice: ME })]);
  assert.equal(unknown, NO_CALLS);
});

Deno.test("web calls: diverted outgoing call follows the new destination", () => {
  const calls = fold([
    ev("OriginatedEvent", { callId: 40, callingDevice: ME, calledDevice: "3044" }),
    ev("DivertedEvent", { callId: 40, divertingDevice: "3044", newDestination: "79031744445" }),
  ]);
  const c = only(calls, 40);
  assert.equal(c.state, "originated");
  assert.equal(c.remote, "79031744445");
  assert.equal(c.note, "Forwarded to 79031744445");
  // A diversion to me says nothing new.
  assert.equal(
    fold([ev("DivertedEvent", { callId: 40, divertingDevice: "3044", newDestination: ME })], calls),
    calls,
  );
});

Deno.test("web calls: a call ringing here and picked up elsewhere ends here", () => {
  // Answered on another phone (pickup, hunt group): EstablishedEvent names that phone.
  const answered = fold([
    ringing(50),
    ev("EstablishedEvent", {
      callId: 50,
      answeringDevice: "3099",
      answeringDisplayName: "Maxim Donchenko",
      callingDevice: "3044",
      calledDevice: ME,
    }, 4),
  ]);
  let c = only(answered, 50);
  assert.equal(c.state, "cleared");
  assert.equal(c.note, "Answered by Maxim Donchenko");
  assert.equal(c.connectedAt, 0);
  assert.deepEqual(c.history, ["ringing", "cleared"]);
  // Its own ConnectionClearedEvent afterwards changes nothing.
  assert.equal(fold([ev("ConnectionClearedEvent", { callId: 50 })], answered), answered);

  // Taken away from this phone (deflected, picked up): DivertedEvent from me.
  const diverted = fold([
    ringing(51),
    ev("DivertedEvent", { callId: 51, divertingDevice: ME, newDestination: "3099" }, 2),
  ]);
  c = only(diverted, 51);
  assert.equal(c.state, "cleared");
  assert.equal(c.note, "Forwarded to 3099");
  assert.equal(c.endedAt, T0 + 2000);
});

Deno.test("web calls: failed calls show the cause and end", () => {
  const calls = fold([
    ev("OriginatedEvent", { callId: 60, callingDevice: ME, calledDevice: "999" }),
    ev("FailedEvent", { callId: 60, callingDevice: ME, calledDevice: "999", cause: "busy" }, 1),
  ]);
  assert.equal(only(calls, 60).state, "failed");
  assert.equal(only(calls, 60).note, "Failed: busy");
  assert.deepEqual(only(calls, 60).history, ["originated", "failed"]);
});

Deno.test("web calls: ended calls are tombstones: later events and replies do not revive them", () => {
  const ended = fold([ringing(70), ev("ConnectionClearedEvent", { callId: 70 }, 1)]);
  for (const name of CALL_EVENTS) {
    assert.equal(
      applyCallEvent(
        ended,
        ev(name, { callId: 70, alertingDevice: ME, answeringDevice: ME, recIsActive: true }),
        ME,
      ),
      ended,
      name,
    );
  }
  assert.equal(addPlacedCall(ended, { callId: 70, to: "3044", at: T0 }), ended);
  // Ending a call never seen shows nothing.
  assert.equal(fold([ev("ConnectionClearedEvent", { callId: 71 })]), NO_CALLS);
  assert.equal(fold([ev("FailedEvent", { callId: 72, cause: "busy" })]), NO_CALLS);
});

Deno.test("web calls: unknown events, malformed ids and no-news events change nothing", () => {
  const calls = fold([ringing(80)]);
  const same = [
    ev("ConfAddEvent", { callId: 80 }),
    ev("presence", { callId: 80 }),
    ev("DeliveredEvent", { callId: "x", alertingDevice: ME }),
    ev("DeliveredEvent", { alertingDevice: ME }),
    ev("DeliveredEvent", { callId: 1.5, alertingDevice: ME }),
    // The same event twice (a replay) is no news.
    ringing(80),
    // Events that say nothing about the state of a call never seen.
    ev("RecordingStateEvent", { callId: 81, recIsActive: true }),
    ev("NetworkReachedEvent", { callId: 82 }),
    ev("DivertedEvent", { callId: 83, divertingDevice: "3044", newDestination: "3099" }),
  ];
  for (const e of same) assert.equal(applyCallEvent(calls, e, ME), calls, JSON.stringify(e));
  // A numeric string id is still an id.
  assert.equal(
    only(fold([ev("DeliveredEvent", { callId: "84", alertingDevice: ME })]), 84).state,
    "ringing",
  );
});

Deno.test("web calls: events of other devices are ignored; no deviceId means mine", () => {
  const other = { ...ringing(90), data: { ...ringing(90).data, deviceId: "3099" } };
  assert.equal(applyCallEvent(NO_CALLS, other, ME), NO_CALLS);
  const known = fold([ringing(90)]);
  const elsewhere = { name: "ConnectionClearedEvent", data: { callId: 90, deviceId: "3099" } };
  assert.equal(applyCallEvent(known, { ...elsewhere, at: T0 }, ME), known);
  const noDevice = { ...ringing(91), data: { ...ringing(91).data, deviceId: "" } };
  assert.equal(only(applyCallEvent(NO_CALLS, noDevice, ME), 91).state, "ringing");
});

Deno.test("web calls: recording and outside-line notes", () => {
  let calls = fold([
    ringing(95),
    ev("EstablishedEvent", { callId: 95, answeringDevice: ME, callingDevice: "3044" }),
    ev("RecordingStateEvent", { callId: 95, recIsAvailable: true, recIsActive: true }),
  ]);
  assert.equal(only(calls, 95).note, "Recording");
  calls = fold([ev("RecordingStateEvent", { callId: 95, recIsActive: false })], calls);
  assert.equal(only(calls, 95).note, "");
  calls = fold([ev("NetworkReachedEvent", { callId: 95, networkInterfaceUsed: "t1" })], calls);
  assert.equal(only(calls, 95).note, "Outside line");
});

Deno.test("web calls: immutable: inputs untouched, outputs frozen", () => {
  const before = fold([ringing(100)]);
  const snapshot = structuredClone(only(before, 100));
  const after = fold([
    ev("EstablishedEvent", { callId: 100, answeringDevice: ME, callingDevice: "3044" }),
  ], before);
  assert.notEqual(after, before);
  assert.deepEqual(only(before, 100), snapshot);
  assert.equal(before.size, 1);
  assert.ok(Object.isFrozen(only(after, 100)));
  assert.ok(Object.isFrozen(only(after, 100).history));
  assert.equal(NO_CALLS.size, 0);
});

Deno.test("web calls: a placed call shows at once unless events came first", () => {
  const placed = addPlacedCall(NO_CALLS, {
    callId: 12,
    to: "+14155550100",
    name: "Anna",
    at: T0,
  });
  const c = only(placed, 12);
  assert.equal(c.state, "originated");
  assert.equal(c.direction, "out");
  assert.equal(c.remote, "+14155550100");
  assert.equal(c.remoteName, "Anna");
  // Events then carry on from there.
  const delivered = fold([
    ev("DeliveredEvent", { callId: 12, alertingDevice: "+14155550100", callingDevice: ME }),
  ], placed);
  assert.deepEqual(only(delivered, 12).history, ["originated", "delivered"]);
  // Known already (events were faster), or no id in the reply: unchanged.
  assert.equal(addPlacedCall(delivered, { callId: 12, to: "x", at: T0 }), delivered);
  assert.equal(addPlacedCall(NO_CALLS, { callId: NaN, to: "x", at: T0 }), NO_CALLS);
});

Deno.test("web calls: at most MAX_ENDED tombstones, oldest first out, live calls kept", () => {
  let calls = fold([ringing(1)]);
  for (let id = 2; id < MAX_ENDED + 12; id++) {
    calls = fold([ringing(id), ev("ConnectionClearedEvent", { callId: id })], calls);
  }
  const ended = [...calls.values()].filter((c) => c.state === "cleared");
  assert.equal(ended.length, MAX_ENDED);
  assert.equal(only(calls, 1).state, "ringing");
  assert.equal(calls.has(2), false);
  assert.ok(calls.has(MAX_ENDED + 11));
});

Deno.test("web calls: folding the real event stream of MXFlex and the MX simulator", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const res = await fetch(`${h.url}/api/events?access_token=${token}`, {
      headers: { Accept: "text/event-stream" },
    });
    assert.equal(res.status, 200);
    const sse = new SseReader(res);
    let calls = NO_CALLS;
    /** Reads events up to `name`, folding each. */
    const readUntil = async (name: string) => {
      for (const e of await sse.until(name)) {
        calls = applyCallEvent(calls, {
          name: e.event,
          data: JSON.parse(e.data),
          at: Date.now(),
        }, DMITRY.ext);
      }
    };
    const control = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${h.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
      await r.body?.cancel();
      assert.ok(r.ok, `${method} ${path}: ${r.status}`);
    };
    try {
      // Incoming: ring, answer, hold, retrieve, hang up.
      const id = h.sim.incomingCall({ from: "+14155550123", to: DMITRY.ext });
      await readUntil("DeliveredEvent");
      assert.equal(only(calls, id).state, "ringing");
      assert.equal(only(calls, id).remote, "+14155550123");
      await control("POST", `/api/calls/${id}/answer`);
      await readUntil("EstablishedEvent");
      await control("POST", `/api/calls/${id}/hold`);
      await readUntil("HeldEvent");
      assert.equal(only(calls, id).state, "held");
      await control("POST", `/api/calls/${id}/retrieve`);
      await readUntil("RetrievedEvent");
      await control("DELETE", `/api/calls/${id}`);
      await readUntil("ConnectionClearedEvent");
      assert.deepEqual(only(calls, id).history, [
        "ringing",
        "established",
        "held",
        "established",
        "cleared",
      ]);

      // Outgoing to 3099, answered there, then transferred by me.
      await control("POST", "/api/call", { to: "3099" });
      await readUntil("DeliveredEvent");
      const out = [...calls.values()].find((c) => c.state === "delivered");
      assert.ok(out, JSON.stringify([...calls.values()]));
      assert.equal(out.direction, "out");
      assert.equal(out.remote, "3099");
      const maxim = await flexLogin(h.url, "maxim", "secret");
      const answer = await fetch(`${h.url}/api/calls/${out.id}/answer`, {
        method: "POST",
        headers: { Authorization: `Bearer ${maxim}` },
      });
      assert.equal(answer.status, 204);
      await readUntil("EstablishedEvent");
      assert.equal(only(calls, out.id).state, "established");
      await control("POST", `/api/calls/${out.id}/transfer`, { to: "3044" });
      await readUntil("TransferredEvent");
      assert.equal(only(calls, out.id).state, "cleared");
      assert.equal(only(calls, out.id).note, "Transferred to 3044");
    } finally {
      await sse.cancel();
    }
  }, { sim: { answerAfterMs: -1 } });
});
