// @ts-check
/**
 * The call state machine of the web client: a pure function from the calls seen so far,
 * one call event from the server (`/api/events`) and the user's extension to the calls
 * after it. No DOM, no globals, no clock (the event carries the time it arrived), so it
 * runs unchanged in the browser and in `deno test` (tests/web_calls_test.ts).
 *
 * Calls are never mutated: a change returns a new map holding new call objects, and an
 * event that changes nothing returns the very map it was given (so `next === calls` means
 * "nothing to render"). Ended calls stay in the map with state `cleared` or `failed` as
 * tombstones, so a late reply or a replayed event cannot bring them back; the oldest are
 * dropped beyond {@link MAX_ENDED}. {@link restoreCalls} takes over the server's list of
 * current calls (page load, or a gap in the events).
 *
 * @example
 * ```js
 * import { applyCallEvent, NO_CALLS } from "./calls.js";
 * let calls = NO_CALLS;
 * calls = applyCallEvent(calls, {
 *   name: "DeliveredEvent",
 *   data: { callId: 7, deviceId: "3095", alertingDevice: "3095", callingDevice: "3044" },
 *   at: Date.now(),
 * }, "3095");
 * calls.get(7)?.state; // "ringing"
 * ```
 *
 * @module
 */

/**
 * @typedef {"originated" | "delivered" | "ringing" | "established" | "held" | "remote-held"
 *   | "cleared" | "failed"} CallState
 */

/**
 * One call as the user sees it (their own leg of it).
 * @typedef {object} Call
 * @property {number} id MX call id
 * @property {CallState} state
 * @property {readonly CallState[]} history states in order, without repeats in a row
 * @property {"in" | "out"} direction
 * @property {string} remote number of the other party ("" while unknown)
 * @property {string} remoteName display name the MX or the dialler gave ("" when none)
 * @property {string} note a line of extra information (forwarded, transferred, failed…)
 * @property {number} since when the call was first seen (ms since the epoch)
 * @property {number} connectedAt when it was first established (ms), 0 before
 * @property {number} endedAt when it was cleared or failed (ms), 0 while it lasts
 */

/** @typedef {ReadonlyMap<number, Readonly<Call>>} Calls */

/**
 * One event from the server's stream.
 * @typedef {object} CallEvent
 * @property {string} name SSE event name, e.g. `DeliveredEvent`
 * @property {Readonly<Record<string, unknown>>} data the event's JSON
 * @property {number} at when it arrived (ms since the epoch)
 */

/** Every call event the server may send (the SSE event names). */
export const CALL_EVENTS = Object.freeze([
  "OriginatedEvent",
  "DivertedEvent",
  "DeliveredEvent",
  "EstablishedEvent",
  "ConnectionClearedEvent",
  "HeldEvent",
  "RetrievedEvent",
  "TransferredEvent",
  "FailedEvent",
  "NetworkReachedEvent",
  "ServiceInitiatedEvent",
  "RecordingStateEvent",
]);

/** Ended calls kept as tombstones; older ones are forgotten. */
export const MAX_ENDED = 200;

/** No calls: the start of every session. @type {Calls} */
export const NO_CALLS = new Map();

/** @param {Readonly<Call>} c */
export function isEnded(c) {
  return c.state === "cleared" || c.state === "failed";
}

/** @param {unknown} v */
function str(v) {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : "";
}

/**
 * A draft of a call: a mutable copy that starts out as a new call when `c` is undefined.
 * @param {Readonly<Call> | undefined} c
 * @param {number} id
 * @param {number} at
 * @returns {Omit<Call, "state" | "history"> & {state: CallState | "", history: CallState[]}}
 */
function draft(c, id, at) {
  if (c) return { ...c, history: [...c.history] };
  return {
    id,
    state: "",
    history: [],
    direction: "out",
    remote: "",
    remoteName: "",
    note: "",
    since: at,
    connectedAt: 0,
    endedAt: 0,
  };
}

/** @typedef {ReturnType<typeof draft>} Draft */

/**
 * @param {Draft} c
 * @param {CallState} state
 */
function setState(c, state) {
  c.state = state;
  if (c.history[c.history.length - 1] !== state) c.history.push(state);
}

/**
 * The other party changes (or is confirmed); a new number forgets the old display name.
 * @param {Draft} c
 * @param {string} number
 * @param {string} [displayName]
 */
function setRemote(c, number, displayName = "") {
  if (number && number !== c.remote) {
    c.remote = number;
    c.remoteName = "";
  }
  if (displayName && displayName !== c.remote) c.remoteName = displayName;
}

/**
 * @param {Draft} c
 * @param {"cleared" | "failed"} state
 * @param {number} at
 */
function end(c, state, at) {
  setState(c, state);
  c.endedAt = at;
}

/**
 * Applies one call event.
 *
 * Events of another device (`deviceId` set and not `me`), without a numeric `callId`, of
 * an unknown name, for a call that already ended, or that end a call never seen return
 * `calls` itself. So does an event that says nothing about the state of a call not seen
 * before (e.g. a replayed `RecordingStateEvent`).
 *
 * @param {Calls} calls
 * @param {CallEvent} event
 * @param {string} me the user's extension
 * @returns {Calls}
 */
export function applyCallEvent(calls, event, me) {
  const d = event.data;
  const id = typeof d.callId === "number" ? d.callId : Number(str(d.callId) || NaN);
  if (!Number.isSafeInteger(id)) return calls;
  const device = str(d.deviceId);
  if (device && me && device !== me) return calls;
  const old = calls.get(id);
  if (old && isEnded(old)) return calls;
  const c = draft(old, id, event.at);
  const at = event.at;

  switch (event.name) {
    case "OriginatedEvent":
      c.direction = "out";
      setRemote(c, str(d.calledDevice));
      setState(c, "originated");
      break;
    case "ServiceInitiatedEvent":
      c.direction = "out";
      if (!c.state) setState(c, "originated");
      break;
    case "DivertedEvent": {
      const to = str(d.newDestination);
      if (!to || to === me) break;
      if (str(d.divertingDevice) === me && c.direction === "in" && c.state === "ringing") {
        // It stopped ringing here: forwarded, deflected or picked up by someone else.
        c.note = `Forwarded to ${to}`;
        end(c, "cleared", at);
        break;
      }
      c.note = `Forwarded to ${to}`;
      if (c.direction === "out") setRemote(c, to);
      break;
    }
    case "DeliveredEvent": {
      const alerting = str(d.alertingDevice), calling = str(d.callingDevice);
      const called = str(d.calledDevice);
      const incoming = alerting === me || (called === me && calling !== me);
      if (incoming && c.state !== "originated") {
        c.direction = "in";
        setRemote(c, calling);
        setState(c, "ringing");
      } else {
        c.direction = "out";
        setRemote(c, alerting || called);
        setState(c, "delivered");
      }
      break;
    }
    case "EstablishedEvent": {
      const answering = str(d.answeringDevice);
      if (c.history.length === 0) c.direction = str(d.callingDevice) === me ? "out" : "in";
      if (c.direction === "in" && c.state === "ringing" && answering && answering !== me) {
        // Rang here, answered on another phone (pickup, hunt group).
        c.note = `Answered by ${str(d.answeringDisplayName) || answering}`;
        end(c, "cleared", at);
        break;
      }
      if (c.direction === "out") {
        setRemote(c, answering || str(d.calledDevice), str(d.answeringDisplayName));
      } else {
        setRemote(c, str(d.callingDevice), str(d.callingDisplayName));
      }
      if (!c.connectedAt) c.connectedAt = at;
      setState(c, "established");
      break;
    }
    case "HeldEvent": {
      const holding = str(d.holdingDevice);
      setState(c, holding && holding !== me ? "remote-held" : "held");
      break;
    }
    case "RetrievedEvent":
      if (!c.connectedAt) c.connectedAt = at;
      setState(c, "established");
      break;
    case "TransferredEvent": {
      const to = str(d.transferredToDevice);
      if (str(d.transferringDevice) === me) {
        if (!old) return calls;
        c.note = to ? `Transferred to ${to}` : "Transferred";
        end(c, "cleared", at);
      } else if (to && to !== me) {
        setRemote(c, to);
      }
      break;
    }
    case "NetworkReachedEvent":
      if (!c.note) c.note = "Outside line";
      break;
    case "RecordingStateEvent":
      if (d.recIsActive === true) c.note = "Recording";
      else if (c.note === "Recording") c.note = "";
      break;
    case "ConnectionClearedEvent":
      if (!old) return calls;
      end(c, "cleared", at);
      break;
    case "FailedEvent": {
      if (!old) return calls;
      const cause = str(d.cause);
      if (cause) c.note = `Failed: ${cause}`;
      end(c, "failed", at);
      break;
    }
    default:
      return calls;
  }
  if (!c.state) return calls;
  const next = /** @type {Call} */ (c);
  if (old && sameCall(old, next)) return calls;
  return withCall(calls, next);
}

/**
 * A call the user just placed (`POST /api/call` answered with its id). Events usually come
 * first; when they have not, the call shows at once as `originated`. A call already known
 * (or already ended) is left alone.
 *
 * @example
 * ```js
 * calls = addPlacedCall(calls, { callId: 12, to: "3099", name: "Maxim", at: Date.now() });
 * ```
 * @param {Calls} calls
 * @param {{callId: number, to: string, name?: string, at: number}} placed
 * @returns {Calls}
 */
export function addPlacedCall(calls, placed) {
  const { callId, to, name = "", at } = placed;
  if (!Number.isSafeInteger(callId) || calls.has(callId)) return calls;
  const c = draft(undefined, callId, at);
  c.direction = "out";
  setRemote(c, to, name);
  setState(c, "originated");
  return withCall(calls, /** @type {Call} */ (c));
}

/**
 * A call the server reports as current (`GET /api/calls`, or the `calls` of a snapshot).
 * @typedef {object} CurrentCall
 * @property {number} callId
 * @property {string} [deviceId]
 * @property {"initiated" | "alerting" | "connected" | "held"} state
 * @property {"incoming" | "outgoing"} direction
 * @property {string} [peer] the other party's number or extension
 * @property {string} [peerName]
 * @property {number} [since] the call's start, Unix seconds
 */

/**
 * The client's state for a server state: `alerting` rings here when incoming, else the
 * other side rings; "" for an unknown state.
 * @param {unknown} state
 * @param {boolean} incoming
 * @returns {CallState | ""}
 */
function stateOf(state, incoming) {
  switch (state) {
    case "initiated":
      return "originated";
    case "alerting":
      return incoming ? "ringing" : "delivered";
    case "connected":
      return "established";
    case "held":
      return "held";
    default:
      return "";
  }
}

/**
 * Takes over the server's list of the user's current calls (after a page load, or a
 * stream's `snapshot` after a gap in the events): each listed call is added or brought to
 * the listed state, and every call still live here but absent from the list ended while
 * the events were missed (it is cleared at `at`). Entries of another device, without a
 * numeric `callId` or with an unknown state are skipped; ended calls stay ended. A list
 * that changes nothing returns `calls` itself.
 *
 * A new call restored as connected or held counts its clock from the call's start
 * (`since`), a known one from `at`: when it was answered is not in the list.
 *
 * @example
 * ```js
 * calls = restoreCalls(calls, [{ callId: 7, state: "connected", direction: "incoming",
 *   peer: "3044", since: 1700000000 }], "3095", Date.now());
 * calls.get(7)?.state; // "established"
 * ```
 * @param {Calls} calls
 * @param {readonly Readonly<Record<string, unknown>>[]} list {@link CurrentCall}s as the
 *   server sent them (anything else in them is skipped)
 * @param {string} me the user's extension
 * @param {number} at now (ms)
 * @returns {Calls}
 */
export function restoreCalls(calls, list, me, at) {
  let next = calls;
  /** @type {Set<number>} */
  const listed = new Set();
  for (const cur of list) {
    const id = Number(cur.callId);
    const device = str(cur.deviceId);
    if (!Number.isSafeInteger(id) || (device && me && device !== me)) continue;
    const incoming = cur.direction === "incoming";
    const state = stateOf(cur.state, incoming);
    if (!state) continue;
    listed.add(id);
    const old = next.get(id);
    if (old && isEnded(old)) continue;
    const since = Number(cur.since) > 0 ? Number(cur.since) * 1000 : at;
    const c = draft(old, id, since);
    c.direction = incoming ? "in" : "out";
    setRemote(c, str(cur.peer), str(cur.peerName));
    // When it was answered is not in the list: a call seen before was answered while the
    // events were missed (now is the best guess), a new one counts from its start.
    if ((state === "established" || state === "held") && !c.connectedAt) {
      c.connectedAt = old ? at : since;
    }
    // Held by the other side is more than the server says; keep it.
    if (!(state === "held" && c.state === "remote-held")) setState(c, state);
    const call = /** @type {Call} */ (c);
    if (!old || !sameCall(old, call)) next = withCall(next, call);
  }
  for (const c of next.values()) {
    if (isEnded(c) || listed.has(c.id)) continue;
    const d = draft(c, c.id, at);
    end(d, "cleared", at);
    next = withCall(next, /** @type {Call} */ (d));
  }
  return next;
}

/**
 * @param {Readonly<Call>} a
 * @param {Readonly<Call>} b
 */
function sameCall(a, b) {
  return a.state === b.state && a.history.length === b.history.length &&
    a.direction === b.direction && a.remote === b.remote && a.remoteName === b.remoteName &&
    a.note === b.note && a.connectedAt === b.connectedAt && a.endedAt === b.endedAt;
}

/**
 * A copy of `calls` with `c` set, at its old place (or last), without the oldest tombstones
 * beyond {@link MAX_ENDED}.
 * @param {Calls} calls
 * @param {Call} c
 * @returns {Calls}
 */
function withCall(calls, c) {
  const next = new Map(calls);
  next.set(c.id, Object.freeze({ ...c, history: Object.freeze([...c.history]) }));
  let ended = 0;
  for (const x of next.values()) if (isEnded(x)) ended++;
  for (const [id, x] of next) {
    if (ended <= MAX_ENDED) break;
    if (isEnded(x)) {
      next.delete(id);
      ended--;
    }
  }
  return next;
}

/**
 * What can be done with a call; `decline` is a hang-up of a call ringing here, `complete`
 * connects a held call with the user's other call (a consultation transfer).
 * @typedef {"answer" | "decline" | "hold" | "retrieve" | "complete" | "transfer" | "hangup"}
 *   CallAction
 */

/** @type {Readonly<Record<CallState, readonly CallAction[]>>} */
const ACTIONS = {
  ringing: ["answer", "decline"],
  originated: ["hangup"],
  delivered: ["hangup"],
  "remote-held": ["hangup"],
  established: ["hold", "transfer", "hangup"],
  held: ["retrieve", "transfer", "hangup"],
  cleared: [],
  failed: [],
};

/** Button labels of the actions. @type {Readonly<Record<CallAction, string>>} */
export const CALL_ACTION_LABELS = Object.freeze({
  answer: "Answer",
  decline: "Decline",
  hold: "Hold",
  retrieve: "Resume",
  complete: "Complete transfer",
  transfer: "Transfer",
  hangup: "Hang up",
});

/**
 * @param {unknown} a
 * @returns {a is CallAction}
 */
export function isCallAction(a) {
  return typeof a === "string" && Object.hasOwn(CALL_ACTION_LABELS, a);
}

/**
 * What the user can do with a call in its state, in button order. A held call can also
 * be transferred to the user's other live call (`complete`), when there is one.
 * @param {Readonly<Call>} c
 * @param {Calls} [calls] all calls (for `complete`)
 * @returns {readonly CallAction[]}
 */
export function callActions(c, calls = NO_CALLS) {
  if (c.state === "held") {
    for (const other of calls.values()) {
      if (other.id !== c.id && !isEnded(other)) return HELD_WITH_OTHER;
    }
  }
  return ACTIONS[c.state];
}

/** @type {readonly CallAction[]} */
const HELD_WITH_OTHER = ["retrieve", "complete", "transfer", "hangup"];
