/**
 * Derives the push lifecycle of calls (issue 14) from the call events a server session sees
 * on a monitored extension: `incoming` when a call starts ringing there, then exactly one of
 * `answered`, `answered_elsewhere`, `cancelled` or `missed`. Pure: no I/O and no clock of
 * its own; the caller passes each event with the time it arrived.
 *
 * Rules, for a call ringing at the monitored extension `E` (state kept per extension and
 * call id; events of calls that never rang at `E`, e.g. its own outgoing calls or calls
 * forwarded before ringing, produce nothing):
 *
 * | event seen on `E` | lifecycle | reason |
 * |---|---|---|
 * | DeliveredEvent, alerting (else called) device `E`, caller not `E` | `incoming` | |
 * | EstablishedEvent, answering device `E` (or none named) | `answered` | |
 * | EstablishedEvent, answering device someone else | `answered_elsewhere` | `picked_up` |
 * | DivertedEvent away from `E`, cause `callPickup` | `answered_elsewhere` | `picked_up` |
 * | DivertedEvent away from `E`, cause `redirected` (DeflectCall) | `answered_elsewhere` | `redirected` |
 * | TransferredEvent to someone else | `answered_elsewhere` | `transferred` |
 * | DivertedEvent away from `E`, cause `callForwardNoAnswer` / `noAnswer` | `missed` | `no_answer` |
 * | DivertedEvent away from `E`, cause `callForwardBusy` / `busy` | `missed` | `busy` |
 * | DivertedEvent away from `E`, any other cause | `missed` | `forwarded` |
 * | ConnectionClearedEvent released by the caller | `cancelled` | `caller_hung_up` |
 * | ConnectionClearedEvent released by `E` | `cancelled` | `declined` |
 * | ConnectionClearedEvent released by anyone else | `missed` | `no_answer` |
 *
 * Later events of a finished call are ignored; so are repeated DeliveredEvents. Entries are
 * forgotten {@link CallLifecycleOptions.maxAgeMs} after the call started ringing.
 *
 * @module
 */
import { type CallEvent, pushPayload } from "../csta/mod.ts";
import type { PushEvent } from "../push/types.ts";

/** One lifecycle step for the users of one extension. */
export interface LifecycleStep {
  /** What happened. */
  event: PushEvent;
  /** Why, for the follow-ups that have several causes (see the module table). */
  reason?: string;
  /** Identifies the call across events and processes: `globalCallId`, else the call id. */
  callKey: string;
  /** The push payload: the seed's incoming fields, `time` of this step, `event`, `reason`. */
  payload: Record<string, unknown>;
  /** When the MX event arrived (ms since the epoch), as passed to {@link CallLifecycle.next}. */
  at: number;
}

/** Options of {@link CallLifecycle}. */
export interface CallLifecycleOptions {
  /** Forget a call this long after it started ringing; default 1 hour. */
  maxAgeMs?: number;
}

interface Entry {
  /** The incoming payload without `time` and `event`. */
  base: Record<string, unknown>;
  callKey: string;
  caller: string;
  startedAt: number;
  done: boolean;
}

const MISSED_NO_ANSWER = new Set(["callForwardNoAnswer", "noAnswer"]);
const MISSED_BUSY = new Set(["callForwardBusy", "busy"]);

/**
 * Lifecycle state for the extensions of one MX.
 *
 * @example
 * ```ts
 * const life = new CallLifecycle();
 * mx.onCallEvent((ext, ev) => {
 *   const step = life.next(ext, ev, Date.now());
 *   if (step) console.log(ext, step.event, step.reason);
 * });
 * ```
 */
export class CallLifecycle {
  #calls = new Map<string, Entry>();
  #maxAgeMs: number;
  #nextSweep = 0;

  /** @param opts see {@link CallLifecycleOptions} */
  constructor(opts: CallLifecycleOptions = {}) {
    this.#maxAgeMs = opts.maxAgeMs ?? 60 * 60 * 1000;
  }

  /** Calls tracked (ringing or finished and not yet forgotten). */
  get size(): number {
    return this.#calls.size;
  }

  /**
   * Feeds one call event seen on the monitor of `ext`; returns the lifecycle step it
   * implies, if any.
   *
   * @param at when the event arrived, ms since the epoch
   */
  next(ext: string, ev: CallEvent, at: number): LifecycleStep | undefined {
    this.#sweep(at);
    const d = ev.data;
    const key = `${ext}|${ev.callId}`;
    const entry = this.#calls.get(key);
    if (ev.name === "DeliveredEvent") {
      if (entry) return undefined;
      const alerting = str(d.alertingDevice) || str(d.calledDevice);
      const caller = str(d.callingDevice);
      if (alerting !== ext || caller === ext) return undefined;
      const { time: _time, ...base } = pushPayload(ev, 0);
      const callKey = str(d.globalCallId) || String(ev.callId);
      this.#calls.set(key, { base, callKey, caller, startedAt: at, done: false });
      return this.#step(this.#calls.get(key)!, "incoming", undefined, at);
    }
    if (!entry || entry.done) return undefined;
    const outcome = classify(ext, entry, ev);
    if (!outcome) return undefined;
    entry.done = true;
    return this.#step(entry, outcome[0], outcome[1], at);
  }

  #step(e: Entry, event: PushEvent, reason: string | undefined, at: number): LifecycleStep {
    const payload: Record<string, unknown> = {
      ...e.base,
      time: Math.floor(at / 1000),
      event,
    };
    if (reason) payload.reason = reason;
    return { event, reason, callKey: e.callKey, payload, at };
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + Math.min(this.#maxAgeMs, 60_000);
    for (const [k, e] of this.#calls) {
      if (now - e.startedAt >= this.#maxAgeMs) this.#calls.delete(k);
    }
  }
}

/** The outcome a non-Delivered event means for a call ringing at `ext`, if it ends it. */
function classify(
  ext: string,
  e: Entry,
  ev: CallEvent,
): [PushEvent, string | undefined] | undefined {
  const d = ev.data;
  const cause = str(d.cause);
  switch (ev.name) {
    case "EstablishedEvent": {
      const by = str(d.answeringDevice);
      return !by || by === ext ? ["answered", undefined] : ["answered_elsewhere", "picked_up"];
    }
    case "DivertedEvent": {
      const to = str(d.newDestination);
      const from = str(d.divertingDevice);
      if (to === ext || (from && from !== ext)) return undefined;
      if (cause === "callPickup") return ["answered_elsewhere", "picked_up"];
      if (cause === "redirected") return ["answered_elsewhere", "redirected"];
      if (MISSED_NO_ANSWER.has(cause)) return ["missed", "no_answer"];
      if (MISSED_BUSY.has(cause)) return ["missed", "busy"];
      return ["missed", "forwarded"];
    }
    case "TransferredEvent":
      return str(d.transferredToDevice) === ext ? undefined : ["answered_elsewhere", "transferred"];
    case "ConnectionClearedEvent": {
      const by = str(d.releasingDevice);
      if (by && by === e.caller) return ["cancelled", "caller_hung_up"];
      if (by === ext) return ["cancelled", "declined"];
      return ["missed", "no_answer"];
    }
    default:
      return undefined;
  }
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
