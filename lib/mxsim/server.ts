/**
 * A simulated Zultys MX server speaking the real CSTA wire protocol (mx-protocol §1–§4) from
 * the server side: login, monitors, address book with paging and change events, MakeCall and
 * call control with realistic event sequences, call log, voicemail with chunked download,
 * presence (set by users, on demand, and on calls), plus observation and fault injection for
 * tests, benchmarks and `deno task demo`.
 *
 * This file accepts connections, dispatches each command to the handler beside the state it
 * touches (`session.ts` login and call mode, `monitors.ts`, `users.ts` address book,
 * `presence.ts`, `calls.ts`, `calllog.ts`, `voicemail.ts`) and wires the fault injection in
 * between.
 *
 * @example
 * ```ts
 * const sim = await MxSimulator.start({ tls: false });
 * // connect a client to sim.hostname:sim.port, log in as "dmitry" / "secret" …
 * await sim.close();
 * ```
 *
 * @module
 */
import { listenTls, type SimConn, type SimListener } from "./tls_listener.ts";
import type { Frame } from "../csta/frame.ts";
import { escapeXml, parseXml, rootName, type XmlElement } from "../csta/xml.ts";
import {
  CALL_CONTROL_COMMANDS,
  CallEngine,
  handleCallControl,
  handleMakeCall,
  SIM_VOICEMAIL,
  type SimCall,
} from "./calls.ts";
import { CallLogStore, handleCallLogRequest, type SimCallLogRecord } from "./calllog.ts";
import { MonitorRegistry } from "./monitors.ts";
import { handlePresence, PresenceBoard } from "./presence.ts";
import { ReceivedLog, type SimMessage, type SimMessageWithEl } from "./received.ts";
import {
  type CallModeRecord,
  handleCallMode,
  handleLogin,
  type SessionHost,
  SimSession,
} from "./session.ts";
import { Timers } from "./timers.ts";
import {
  abEventXml,
  defaultUsers,
  handleAbMonitor,
  handleAddressBookPage,
  type SimUser,
  UserDirectory,
} from "./users.ts";
import {
  type CancelRecord,
  handleMailCommand,
  MAIL_COMMANDS,
  type NewVoicemail,
  type SimVoicemail,
  VoicemailStore,
} from "./voicemail.ts";

/** Simulator options. */
export interface SimOptions {
  /** Listen address, default `127.0.0.1`. */
  hostname?: string;
  /** Listen port, default 0 (any free port). */
  port?: number;
  /** PEM certificate and key for TLS; `false` (default) = plain TCP. */
  tls?: { cert: string; key: string } | false;
  /** MX serial number, default `63022`. */
  sn?: string;
  /** Users, default {@link defaultUsers}. */
  users?: SimUser[];
  /** The callee answers after this many ms (default 50); negative = never auto-answer. */
  answerAfterMs?: number;
  /** Established calls are cleared after this many ms; default 0 = never. */
  hangupAfterMs?: number;
  /**
   * The MX's ring timeout: a call still ringing at an extension after this many ms goes to
   * voicemail (DivertedEvent `callForwardNoAnswer`); default -1 = never.
   */
  voicemailAfterMs?: number;
  /** The voicemail number unanswered calls are diverted to; default `*86`. */
  voicemailNumber?: string;
  /** Raw voicemail bytes per chunk, default 32768, at most 47000 (frames stay < 65535). */
  chunkSize?: number;
  /** Called with every frame payload in and out; passwords are redacted. */
  wireLog?: (dir: "in" | "out", frame: string) => void;
  /**
   * Calls change presence: a user with a connected or held call shows `OnThePhone` until the
   * last one ends (default false, so tests of other things see only call events).
   */
  presenceOnCalls?: boolean;
}

/** A command handler: the session, the frame's invoke id and its parsed root element. */
type Handler = (s: SimSession, id: number, el: XmlElement) => void;

/** Hides password text in logged frames ("secrets never reach logs"). */
function redact(xml: string): string {
  return xml.replace(/<pwd>[\s\S]*?<\/pwd>/g, "<pwd>***</pwd>");
}

/** Garbage that no CSTA decoder accepts: non-numeric invoke id, then junk. */
const MALFORMED = new Uint8Array([0, 0, 0, 16, 0x58, 0x59, 0x5a, 0x21, 1, 2, 3, 4, 5, 6, 7, 8]);

/**
 * The simulated MX. Create with {@link MxSimulator.start}; always {@link MxSimulator.close}.
 *
 * @example
 * ```ts
 * const sim = await MxSimulator.start({ tls: { cert, key } });
 * const callId = sim.incomingCall({ from: "+15550100", to: "3095" });
 * await sim.waitFor("ClearConnection"); // the client under test hangs up
 * await sim.close();
 * ```
 */
export class MxSimulator implements SessionHost {
  /** Listen address. */
  readonly hostname: string;
  /** Listen port (stays the same across pause/resume). */
  readonly port: number;
  /** MX serial number. */
  readonly sn: string;
  /** Wire logger. */
  readonly wireLog?: (dir: "in" | "out", frame: string) => void;

  #listener: SimListener;
  #acceptLoop: Promise<void>;
  #tls: { cert: string; key: string } | false;
  #users: UserDirectory;
  #timers = new Timers();
  #monitors: MonitorRegistry;
  #calls: CallEngine;
  #callLog = new CallLogStore();
  #mail: VoicemailStore;
  #presence: PresenceBoard;
  #received = new ReceivedLog();
  #handlers: Map<string, Handler>;
  #sessions = new Set<SimSession>();
  #sessionDone = new Set<Promise<void>>();
  #nextSession = 1;
  #delay = 0;
  #silent = new Set<string>();
  #paused = false;
  #closed = false;
  #callModes: CallModeRecord[] = [];

  private constructor(
    listener: SimListener,
    opts: SimOptions,
    tls: { cert: string; key: string } | false,
  ) {
    this.#listener = listener;
    const addr = listener.addr as Deno.NetAddr;
    this.hostname = addr.hostname;
    this.port = addr.port;
    this.sn = opts.sn ?? "63022";
    this.wireLog = opts.wireLog;
    this.#tls = tls;
    this.#users = new UserDirectory(opts.users ?? defaultUsers());
    this.#monitors = new MonitorRegistry(this.#users);
    this.#mail = new VoicemailStore(opts.chunkSize);
    this.#calls = new CallEngine(
      this.#users,
      this.#callLog,
      (name, exts, body) => {
        this.#monitors.fanout(name, exts, body);
        this.#presence.touch(exts);
      },
      this.#timers,
      {
        sn: this.sn,
        answerAfterMs: opts.answerAfterMs ?? 50,
        hangupAfterMs: opts.hangupAfterMs ?? 0,
        voicemailAfterMs: opts.voicemailAfterMs ?? -1,
        voicemail: opts.voicemailNumber ?? SIM_VOICEMAIL,
      },
    );
    this.#presence = new PresenceBoard(
      this.#users,
      () => this.#sessions,
      (ext) =>
        this.#calls.all().some((c) =>
          c.state !== "alerting" && (c.calling === ext || c.callee === ext)
        ),
      opts.presenceOnCalls ?? false,
    );
    this.#handlers = this.#commands();
    this.#acceptLoop = this.#accept(listener);
  }

  /** Starts listening and returns the running simulator. */
  static async start(opts: SimOptions = {}): Promise<MxSimulator> {
    const tls = opts.tls ?? false;
    const listener = await MxSimulator.#listen(opts.hostname ?? "127.0.0.1", opts.port ?? 0, tls);
    return new MxSimulator(listener, opts, tls);
  }

  static #listen(
    hostname: string,
    port: number,
    tls: { cert: string; key: string } | false,
  ): Promise<SimListener> {
    return tls
      ? listenTls(hostname, port, tls.cert, tls.key)
      : Promise.resolve(Deno.listen({ hostname, port, transport: "tcp" }));
  }

  async #accept(listener: SimListener): Promise<void> {
    for (;;) {
      let conn: SimConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#closed || this.#paused || this.#listener !== listener) return;
        if (err instanceof Deno.errors.BadResource) return;
        continue; // e.g. a failed TLS accept: keep serving others
      }
      if (this.#closed || this.#paused) {
        conn.close();
        continue;
      }
      const s = new SimSession(this.#nextSession++, conn, this);
      this.#sessions.add(s);
      const done = s.done;
      this.#sessionDone.add(done);
      done.finally(() => this.#sessionDone.delete(done));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Users and address book

  /** Adds (or replaces, by JID) a user; sends `AbAddUserEvent` to `MonitorStartAb` sessions. */
  addUser(u: SimUser): void {
    const added = this.#users.put(u);
    if (added.ext) this.#abEvent(abEventXml("add", added));
  }

  /** Changes a user; sends `AbUpdateUserEvent`. @throws {Error} for an unknown JID */
  updateUser(jid: string, patch: Partial<SimUser>): void {
    const old = this.#users.byJid(jid);
    if (!old) throw new Error(`unknown user ${jid}`);
    const u = this.#users.put({ ...old, ...patch, jid });
    if (u.ext) this.#abEvent(abEventXml("update", u));
  }

  /** Removes a user; sends `AbDeleteUserEvent`. Unknown JIDs are ignored. */
  removeUser(jid: string): void {
    const u = this.#users.remove(jid);
    if (u?.ext) this.#abEvent(abEventXml("delete", u));
  }

  /** Current users (address-book order), copies. */
  users(): SimUser[] {
    return this.#users.contacts().map((u) => ({ ...u }));
  }

  /**
   * Sets a user's presence as if they changed it in their client: announced to every Server
   * session (`presence from="<jid>"`) and the user's own sessions.
   * @throws {Error} when `ext` is not a known extension
   */
  setPresence(ext: string, status: string, note = ""): void {
    const u = this.#users.byExt(ext);
    if (!u) throw new Error(`unknown extension ${ext}`);
    this.#presence.set(u.jid, status, note);
  }

  /** Turns presence changes on calls on or off (see {@link SimOptions.presenceOnCalls}). */
  setPresenceOnCalls(on: boolean): void {
    this.#presence.onCalls = on;
  }

  #abEvent(xml: string): void {
    for (const s of this.#sessions) if (s.abMonitor && !s.closed) s.event(xml);
  }

  // ---------------------------------------------------------------------------------------
  // Calls, voicemail, call log

  /**
   * Simulates a call arriving from `from` at extension `to`: DeliveredEvent (alerting) to the
   * callee's monitors, EstablishedEvent after the answer, etc. Returns the call id.
   * @throws {Error} when `to` is not a known extension
   */
  incomingCall(opts: { from: string; to: string; fromName?: string }): number {
    if (!this.#users.byExt(opts.to)) throw new Error(`unknown extension ${opts.to}`);
    return this.#calls.start(opts.from, opts.to, { callingName: opts.fromName }).id;
  }

  /** Calls not yet cleared (snapshots). */
  calls(): SimCall[] {
    return this.#calls.all().map((c) => ({ ...c }));
  }

  /**
   * A call ringing at several phones (a group call) is answered by another one: the phone
   * that rang gets an EstablishedEvent naming `by` as the answering device. Returns false if
   * the call is unknown or no longer ringing.
   */
  answerElsewhere(callId: number, by: string): boolean {
    const c = this.#calls.get(callId);
    if (!c || c.state !== "alerting") return false;
    this.#calls.answerElsewhere(c, by);
    return true;
  }

  /** Clears a call as if `releasing` hung up (default: the callee). Returns false if unknown. */
  hangup(callId: number, releasing?: string): boolean {
    const c = this.#calls.get(callId);
    if (!c) return false;
    this.#calls.clear(c, releasing ?? c.callee);
    return true;
  }

  // Scenario steps for tests and the demo: what phones and people do outside MXFlex. Each
  // returns false (or undefined) when the call is unknown or not in a state that allows it.

  /** The callee's desk phone answers the ringing call (EstablishedEvent). */
  answer(callId: number): boolean {
    const c = this.#ringing(callId);
    if (c) this.#calls.answer(c);
    return c !== undefined;
  }

  /**
   * `device` (a party) transfers the call to `to`, as SingleStepTransferCall does: the old
   * call ends (TransferedEvent) and a new one rings at `to`. Returns the new call's id.
   */
  transfer(callId: number, device: string, to: string): number | undefined {
    const r = this.#calls.checkTransfer(callId, device, to);
    return r.ok ? this.#calls.transfer(r.value, device, to).id : undefined;
  }

  /** `by` picks up the call ringing elsewhere (DivertedEvent `callPickup`, then answered). */
  pickup(callId: number, by: string): boolean {
    const c = this.#ringing(callId);
    if (c) this.#calls.pickup(c, by);
    return c !== undefined;
  }

  /** The ring timeout of a ringing call fires now: it goes to voicemail. */
  sendToVoicemail(callId: number): boolean {
    const c = this.#ringing(callId);
    if (c) this.#calls.toVoicemail(c);
    return c !== undefined;
  }

  #ringing(callId: number): SimCall | undefined {
    const c = this.#calls.get(callId);
    return c?.state === "alerting" ? c : undefined;
  }

  /** Stores a voicemail for `ext` and returns its mail id. */
  addVoicemail(ext: string, vm: NewVoicemail): string {
    return this.#mail.add(ext, vm).mailId;
  }

  /** Current voicemail of `ext` (live state, do not mutate). */
  voicemails(ext: string): readonly SimVoicemail[] {
    return this.#mail.list(ext);
  }

  /** Current call log of `ext`. */
  callLog(ext: string): readonly SimCallLogRecord[] {
    return this.#callLog.list(ext);
  }

  /** Appends a call-log record (missing fields get defaults; `recordId` is assigned). */
  addCallLog(ext: string, record: Partial<SimCallLogRecord>): SimCallLogRecord {
    return this.#callLog.add(ext, record);
  }

  /** Every `<iq type="set" id="mode">` seen, oldest first. */
  get callModes(): readonly CallModeRecord[] {
    return this.#callModes;
  }

  /** Every `MailCancelReceive` seen, oldest first. */
  get cancelledDownloads(): readonly CancelRecord[] {
    return this.#mail.cancels;
  }

  // ---------------------------------------------------------------------------------------
  // Observation

  /** The last 10 000 frames received from clients, oldest first. */
  get received(): ReadonlyArray<SimMessage> {
    return this.#received.messages;
  }

  /** Sequence number the next received frame will get; pass it as `since` to {@link waitFor}. */
  mark(): number {
    return this.#received.mark();
  }

  /**
   * Resolves with the next client message named `name` matching `predicate`. With `since`
   * (from {@link mark}), an already received message with `seq >= since` also counts.
   * @throws {Error} after `timeoutMs` (default 5000) or when the simulator closes
   */
  waitFor(
    name: string,
    predicate?: (m: SimMessageWithEl) => boolean,
    timeoutMs = 5000,
    since?: number,
  ): Promise<SimMessageWithEl> {
    return this.#received.waitFor(name, predicate, timeoutMs, since);
  }

  /** Open client sessions. */
  sessionCount(): number {
    return this.#sessions.size;
  }

  /** Active call monitors over all sessions, or on one extension (one per watching session). */
  monitorCount(ext?: string): number {
    return ext === undefined ? this.#monitors.size : this.#monitors.count(ext);
  }

  /** Calls not yet cleared. */
  activeCalls(): number {
    return this.#calls.size;
  }

  // ---------------------------------------------------------------------------------------
  // Fault injection

  /** Destroys every client socket abruptly. */
  dropConnections(): void {
    for (const s of this.#sessions) s.close();
  }

  /** Delays the handling (and so the reply) of every command from now on by `ms`. */
  setDelay(ms: number): void {
    this.#delay = Math.max(0, ms);
  }

  /** Ignores these command names completely: no reply, no effect (simulates a lost reply). */
  setSilent(names: string[]): void {
    this.#silent = new Set(names);
  }

  /** Sends a frame with a non-numeric invoke id and junk to every session. */
  sendMalformedFrame(): void {
    for (const s of this.#sessions) s.sendRaw(MALFORMED);
  }

  /** Sends `<Logout mode="…"/>` (id 9999) to every session, then closes them. */
  sendLogout(mode = "forced"): void {
    for (const s of this.#sessions) {
      s.event(`<Logout mode="${escapeXml(mode)}"/>`);
      s.closeAfterFlush();
    }
  }

  /** MX down: stops listening and drops every session. */
  async pause(): Promise<void> {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#listener.close();
    await this.#acceptLoop;
    await this.#dropAll();
  }

  /** Listens again on the same port after {@link pause}. */
  async resume(): Promise<void> {
    if (!this.#paused || this.#closed) return;
    this.#listener = await MxSimulator.#listen(this.hostname, this.port, this.#tls);
    this.#paused = false;
    this.#acceptLoop = this.#accept(this.#listener);
  }

  /** Stops everything: listener, sessions, call timers, pending {@link waitFor}s. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#paused) {
      try {
        this.#listener.close();
      } catch {
        // already closed
      }
    }
    await this.#acceptLoop;
    await this.#dropAll();
    this.#timers.clearAll();
    this.#received.close();
  }

  async #dropAll(): Promise<void> {
    for (const s of this.#sessions) s.close();
    await Promise.all([...this.#sessionDone]);
  }

  // ---------------------------------------------------------------------------------------
  // SessionHost

  /** @internal a session ended: forget its monitors */
  onClosed(s: SimSession): void {
    this.#sessions.delete(s);
    this.#monitors.release(s);
  }

  /** @internal one frame from a client */
  onFrame(s: SimSession, f: Frame): void {
    this.wireLog?.("in", redact(f.payload));
    let el: XmlElement;
    try {
      el = parseXml(f.payload);
    } catch {
      // Malformed XML is a protocol violation: end this session only.
      s.close();
      return;
    }
    const name = el.name || rootName(f.payload);
    this.#received.record(s.id, f.invokeId, f.payload, el, name);
    if (this.#silent.has(name)) return;
    if (this.#delay > 0) {
      this.#timers.set(() => {
        if (!s.closed) this.#handle(s, f.invokeId, el);
      }, this.#delay);
    } else {
      this.#handle(s, f.invokeId, el);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Command dispatch

  /** The handler of every command a logged-in session may send, by root element name. */
  #commands(): Map<string, Handler> {
    const calls = this.#calls, mail = this.#mail, monitors = this.#monitors;
    const h = new Map<string, Handler>([
      ["MonitorStart", (s, id, el) => monitors.start(s, id, el)],
      ["MonitorStop", (s, id, el) => monitors.stop(s, id, el)],
      ["MonitorStartAb", handleAbMonitor],
      ["MonitorStopAb", handleAbMonitor],
      ["iq", (s, id, el) => this.#iq(s, id, el)],
      ["MakeCall", (s, id, el) => handleMakeCall(calls, s, id, el)],
      ["presence", (s, id, el) => handlePresence(this.#presence, s, id, el)],
    ]);
    for (const name of CALL_CONTROL_COMMANDS) {
      h.set(name, (s, id, el) => handleCallControl(calls, s, id, el));
    }
    for (const name of MAIL_COMMANDS) {
      h.set(name, (s, id, el) => handleMailCommand(mail, s, id, el));
    }
    return h;
  }

  #handle(s: SimSession, id: number, el: XmlElement): void {
    try {
      this.#dispatch(s, id, el);
    } catch {
      // A handler bug must not take the simulator down; the client sees an error reply.
      s.error(id, "internal error");
    }
  }

  #dispatch(s: SimSession, id: number, el: XmlElement): void {
    const name = el.name;
    if (name === "keepalive") return;
    if (name === "logout") {
      s.closeAfterFlush();
      return;
    }
    if (name === "loginRequest") return handleLogin(this.#users, this.sn, s, id, el);
    if (!s.loggedIn) {
      // Nothing is processed before the login (mx-protocol §2.1).
      s.error(id, "not logged in");
      s.closeAfterFlush();
      return;
    }
    const handler = this.#handlers.get(name);
    if (handler) handler(s, id, el);
    else s.error(id, `unknown command ${name}`);
  }

  /** `iq` carries three unrelated requests, told apart by its `id` attribute. */
  #iq(s: SimSession, id: number, el: XmlElement): void {
    const kind = el.attrs.id ?? "";
    if (kind === "addressbook") return handleAddressBookPage(this.#users, s, el);
    if (kind === "calllog") return handleCallLogRequest(this.#callLog, s, el);
    if (kind === "mode" && el.attrs.type === "set") {
      return handleCallMode(s, el, this.#callModes);
    }
    s.error(id, `unknown iq ${kind}`);
  }
}
