/**
 * Current calls per extension, built from the call events the gateway has seen: the
 * authority for `GET /api/calls` and the `snapshot` of a resumed event stream.
 *
 * {@link trackCall} is the state machine, a pure function of (the call as known, the
 * monitored extension, one event, now); {@link CallTracker} keeps its results per
 * extension. Rules, for the monitored extension `ext`:
 *
 * | event | effect |
 * |---|---|
 * | ServiceInitiatedEvent, OriginatedEvent | an outgoing call, `initiated` (peer: the called device) |
 * | NetworkReachedEvent | outgoing; the peer if still unknown |
 * | DeliveredEvent | ringing here (`alertingDevice` or `calledDevice` is `ext`): incoming, `alerting`; else the other end rings: `alerting` (an outgoing call, unless known otherwise) |
 * | EstablishedEvent | answered by `ext` or `ext` called: `connected`; answered by another device: the call was picked up elsewhere and leaves |
 * | HeldEvent | `held` when `ext` holds it (the other side holding changes nothing) |
 * | RetrievedEvent | `connected` |
 * | DivertedEvent | diverted away from `ext`: leaves; an outgoing call diverted at the far end: new peer |
 * | ConnectionClearedEvent, FailedEvent, TransferredEvent | leaves (after a transfer the remaining party's call continues under the id the MX gives it, with its own events) |
 *
 * `since` is when the gateway saw the call's first event (the MX's events carry no time).
 *
 * @example
 * ```ts
 * const calls = new CallTracker();
 * calls.apply("3095", ev); // e.g. a DeliveredEvent ringing 3095
 * calls.list("3095"); // [{ callId: 39, deviceId: "3095", state: "alerting", direction: "incoming", … }]
 * ```
 *
 * @module
 */
import type { CallEvent } from "../csta/mod.ts";

/** Call states of `GET /api/calls`. */
export type TrackedState = "initiated" | "alerting" | "connected" | "held";

/** One current call of an extension. */
export interface TrackedCall {
  /** MX call id. */
  callId: number;
  /** The monitored extension (the user's leg). */
  deviceId: string;
  /** `initiated` dialling, `alerting` ringing (here or at the far end), `connected`, `held`. */
  state: TrackedState;
  /** Who called. */
  direction: "incoming" | "outgoing";
  /** The other party's number or extension (`""` while unknown). */
  peer: string;
  /** The other party's name as the MX's events gave it (`""` when none). */
  peerName: string;
  /** Unix seconds of the first event seen. */
  since: number;
}

function s(d: Record<string, unknown>, k: string): string {
  const v = d[k];
  return typeof v === "string" ? v : "";
}

/** A display name only when it says more than the number. */
function nameOf(name: string, number: string): string {
  return name && name !== number ? name : "";
}

/**
 * The call after one event: the updated call, `undefined` when it is not (or no longer) a
 * current call of `ext`, or `prev` itself when nothing changed.
 *
 * @param prev the call as known before (undefined: not known)
 * @param ext the monitored extension the event was routed to
 * @param ev the event
 * @param now Unix seconds (for `since` of a new call)
 *
 * @example
 * ```ts
 * const ringing = trackCall(undefined, "3095", delivered, 1700000000);
 * trackCall(ringing, "3095", established, 1700000003)?.state; // "connected"
 * ```
 */
export function trackCall(
  prev: TrackedCall | undefined,
  ext: string,
  ev: CallEvent,
  now: number,
): TrackedCall | undefined {
  const d = ev.data;
  const base = (direction: TrackedCall["direction"], peer: string): TrackedCall =>
    prev ?? {
      callId: ev.callId,
      deviceId: ext,
      state: "initiated",
      direction,
      peer,
      peerName: "",
      since: now,
    };
  const change = (c: TrackedCall, patch: Partial<TrackedCall>): TrackedCall => {
    for (const k of Object.keys(patch) as (keyof TrackedCall)[]) {
      if (patch[k] !== c[k]) return { ...c, ...patch };
    }
    return c;
  };
  switch (ev.name) {
    case "ServiceInitiatedEvent":
      return prev ?? base("outgoing", "");
    case "OriginatedEvent": {
      const c = base("outgoing", s(d, "calledDevice"));
      return c.peer ? c : change(c, { peer: s(d, "calledDevice") });
    }
    case "NetworkReachedEvent": {
      const c = base("outgoing", s(d, "calledDevice"));
      return c.peer ? c : change(c, { peer: s(d, "calledDevice") });
    }
    case "DeliveredEvent": {
      const alerting = s(d, "alertingDevice"), calling = s(d, "callingDevice");
      const ringsHere = alerting === ext ||
        (alerting === "" && s(d, "calledDevice") === ext && calling !== ext);
      if (ringsHere) {
        const c = base("incoming", calling);
        return change(c, { state: "alerting", peer: c.peer || calling });
      }
      if (calling !== ext && !prev) return undefined; // not about this extension
      const c = base("outgoing", alerting || s(d, "calledDevice"));
      // The far end rings: the one ringing is the peer now (it may have been diverted).
      return change(c, {
        state: c.state === "initiated" ? "alerting" : c.state,
        peer: c.direction === "outgoing" ? alerting || c.peer : c.peer,
      });
    }
    case "EstablishedEvent": {
      const answering = s(d, "answeringDevice"), calling = s(d, "callingDevice");
      if (answering === ext) {
        const c = base(calling === ext ? "outgoing" : "incoming", calling);
        return change(c, {
          state: "connected",
          peer: c.peer || calling,
          peerName: c.peerName || nameOf(s(d, "callingDisplayName"), c.peer || calling),
        });
      }
      if (calling === ext) {
        const c = base("outgoing", answering);
        return change(c, {
          state: "connected",
          peer: answering || c.peer,
          peerName: nameOf(s(d, "answeringDisplayName"), answering || c.peer) || c.peerName,
        });
      }
      // Answered by another phone (a group call, a pickup): it no longer rings here.
      return undefined;
    }
    case "HeldEvent":
      if (!prev) return undefined;
      return s(d, "holdingDevice") === ext || s(d, "holdingDevice") === ""
        ? change(prev, { state: "held" })
        : prev;
    case "RetrievedEvent":
      return prev ? change(prev, { state: "connected" }) : undefined;
    case "DivertedEvent": {
      if (s(d, "divertingDevice") === ext && s(d, "newDestination") !== ext) return undefined;
      if (prev?.direction === "outgoing" && s(d, "newDestination")) {
        return change(prev, { peer: s(d, "newDestination"), peerName: "" });
      }
      return prev;
    }
    case "ConnectionClearedEvent":
    case "FailedEvent":
    case "TransferredEvent":
      return undefined;
    default:
      return prev;
  }
}

/**
 * The current calls of every monitored extension.
 *
 * @example
 * ```ts
 * const calls = new CallTracker();
 * mx.onCallEvent((ext, ev) => calls.apply(ext, ev));
 * calls.list("3095");
 * ```
 */
export class CallTracker {
  #byExt = new Map<string, Map<number, TrackedCall>>();
  #now: () => number;

  /** @param now clock in Unix seconds; default from `Date.now` */
  constructor(now: () => number = () => Math.floor(Date.now() / 1000)) {
    this.#now = now;
  }

  /** Applies one event routed to `ext`; returns whether that extension's calls changed. */
  apply(ext: string, ev: CallEvent): boolean {
    // An event without a call id (malformed, or RecordingStateEvent-style) names no call.
    if (!(ev.callId > 0)) return false;
    const calls = this.#byExt.get(ext);
    const prev = calls?.get(ev.callId);
    const next = trackCall(prev, ext, ev, this.#now());
    if (next === prev) return false;
    if (next) {
      if (calls) calls.set(ev.callId, next);
      else this.#byExt.set(ext, new Map([[ev.callId, next]]));
    } else {
      calls!.delete(ev.callId);
      if (calls!.size === 0) this.#byExt.delete(ext);
    }
    return true;
  }

  /** The current calls of `ext`, oldest first. */
  list(ext: string): TrackedCall[] {
    return [...(this.#byExt.get(ext)?.values() ?? [])];
  }

  /** One call of `ext`. */
  get(ext: string, callId: number): TrackedCall | undefined {
    return this.#byExt.get(ext)?.get(callId);
  }

  /** Forgets the calls of `ext` (its monitor stopped: no more events will tell). */
  forget(ext: string): void {
    this.#byExt.delete(ext);
  }

  /** Forgets every call (the MX session was lost: calls changed unseen meanwhile). */
  clear(): void {
    this.#byExt.clear();
  }
}
