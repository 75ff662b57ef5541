/**
 * Call state machine of the simulated MX: creates calls, diverts them to `forwardTo`,
 * answers and clears them on timers, handles hold / retrieve / transfer / deflect, and emits
 * the CSTA events of each step to the monitors of the internal devices involved. Completed
 * calls leave call-log records for both internal parties. Also the handlers of the call
 * commands (`MakeCall`, call control and consultation transfer, mx-protocol §3.4, §3.11).
 *
 * @module
 */
import { escapeXml, intAt, textAt, type XmlElement } from "../csta/xml.ts";
import type { CallLogStore } from "./calllog.ts";
import * as ev from "./events.ts";
import type { SimSession } from "./session.ts";
import { displayName, type UserDirectory } from "./users.ts";

/** Delivers one event body to the monitors of the given extensions. */
export type EventSink = (
  name: string,
  exts: readonly string[],
  body: (ext: string) => string,
) => void;

/** A timer handle (Node typings make it an object, Deno's a number). */
export type TimerHandle = ReturnType<typeof setTimeout>;

/** Timer scheduling the engine uses, so the owner can cancel everything on close. */
export interface TimerHost {
  /** Runs `fn` after `ms`; returns a handle for {@link TimerHost.clear}. */
  set(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer. */
  clear(handle: TimerHandle | undefined): void;
}

/** Call states. */
export type CallState = "alerting" | "connected" | "held";

/** A call as the engine tracks it. */
export interface SimCall extends ev.CallView {
  /** Current state. */
  state: CallState;
  /** Unix seconds of the answer, 0 before. */
  connectedAt: number;
  /** Callback number from a preceding `iq mode="remote"`, if any. */
  callbackAddress?: string;
  /** Pending auto-answer timer. */
  answerTimer?: TimerHandle;
  /** Pending auto-hangup timer. */
  hangupTimer?: TimerHandle;
  /** Pending no-answer timer (diverts to voicemail). */
  noAnswerTimer?: TimerHandle;
}

/** Engine settings. */
export interface CallEngineOptions {
  /** MX serial number (prefix of call-log gcids). */
  sn: string;
  /** Auto-answer delay; negative = never. */
  answerAfterMs: number;
  /** Auto-clear delay after answer; 0 = never. */
  hangupAfterMs: number;
  /** An unanswered call to an internal extension goes to voicemail after this; negative = never. */
  voicemailAfterMs: number;
  /** The voicemail number calls are diverted to. */
  voicemail: string;
}

/** Result of a command that may fail with a CSTA error text. */
export type Outcome<T = void> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const fail = <T>(error: string): Outcome<T> => ({ ok: false, error });

/** Maximum forwarding hops followed (guards against forwarding loops). */
const MAX_DIVERSIONS = 5;

/** The voicemail number of the simulated MX (its mailbox access code). */
export const SIM_VOICEMAIL = "*86";

/**
 * The call engine. All methods are synchronous and emit their events before returning, so a
 * command reply queued just before them reaches the socket first.
 *
 * @example
 * ```ts
 * const calls = new CallEngine(users, callLog, monitors.fanout.bind(monitors), timers, {
 *   sn: "63022",
 *   answerAfterMs: 50,
 *   hangupAfterMs: 0,
 *   voicemailAfterMs: -1,
 *   voicemail: SIM_VOICEMAIL,
 * });
 * const c = calls.start("+15550100", "3095"); // DeliveredEvent to 3095's monitors
 * calls.clear(c, "3095"); // ConnectionClearedEvent, call-log record
 * ```
 */
export class CallEngine {
  #calls = new Map<number, SimCall>();
  #nextId = 21;
  #users: UserDirectory;
  #log: CallLogStore;
  #emit: EventSink;
  #timers: TimerHost;
  #opts: CallEngineOptions;

  /**
   * @param users the directory (to tell internal extensions from outside numbers)
   * @param log where completed calls are recorded
   * @param emit event delivery
   * @param timers timer host
   * @param opts settings
   */
  constructor(
    users: UserDirectory,
    log: CallLogStore,
    emit: EventSink,
    timers: TimerHost,
    opts: CallEngineOptions,
  ) {
    this.#users = users;
    this.#log = log;
    this.#emit = emit;
    this.#timers = timers;
    this.#opts = opts;
  }

  /** Number of calls not yet cleared. */
  get size(): number {
    return this.#calls.size;
  }

  /** The id the next call will get (replies announce it before the call starts). */
  peekNextId(): number {
    return this.#nextId;
  }

  /** A call by id. */
  get(id: number): SimCall | undefined {
    return this.#calls.get(id);
  }

  /** All calls not yet cleared. */
  all(): SimCall[] {
    return [...this.#calls.values()];
  }

  /** Changes the auto-answer / auto-hangup / voicemail delays for calls delivered from now on. */
  configure(
    o: Partial<Pick<CallEngineOptions, "answerAfterMs" | "hangupAfterMs" | "voicemailAfterMs">>,
  ): void {
    Object.assign(this.#opts, o);
  }

  #internal(n: string): boolean {
    return this.#users.byExt(n) !== undefined;
  }

  #parties(c: SimCall, ...extra: string[]): string[] {
    const out: string[] = [];
    for (const n of [c.calling, c.callee, ...extra]) {
      if (this.#internal(n) && !out.includes(n)) out.push(n);
    }
    return out;
  }

  #name(n: string): string {
    return displayName(this.#users.byExt(n), n);
  }

  /**
   * Starts a call from `calling` to `called`. Emits OriginatedEvent (when the caller is
   * internal and `originate` is not false), DivertedEvent per forwarding hop, DeliveredEvent, and schedules the answer.
   */
  start(
    calling: string,
    called: string,
    o: { callingName?: string; callbackAddress?: string; originate?: boolean } = {},
  ): SimCall {
    const id = this.#nextId++;
    const c: SimCall = {
      id,
      // Real global call ids are ~19-digit decimals; BigInt keeps them exact.
      globalCallId: (2808630435142227000n + BigInt(id)).toString(),
      firstCallId: `${this.#opts.sn}-00-0000D-${id.toString(16).toUpperCase()}`,
      calling,
      called,
      callee: called,
      callingName: o.callingName || this.#name(calling),
      calleeName: this.#name(called),
      state: "alerting",
      connectedAt: 0,
      callbackAddress: o.callbackAddress,
    };
    this.#calls.set(id, c);
    if (o.originate !== false && this.#internal(calling)) {
      this.#emit("OriginatedEvent", [calling], (e) => ev.originated(c, e));
    }
    this.#deliver(c);
    return c;
  }

  /** Follows `forwardTo`, emits DeliveredEvent and arms the auto-answer timer. */
  #deliver(c: SimCall): void {
    for (let hop = 0; hop < MAX_DIVERSIONS; hop++) {
      const fwd = this.#users.byExt(c.callee)?.forwardTo;
      if (!fwd || fwd === c.callee) break;
      this.#divert(c, c.callee, fwd);
    }
    this.#emit("DeliveredEvent", this.#parties(c), (e) => ev.delivered(c, e));
    this.#clearRingTimers(c);
    const alerting = () => this.#calls.get(c.id) === c && c.state === "alerting";
    if (this.#opts.answerAfterMs >= 0) {
      c.answerTimer = this.#timers.set(() => {
        c.answerTimer = undefined;
        if (alerting()) this.answer(c);
      }, this.#opts.answerAfterMs);
    }
    if (this.#opts.voicemailAfterMs >= 0 && this.#internal(c.callee)) {
      c.noAnswerTimer = this.#timers.set(() => {
        c.noAnswerTimer = undefined;
        if (alerting()) this.toVoicemail(c);
      }, this.#opts.voicemailAfterMs);
    }
  }

  #clearRingTimers(c: SimCall): void {
    this.#timers.clear(c.answerTimer);
    this.#timers.clear(c.noAnswerTimer);
    c.answerTimer = c.noAnswerTimer = undefined;
  }

  #divert(c: SimCall, from: string, to: string, cause = "normal"): void {
    const exts = this.#parties(c, from);
    this.#emit("DivertedEvent", exts, (e) => ev.diverted(c, e, from, to, cause));
    c.lastRedirection = from;
    c.callee = to;
    c.calleeName = this.#name(to);
  }

  /** Answers an alerting call: EstablishedEvent, then the auto-hangup timer. */
  answer(c: SimCall): void {
    this.#clearRingTimers(c);
    c.state = "connected";
    c.connectedAt = Math.floor(Date.now() / 1000);
    this.#emit("EstablishedEvent", this.#parties(c), (e) => ev.established(c, e));
    if (this.#opts.hangupAfterMs > 0) {
      c.hangupTimer = this.#timers.set(() => {
        c.hangupTimer = undefined;
        if (this.#calls.get(c.id) === c) this.clear(c, c.callee);
      }, this.#opts.hangupAfterMs);
    }
  }

  /**
   * A call ringing at several phones (a group) is answered by another one: EstablishedEvent
   * naming `by` as the answering device to the caller, the phone that rang and `by`; the
   * call goes on between the caller and `by`.
   */
  answerElsewhere(c: SimCall, by: string): void {
    const parties = this.#parties(c, by);
    this.#timers.clear(c.answerTimer);
    c.answerTimer = undefined;
    c.lastRedirection = c.callee;
    c.callee = by;
    c.calleeName = this.#name(by);
    c.state = "connected";
    c.connectedAt = Math.floor(Date.now() / 1000);
    this.#emit("EstablishedEvent", parties, (e) => ev.established(c, e));
  }

  /** Clears the whole call: ConnectionClearedEvent for every party, call-log records. */
  clear(c: SimCall, releasing: string): void {
    this.#drop(c);
    this.#emit("ConnectionClearedEvent", this.#parties(c), (e) => ev.cleared(c, e, releasing));
    this.#record(c);
  }

  #drop(c: SimCall): void {
    this.#clearRingTimers(c);
    this.#timers.clear(c.hangupTimer);
    c.hangupTimer = undefined;
    this.#calls.delete(c.id);
  }

  /**
   * The ring timeout fired (or the simulator is told so): the callee's missed-call record,
   * DivertedEvent (`callForwardNoAnswer`) to the voicemail number, which answers (the
   * caller's EstablishedEvent).
   */
  toVoicemail(c: SimCall): void {
    this.#record(c, c.callee);
    this.#divert(c, c.callee, this.#opts.voicemail, "callForwardNoAnswer");
    this.answer(c);
  }

  /** A colleague picks the ringing call up: DivertedEvent (`callPickup`), then answered by `by`. */
  pickup(c: SimCall, by: string): void {
    this.#divert(c, c.callee, by, "callPickup");
    this.answer(c);
  }

  /** Writes the call-log records of a finished call for its internal parties. */
  #record(c: SimCall, only?: string): void {
    const now = Math.floor(Date.now() / 1000);
    const base = {
      gcid: c.firstCallId,
      connectTimestamp: c.connectedAt,
      disconnectTimestamp: now,
      callingPartyNo: c.calling,
      originalCalledPartyNo: c.called,
      // legType 3 = answered, 1 = not (as in the seed samples).
      legType: c.connectedAt ? 3 : 1,
    };
    const other = (n: string) => {
      const u = this.#users.byExt(n);
      return {
        firstName: u?.firstName ?? "",
        lastName: u?.lastName ?? "",
        extension: u?.ext ?? "",
      };
    };
    if (this.#internal(c.calling) && (!only || only === c.calling)) {
      this.#log.add(c.calling, {
        ...base,
        ...other(c.callee),
        direction: "outgoing",
        missed: false,
      });
    }
    if (c.callee !== c.calling && this.#internal(c.callee) && (!only || only === c.callee)) {
      this.#log.add(c.callee, {
        ...base,
        ...other(c.calling),
        direction: "incoming",
        missed: c.connectedAt === 0,
      });
    }
  }

  #isParty(c: SimCall, device: string): boolean {
    return device === c.calling || device === c.callee;
  }

  /** Validates ClearConnection; then call {@link clear}. */
  checkClear(callId: number, device: string): Outcome<SimCall> {
    const c = this.#calls.get(callId);
    if (!c) return fail("invalid call id");
    if (!this.#isParty(c, device)) return fail("invalid device id");
    return ok(c);
  }

  /** Validates HoldCall. */
  checkHold(callId: number, device: string): Outcome<SimCall> {
    const c = this.#calls.get(callId);
    if (!c) return fail("invalid call id");
    if (!this.#isParty(c, device)) return fail("invalid device id");
    if (c.state !== "connected") return fail("invalid call state");
    return ok(c);
  }

  /** HoldCall (after {@link checkHold}): HeldEvent. */
  hold(c: SimCall, device: string): void {
    c.state = "held";
    this.#emit("HeldEvent", this.#parties(c), (e) => ev.held(c, e, device));
  }

  /** Validates RetrieveCall. */
  checkRetrieve(callId: number, device: string): Outcome<SimCall> {
    const c = this.#calls.get(callId);
    if (!c) return fail("invalid call id");
    if (!this.#isParty(c, device)) return fail("invalid device id");
    if (c.state !== "held") return fail("invalid call state");
    return ok(c);
  }

  /** RetrieveCall (after {@link checkRetrieve}): RetrievedEvent. */
  retrieve(c: SimCall, device: string): void {
    c.state = "connected";
    this.#emit("RetrievedEvent", this.#parties(c), (e) => ev.retrieved(c, e, device));
  }

  /** Validates AnswerCall / DeflectCall: the call must be alerting at `device`. */
  checkAlerting(callId: number, device: string): Outcome<SimCall> {
    const c = this.#calls.get(callId);
    if (!c) return fail("invalid call id");
    if (c.callee !== device) return fail("invalid device id");
    if (c.state !== "alerting") return fail("invalid call state");
    return ok(c);
  }

  /** DeflectCall (after {@link checkAlerting}): DivertedEvent (`redirected`), then delivery to `to`. */
  deflect(c: SimCall, device: string, to: string): void {
    this.#divert(c, device, to, "redirected");
    this.#deliver(c);
  }

  /** Validates SingleStepTransferCall. */
  checkTransfer(callId: number, device: string, to: string): Outcome<SimCall> {
    const c = this.#calls.get(callId);
    if (!c) return fail("invalid call id");
    if (!this.#isParty(c, device)) return fail("invalid device id");
    if (!to) return fail("invalid destination");
    return ok(c);
  }

  /** The party of `c` that is not `device`. */
  otherParty(c: SimCall, device: string): string {
    return device === c.calling ? c.callee : c.calling;
  }

  /**
   * Validates TransferCall: `device` holds `heldId` (held or still connected) and has
   * `activeId` connected or ringing at the far end.
   */
  checkConsultTransfer(heldId: number, activeId: number, device: string): Outcome<ConsultParties> {
    const held = this.#calls.get(heldId), active = this.#calls.get(activeId);
    if (!held || !active || heldId === activeId) return fail("invalid call id");
    if (!this.#isParty(held, device) || !this.#isParty(active, device)) {
      return fail("invalid device id");
    }
    if (held.state === "alerting") return fail("invalid call state");
    return ok({ held, active });
  }

  /**
   * TransferCall (after {@link checkConsultTransfer}): TransferedEvent on both calls, the
   * transferring party's call-log records, then one call between the two remaining parties:
   * connected when the consultation call was, else still ringing at its far end. Returns it.
   */
  consultTransfer(p: ConsultParties, device: string): SimCall {
    const a = this.otherParty(p.held, device), b = this.otherParty(p.active, device);
    const joined = this.#nextId;
    for (const c of [p.held, p.active]) {
      this.#emit(
        "TransferedEvent",
        this.#parties(c),
        (e) => ev.transfered(c, e, device, b, joined),
      );
      this.#drop(c);
      this.#record(c, device);
    }
    const call = this.start(a, b, { originate: false });
    if (p.active.state !== "alerting") this.answer(call);
    return call;
  }

  /**
   * SingleStepTransferCall (after {@link checkTransfer}): TransferedEvent on the old call,
   * the transferring party's call-log record, then a new call from the remaining party to
   * `to` (DeliveredEvent, answer…). Returns the new call.
   */
  transfer(c: SimCall, device: string, to: string): SimCall {
    const remaining = device === c.calling ? c.callee : c.calling;
    const newId = this.#nextId;
    this.#emit(
      "TransferedEvent",
      this.#parties(c),
      (e) => ev.transfered(c, e, device, to, newId),
    );
    this.#drop(c);
    this.#record(c, device);
    return this.start(remaining, to, { originate: false });
  }
}

/** The two calls of a consultation transfer. */
export interface ConsultParties {
  /** The call on hold (the first one). */
  held: SimCall;
  /** The consultation call. */
  active: SimCall;
}

/** Command names {@link handleCallControl} answers. */
export const CALL_CONTROL_COMMANDS = [
  "ClearConnection",
  "HoldCall",
  "RetrieveCall",
  "AnswerCall",
  "SingleStepTransferCall",
  "DeflectCall",
  "TransferCall",
] as const;

/**
 * Handles `MakeCall`: a User session may only call from its own extension, a Server session
 * from any number. After an `iq mode="remote"` the call is a callback via that address. The
 * reply (with the new call id) is queued before the call's first event.
 *
 * @example
 * ```ts
 * handleMakeCall(calls, session, 4, parseXml(
 *   "<MakeCall><callingDevice>3095</callingDevice>" +
 *     "<calledDirectoryNumber>3099</calledDirectoryNumber></MakeCall>",
 * ));
 * ```
 */
export function handleMakeCall(
  calls: CallEngine,
  s: SimSession,
  id: number,
  el: XmlElement,
): void {
  const from = textAt(el, "callingDevice");
  const to = textAt(el, "calledDirectoryNumber");
  if (!from) return s.error(id, "invalid calling device");
  if (!to) return s.error(id, "invalid called device");
  // Server sessions may originate from an outside number (MX dials both ends).
  if (!s.server && from !== s.user!.ext) return s.error(id, "invalid calling device");
  const callbackAddress = s.callMode?.mode === "remote" ? s.callMode.address : undefined;
  s.send(
    id,
    `<MakeCallResponse><callingDevice><callID>${calls.peekNextId()}</callID>` +
      `<deviceID>${escapeXml(from)}</deviceID></callingDevice>` +
      `<calledDevice>${escapeXml(to)}</calledDevice></MakeCallResponse>`,
  );
  calls.start(from, to, { callbackAddress });
}

/**
 * Handles one of {@link CALL_CONTROL_COMMANDS} on the call and device named in its first
 * child element: validates, replies, then runs the engine step (whose events follow the
 * reply).
 *
 * @example
 * ```ts
 * handleCallControl(calls, session, 6, parseXml(
 *   "<HoldCall><callToBeHeld><callID>21</callID><deviceID>3095</deviceID></callToBeHeld></HoldCall>",
 * ));
 * ```
 */
export function handleCallControl(
  calls: CallEngine,
  s: SimSession,
  id: number,
  el: XmlElement,
): void {
  const container = el.children[0];
  const callId = intAt(container, "callID");
  const device = textAt(container, "deviceID");
  const answer = (r: Outcome<SimCall>, step: (c: SimCall) => void, reply?: string) => {
    if (!r.ok) return s.error(id, r.error);
    s.send(id, reply ?? `<${el.name}Response></${el.name}Response>`);
    step(r.value);
  };
  switch (el.name) {
    case "ClearConnection":
      return answer(calls.checkClear(callId, device), (c) => calls.clear(c, device));
    case "HoldCall":
      return answer(calls.checkHold(callId, device), (c) => calls.hold(c, device));
    case "RetrieveCall":
      return answer(calls.checkRetrieve(callId, device), (c) => calls.retrieve(c, device));
    case "AnswerCall":
      return answer(calls.checkAlerting(callId, device), (c) => calls.answer(c));
    case "DeflectCall": {
      const to = textAt(el, "newDestination");
      if (!to) return s.error(id, "invalid destination");
      return answer(calls.checkAlerting(callId, device), (c) => calls.deflect(c, device, to));
    }
    case "TransferCall": {
      const heldId = intAt(el, "heldCall", "callID");
      const activeId = intAt(el, "activeCall", "callID");
      const dev = textAt(el, "activeCall", "deviceID");
      if (textAt(el, "heldCall", "deviceID") !== dev) return s.error(id, "invalid device id");
      const r = calls.checkConsultTransfer(heldId, activeId, dev);
      if (!r.ok) return s.error(id, r.error);
      const joined = calls.peekNextId();
      s.send(
        id,
        `<TransferCallResponse><transferredCall><callID>${joined}</callID>` +
          `<deviceID>${escapeXml(calls.otherParty(r.value.active, dev))}</deviceID>` +
          `</transferredCall></TransferCallResponse>`,
      );
      calls.consultTransfer(r.value, dev);
      return;
    }
    case "SingleStepTransferCall": {
      const to = textAt(el, "transferredTo");
      return answer(
        calls.checkTransfer(callId, device, to),
        (c) => void calls.transfer(c, device, to),
        `<SingleStepTransferCallResponse><transferredCall><callID>${calls.peekNextId()}` +
          `</callID><deviceID>${escapeXml(to)}</deviceID></transferredCall>` +
          `</SingleStepTransferCallResponse>`,
      );
    }
  }
}
