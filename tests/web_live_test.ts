/**
 * The web client's live state without a browser: presence and address-book changes
 * applied to the contacts, the server's current calls (page load, snapshot) taken over by
 * the call state machine, the reducer that routes every stream event, the tabs, presence
 * labels, call-history entries and the voicemail list; then the reducer folding the real
 * stream of MXFlex (contact changes, a snapshot after a gap). The browser drives the same
 * code in tests/browser_live_test.ts.
 */
import assert from "node:assert/strict";
import {
  addPlacedCall,
  applyCallEvent,
  callActions,
  type CallEvent,
  type Calls,
  NO_CALLS,
  restoreCalls,
} from "../static/lib/calls.js";
import {
  applyContactChange,
  applyPresence,
  compareExt,
  indexByExt,
} from "../static/lib/contacts.js";
import { applyStreamEvent, type LiveState, STREAM_EVENTS } from "../static/lib/live_state.js";
import { PRESENCE_CHOICES, presenceClass, presenceLabel } from "../static/lib/presence.js";
import { isShown, nextTab, TABS, tabsOffered } from "../static/lib/tabs.js";
import { historyEntries, historyEntry } from "../static/lib/calllog.js";
import {
  callerOf,
  sortVoicemails,
  unreadCount,
  withoutVoicemail,
  withVoicemailChange,
} from "../static/lib/voicemail.js";
import { when } from "../static/lib/format.js";
import { compareExt as serverCompareExt } from "../routes/flex.ts";
import { flexLogin, SseReader, withHarness } from "./helpers/harness.ts";

const ME = "3095";
const T0 = 1_700_000_000_000;

const CONTACTS = Object.freeze([
  { jid: "1", ext: "3044", firstName: "Peter", lastName: "Hyde", status: "LoggedOut" },
  { jid: "2", ext: "3095", firstName: "Dmitry", lastName: "Sedykh", status: "Available" },
  { jid: "3", ext: "3099", firstName: "Maxim", lastName: "Donchenko", status: "Available" },
]);

function live(over: Partial<LiveState> = {}): LiveState {
  return {
    me: ME,
    calls: NO_CALLS,
    contacts: CONTACTS,
    contactsByExt: indexByExt(CONTACTS),
    ...over,
  };
}

const ringing = (id: number, from = "3044"): CallEvent => ({
  name: "DeliveredEvent",
  data: { callId: id, deviceId: ME, alertingDevice: ME, callingDevice: from, calledDevice: ME },
  at: T0,
});

Deno.test("web live: presence changes the one contact it names, by jid, else by ext", () => {
  const next = applyPresence(CONTACTS, { jid: "3", ext: "3099", status: "Away", note: "lunch" });
  assert.notEqual(next, CONTACTS);
  assert.deepEqual(next[2], { ...CONTACTS[2], status: "Away", note: "lunch" });
  assert.equal(next[0], CONTACTS[0], "other contacts stay the same objects");
  assert.equal(next[1], CONTACTS[1]);
  assert.equal(CONTACTS[2].status, "Available", "nothing mutated");
  // By extension when the jid is unknown; the note cleared with "".
  const byExt = applyPresence(next, { jid: "", ext: "3099", status: "Available", note: "" });
  assert.deepEqual(byExt[2], CONTACTS[2]);
  // Nothing to change, or nobody to change: the same array.
  assert.equal(applyPresence(CONTACTS, { jid: "3", ext: "3099", status: "Available" }), CONTACTS);
  assert.equal(applyPresence(CONTACTS, { jid: "9", ext: "9999", status: "Away" }), CONTACTS);
  assert.equal(applyPresence(CONTACTS, { status: "Away" }), CONTACTS);
  assert.equal(applyPresence(CONTACTS, { jid: 3, ext: 3099, status: "Away" }), CONTACTS);
});

Deno.test("web live: address-book changes keep the list sorted by extension as the server does", () => {
  const anna = { jid: "4", ext: "3050", firstName: "Anna", lastName: "New" };
  const added = applyContactChange(CONTACTS, { action: "added", contact: anna });
  assert.deepEqual(added.map((c) => c.ext), ["3044", "3050", "3095", "3099"]);
  const moved = applyContactChange(added, {
    action: "updated",
    contact: { ...anna, ext: "4000", lastName: "Moved" },
  });
  assert.deepEqual(moved.map((c) => c.ext), ["3044", "3095", "3099", "4000"]);
  assert.equal(moved[3].lastName, "Moved");
  const removed = applyContactChange(moved, { action: "removed", contact: { jid: "4", ext: "" } });
  assert.deepEqual(removed, CONTACTS);
  // Malformed or unknown changes change nothing.
  for (const bad of [{}, { action: "added" }, { action: "renamed", contact: anna }]) {
    assert.equal(applyContactChange(CONTACTS, bad), CONTACTS, JSON.stringify(bad));
  }
  assert.equal(
    applyContactChange(CONTACTS, { action: "removed", contact: { jid: "9", ext: "1" } }),
    CONTACTS,
  );
  for (const [a, b] of [["9", "10"], ["3095", "3095"], ["a", "10"], ["b", "a"], ["10", "9"]]) {
    assert.equal(Math.sign(compareExt(a, b)), Math.sign(serverCompareExt(a, b)), `${a} ${b}`);
  }
});

Deno.test("web live: current calls from the server become calls in the right state", () => {
  const calls = restoreCalls(
    NO_CALLS,
    [
      {
        callId: 1,
        deviceId: ME,
        state: "alerting",
        direction: "incoming",
        peer: "3044",
        since: 100,
      },
      { callId: 2, deviceId: ME, state: "alerting", direction: "outgoing", peer: "3099" },
      {
        callId: 3,
        deviceId: ME,
        state: "connected",
        direction: "outgoing",
        peer: "+1415",
        peerName: "Acme",
        since: 200,
      },
      { callId: 4, deviceId: ME, state: "held", direction: "incoming", peer: "3044", since: 300 },
      { callId: 5, deviceId: ME, state: "initiated", direction: "outgoing", peer: "3099" },
      // Skipped: another device, no id, unknown state.
      { callId: 6, deviceId: "3044", state: "connected", direction: "incoming", peer: "1" },
      { deviceId: ME, state: "connected", direction: "incoming", peer: "1" },
      { callId: 7, deviceId: ME, state: "parked", direction: "incoming", peer: "1" },
    ],
    ME,
    T0,
  );
  const view = [...calls.values()].map((c) => [c.id, c.state, c.direction, c.remote]);
  assert.deepEqual(view, [
    [1, "ringing", "in", "3044"],
    [2, "delivered", "out", "3099"],
    [3, "established", "out", "+1415"],
    [4, "held", "in", "3044"],
    [5, "originated", "out", "3099"],
  ]);
  assert.equal(calls.get(1)!.since, 100_000);
  assert.equal(calls.get(2)!.since, T0, "no since: now");
  assert.equal(calls.get(3)!.remoteName, "Acme");
  assert.equal(calls.get(3)!.connectedAt, 200_000, "the clock counts from the call's start");
  assert.equal(calls.get(1)!.connectedAt, 0);
  assert.deepEqual(calls.get(4)!.history, ["held"]);
  // Events after the list apply as usual.
  const answered = applyCallEvent(calls, {
    name: "EstablishedEvent",
    data: { callId: 1, deviceId: ME, answeringDevice: ME, callingDevice: "3044" },
    at: T0 + 1000,
  }, ME);
  assert.equal(answered.get(1)!.state, "established");
});

Deno.test("web live: a list (snapshot) ends calls it lacks, keeps tombstones, changes nothing twice", () => {
  let calls = [ringing(1), ringing(2)].reduce((acc, e) => applyCallEvent(acc, e, ME), NO_CALLS);
  calls = applyCallEvent(calls, {
    name: "ConnectionClearedEvent",
    data: { callId: 2, deviceId: ME },
    at: T0,
  }, ME);
  const list = [
    { callId: 1, deviceId: ME, state: "connected", direction: "incoming", peer: "3044" },
    // Call 2 ended here: the server's late word does not bring it back.
    { callId: 2, deviceId: ME, state: "alerting", direction: "incoming", peer: "3044" },
  ] as const;
  const next = restoreCalls(calls, list, ME, T0 + 5000);
  assert.deepEqual(next.get(1)!.history, ["ringing", "established"]);
  assert.equal(next.get(1)!.connectedAt, T0 + 5000, "seen ringing, now connected: from now");
  assert.equal(next.get(2)!.state, "cleared");
  assert.equal(restoreCalls(next, list, ME, T0 + 6000), next, "same list again: no change");
  // A call missing from the list ended while the events were missed.
  const gone = restoreCalls(next, [], ME, T0 + 7000);
  assert.equal(gone.get(1)!.state, "cleared");
  assert.equal(gone.get(1)!.endedAt, T0 + 7000);
  assert.equal(restoreCalls(gone, [], ME, T0 + 8000), gone);
  // Held by the other side stays that way when the server just says "held".
  const remote = applyCallEvent(next, {
    name: "HeldEvent",
    data: { callId: 1, deviceId: ME, holdingDevice: "3044" },
    at: T0,
  }, ME);
  const again = restoreCalls(remote, [{ ...list[0], state: "held" }], ME, T0);
  assert.equal(again.get(1)!.state, "remote-held");
});

Deno.test("web live: the stream reducer routes calls, presence, contacts and snapshots", () => {
  assert.deepEqual(STREAM_EVENTS.slice(-3), ["presence", "contact", "snapshot"]);
  let s = live();
  s = applyStreamEvent(s, ringing(7));
  assert.equal(s.calls.get(7)!.state, "ringing");
  const before = s;
  s = applyStreamEvent(s, {
    name: "presence",
    data: { jid: "3", ext: "3099", status: "Busy", note: "" },
    at: T0,
  });
  assert.equal(s.contactsByExt.get("3099")!.status, "Busy", "the index follows");
  assert.equal(s.calls, before.calls);
  s = applyStreamEvent(s, {
    name: "contact",
    data: { action: "removed", contact: { jid: "1", ext: "3044" } },
    at: T0,
  });
  assert.equal(s.contactsByExt.has("3044"), false);
  s = applyStreamEvent(s, {
    name: "snapshot",
    data: {
      calls: [{ callId: 8, deviceId: ME, state: "connected", direction: "outgoing", peer: "3099" }],
      presence: [{ jid: "3", ext: "3099", status: "OnThePhone", note: "" }, null, 5],
    },
    at: T0 + 1000,
  });
  assert.equal(s.calls.get(7)!.state, "cleared", "not in the snapshot: ended meanwhile");
  assert.equal(s.calls.get(8)!.state, "established");
  assert.equal(s.contactsByExt.get("3099")!.status, "OnThePhone");
  // Events that change nothing return the same state; junk snapshots too.
  assert.equal(applyStreamEvent(s, { name: "presence", data: {}, at: T0 }), s);
  assert.equal(applyStreamEvent(s, { name: "NoSuchEvent", data: { callId: 8 }, at: T0 }), s);
  const emptied = applyStreamEvent(s, { name: "snapshot", data: { calls: "x" }, at: T0 });
  assert.equal(emptied.calls.get(8)!.state, "cleared");
});

Deno.test("web live: Decline on ringing calls, Complete transfer on a held call beside another", () => {
  let calls: Calls = applyCallEvent(NO_CALLS, ringing(1), ME);
  assert.deepEqual(callActions(calls.get(1)!, calls), ["answer", "decline"]);
  calls = restoreCalls(
    calls,
    [
      { callId: 1, deviceId: ME, state: "held", direction: "incoming", peer: "3044" },
    ],
    ME,
    T0,
  );
  assert.deepEqual(callActions(calls.get(1)!, calls), ["retrieve", "transfer", "hangup"]);
  calls = addPlacedCall(calls, { callId: 2, to: "3099", at: T0 });
  assert.deepEqual(callActions(calls.get(1)!, calls), [
    "retrieve",
    "complete",
    "transfer",
    "hangup",
  ]);
  assert.deepEqual(callActions(calls.get(2)!, calls), ["hangup"]);
});

Deno.test("web live: tabs — one view on a phone, calls beside the chosen one when wide", () => {
  assert.deepEqual(tabsOffered(false), TABS);
  assert.deepEqual(tabsOffered(true), ["history", "voicemail", "contacts"]);
  assert.ok(isShown("calls", { tab: "contacts", wide: true }));
  assert.ok(!isShown("calls", { tab: "contacts", wide: false }));
  assert.ok(isShown("contacts", { tab: "contacts", wide: false }));
  assert.ok(!isShown("history", { tab: "contacts", wide: true }));
  const all = tabsOffered(false);
  assert.equal(nextTab(all, "calls", "ArrowRight"), "history");
  assert.equal(nextTab(all, "calls", "ArrowLeft"), "contacts", "wraps");
  assert.equal(nextTab(all, "contacts", "ArrowRight"), "calls");
  assert.equal(nextTab(all, "voicemail", "Home"), "calls");
  assert.equal(nextTab(all, "history", "End"), "contacts");
  assert.equal(nextTab(all, "history", "Enter"), undefined);
  assert.equal(nextTab(tabsOffered(true), "calls", "ArrowRight"), "voicemail");
});

Deno.test("web live: presence labels and colours for what the MX reports", () => {
  assert.deepEqual(PRESENCE_CHOICES.map((c) => c.status), [
    "Available",
    "Away",
    "Busy",
    "DoNotDisturb",
  ]);
  const cases: [string | undefined, string, string][] = [
    ["Available", "on", "Available"],
    ["Away", "away", "Away"],
    ["Busy", "busy", "Busy"],
    ["DoNotDisturb", "busy", "Do not disturb"],
    ["OnThePhone", "busy", "On the phone"],
    ["LoggedOut", "off", "Offline"],
    ["", "off", "Offline"],
    [undefined, "off", "Offline"],
    ["InAMeeting", "busy", "In a meeting"],
    ["Vacation", "busy", "Vacation"],
  ];
  for (const [status, cls, label] of cases) {
    assert.equal(presenceClass(status), cls, String(status));
    assert.equal(presenceLabel(status), label, String(status));
  }
});

Deno.test("web live: call-history entries — who, the number to call back, when, how long", () => {
  const records = [
    {
      missed: true,
      direction: "incoming",
      recordId: 376,
      disconnect: 1_501_101_500,
      callingPartyNo: "3044",
      originalCalledPartyNo: "3095",
      firstName: "Peter",
      lastName: "Hyde",
      ext: "3044",
    },
    {
      direction: "outgoing",
      recordId: 375,
      connect: 1_501_101_426,
      disconnect: 1_501_101_436,
      callingPartyNo: "3095",
      originalCalledPartyNo: "+14155550123",
    },
    {
      direction: "incoming",
      recordId: 377,
      connect: 1_501_101_426,
      disconnect: 1_501_101_400,
      callingPartyNo: "+79031744445",
      serviceName: "Sales",
    },
    null,
    "junk",
  ];
  const entries = historyEntries(records);
  assert.deepEqual(entries.map((e) => e.id), ["376", "377", "375"], "newest first");
  const [missed, viaService, out] = entries;
  assert.deepEqual(missed, {
    id: "376",
    direction: "in",
    missed: true,
    peer: "3044",
    name: "Peter Hyde",
    service: "",
    at: 1_501_101_500_000,
    seconds: 0,
  });
  assert.equal(out.peer, "+14155550123", "outgoing: the number dialled");
  assert.equal(out.seconds, 10);
  assert.equal(out.direction, "out");
  assert.equal(viaService.peer, "+79031744445", "incoming: the caller");
  assert.equal(viaService.seconds, 0, "a disconnect before the connect is no duration");
  assert.equal(viaService.service, "Sales");
  assert.equal(historyEntry(undefined), undefined);
});

Deno.test("web live: the voicemail list — newest first, unread count, changes, caller", () => {
  const list = sortVoicemails([
    { id: "80", from: "3099", fromName: "Maxim Donchenko", received: 100, read: true },
    { id: "81", from: "3044", received: 300 },
    { id: "82", from: "+1415", callerName: "ACME", received: 200, note: "call back" },
    { from: "no id" },
    7,
  ]);
  assert.deepEqual(list.map((v) => v.id), ["81", "82", "80"]);
  assert.equal(unreadCount(list), 2);
  const read = withVoicemailChange(list, "81", { read: true, note: "done" });
  assert.equal(unreadCount(read), 1);
  assert.equal(read[0].note, "done");
  assert.equal(list[0].read, undefined, "nothing mutated");
  assert.equal(withVoicemailChange(list, "99", { read: true }), list);
  assert.deepEqual(withoutVoicemail(list, "82").map((v) => v.id), ["81", "80"]);
  assert.equal(withoutVoicemail(list, "99"), list);
  assert.deepEqual(callerOf(list[1]), { number: "+1415", name: "ACME" });
  assert.deepEqual(callerOf(list[2]), { number: "3099", name: "Maxim Donchenko" });
});

Deno.test("web live: list times — today the time alone, then Yesterday, then the date", () => {
  const now = new Date(2026, 5, 10, 15, 0).getTime();
  const time = (ms: number) =>
    new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const today = new Date(2026, 5, 10, 9, 5).getTime();
  assert.equal(when(today, now), time(today));
  const yesterday = new Date(2026, 5, 9, 23, 59).getTime();
  assert.equal(when(yesterday, now), `Yesterday ${time(yesterday)}`);
  const earlier = new Date(2026, 4, 1, 8, 0).getTime();
  assert.ok(when(earlier, now).endsWith(time(earlier)));
  assert.ok(!when(earlier, now).includes("2026"), "this year: no year");
  assert.ok(when(new Date(2025, 4, 1).getTime(), now).includes("2025"));
});

Deno.test("web live: the reducer folds the real stream — contact changes and a snapshot after a gap", async () => {
  await withHarness(async (h) => {
    const token = await flexLogin(h.url);
    const get = async (path: string) => {
      const r = await fetch(`${h.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200, path);
      return await r.json();
    };
    const { contacts } = await get("/api/contacts");
    let s: LiveState = live({ contacts, contactsByExt: indexByExt(contacts) });
    const open = (lastEventId?: string) =>
      fetch(`${h.url}/api/events?access_token=${token}`, {
        headers: {
          Accept: "text/event-stream",
          ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
        },
      });
    const fold = (e: { event: string; data: string }) => {
      s = applyStreamEvent(s, { name: e.event, data: JSON.parse(e.data), at: Date.now() });
    };

    const sse = new SseReader(await open());
    try {
      // An address-book change on the MX: the list follows, as /api/contacts does.
      h.sim.updateUser("43884852031096113", { presence: "Away", lastName: "Donchenko-Smith" });
      for (const e of await sse.until("contact")) fold(e);
      assert.equal(s.contactsByExt.get("3099")!.status, "Away");
      assert.equal(s.contactsByExt.get("3099")!.lastName, "Donchenko-Smith");
      const fresh = await get("/api/contacts");
      assert.deepEqual(s.contacts, fresh.contacts, "the stream and /api/contacts agree");

      // A call rings and is answered.
      const id = h.sim.incomingCall({ from: "+14155550123", to: ME });
      for (const e of await sse.until("DeliveredEvent")) fold(e);
      await fetch(`${h.url}/api/calls/${id}/answer`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      }).then((r) => r.body?.cancel());
      for (const e of await sse.until("EstablishedEvent")) fold(e);
      assert.equal(s.calls.get(id)!.state, "established");
    } finally {
      await sse.cancel();
    }

    // A page that lost everything resumes with an id the server cannot replay from: the
    // snapshot alone restores the call and the presence.
    s = live({ contacts, contactsByExt: indexByExt(contacts) });
    const resumed = new SseReader(await open("elsewhere.42"));
    try {
      const first = await resumed.next();
      assert.equal(first.event, "snapshot");
      fold(first);
      const call = [...s.calls.values()].find((c) => c.remote === "+14155550123");
      assert.ok(call, JSON.stringify([...s.calls.values()]));
      assert.equal(call.state, "established");
      assert.equal(call.direction, "in");
      assert.equal(s.contactsByExt.get("3099")!.status, "Away");
    } finally {
      await resumed.cancel();
    }
  }, { sim: { answerAfterMs: -1 } });
});
