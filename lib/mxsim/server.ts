/**
 * A simulated Zultys MX server speaking the real CSTA wire protocol (mx-protocol §1–§4) from
 * the server side: login, monitors, address book with paging and change events, MakeCall and
 * call control with realistic event sequences, call log, voicemail with chunked download,
 * plus observation and fault injection for tests, benchmarks and `deno task demo`.
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
import {
  child,
  escapeXml,
  intAt,
  parseXml,
  rootName,
  textAt,
  type XmlElement,
} from "../csta/xml.ts";
import { CallEngine, type SimCall, type TimerHandle, type TimerHost } from "./calls.ts";
import { CallLogStore, type SimCallLogRecord } from "./calllog.ts";
import { type CallModeRecord, type SessionHost, type SimMonitor, SimSession } from "./session.ts";
import { abEntryXml, defaultUsers, type SimUser, UserDirectory } from "./users.ts";
import {
  chunkCount,
  chunkXml,
  mailListXml,
  type NewVoicemail,
  type SimVoicemail,
  VoicemailStore,
} from "./voicemail.ts";

export type { SimUser } from "./users.ts";
export { defaultUsers } from "./users.ts";
export type { SimCallLogRecord } from "./calllog.ts";
export type { NewVoicemail, SimVoicemail } from "./voicemail.ts";
export type { CallModeRecord } from "./session.ts";
export type { SimCall } from "./calls.ts";

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
  /** Raw voicemail bytes per chunk, default 32768, at most 47000 (frames stay < 65535). */
  chunkSize?: number;
  /** Called with every frame payload in and out; passwords are redacted. */
  wireLog?: (dir: "in" | "out", frame: string) => void;
}

/** One frame received from a client. */
export interface SimMessage {
  /** Sequence number across the simulator (see {@link MxSimulator.mark}). */
  seq: number;
  /** Session number. */
  session: number;
  /** Invoke id of the frame. */
  invokeId: number;
  /** Root element name. */
  name: string;
  /** Payload. */
  xml: string;
}

/** A received message with its parsed root element. */
export interface SimMessageWithEl extends SimMessage {
  /** Parsed payload. */
  el: XmlElement;
}

/** A `MailCancelReceive` the simulator saw. */
export interface CancelRecord {
  /** Session number. */
  session: number;
  /** Mailbox extension. */
  ext: string;
  /** Mail id. */
  mailId: string;
  /** Chunks sent before the cancel. */
  chunksSent: number;
}

/** API version announced in login replies. */
const API_VERSION = "11";
/** Address-book page size (mx-protocol §3.3). */
const AB_PAGE = 50;
/** Received messages kept for observation. */
const RECEIVED_LIMIT = 10_000;
/** Largest raw chunk whose base64 and envelope fit a 65 535-byte frame. */
const MAX_CHUNK = 47_000;
/** Largest payload we send (frame minus header). */
const MAX_PAYLOAD = 65_535 - 8;

interface Waiter {
  name: string;
  predicate?: (m: SimMessageWithEl) => boolean;
  resolve: (m: SimMessageWithEl) => void;
  reject: (e: Error) => void;
  timer: TimerHandle;
}

/** Tracks every timer so `close()` can cancel them (Deno's test sanitizers). */
class Timers implements TimerHost {
  #ids = new Set<TimerHandle>();
  set(fn: () => void, ms: number): TimerHandle {
    const id = setTimeout(() => {
      this.#ids.delete(id);
      fn();
    }, Math.max(0, ms));
    this.#ids.add(id);
    return id;
  }
  clear(id: TimerHandle | undefined): void {
    if (id === undefined) return;
    clearTimeout(id);
    this.#ids.delete(id);
  }
  clearAll(): void {
    for (const id of this.#ids) clearTimeout(id);
    this.#ids.clear();
  }
}

function cstaError(text: string): string {
  return `<CSTAErrorCode><privateErrorCode>${escapeXml(text)}</privateErrorCode></CSTAErrorCode>`;
}

/** Hides password text in logged frames ("secrets never reach logs"). */
function redact(xml: string): string {
  return xml.replace(/<pwd>[\s\S]*?<\/pwd>/g, "<pwd>***</pwd>");
}

/** Garbage that no CSTA decoder accepts: non-numeric invoke id, then junk. */
const MALFORMED = new Uint8Array([0, 0, 0, 16, 0x58, 0x59, 0x5a, 0x21, 1, 2, 3, 4, 5, 6, 7, 8]);

/**
 * The simulated MX. Create with {@link MxSimulator.start}; always {@link MxSimulator.close}.
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
  #calls: CallEngine;
  #callLog = new CallLogStore();
  #mail = new VoicemailStore();
  #chunkSize: number;
  #sessions = new Set<SimSession>();
  #sessionDone = new Set<Promise<void>>();
  #monitors = new Map<string, Set<SimMonitor>>();
  #nextSession = 1;
  #received: SimMessage[] = [];
  #seq = 0;
  #waiters = new Set<Waiter>();
  #delay = 0;
  #silent = new Set<string>();
  #paused = false;
  #closed = false;
  #callModes: CallModeRecord[] = [];
  #cancels: CancelRecord[] = [];

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
    this.#chunkSize = Math.min(MAX_CHUNK, Math.max(1, Math.floor(opts.chunkSize ?? 32768)));
    this.#calls = new CallEngine(
      this.#users,
      this.#callLog,
      (name, exts, body) => this.#fanout(name, exts, body),
      this.#timers,
      {
        sn: this.sn,
        answerAfterMs: opts.answerAfterMs ?? 50,
        hangupAfterMs: opts.hangupAfterMs ?? 0,
      },
    );
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
    if (added.ext) this.#abEvent(`<AbAddUserEvent>${abEntryXml(added)}</AbAddUserEvent>`);
  }

  /** Changes a user; sends `AbUpdateUserEvent`. @throws {Error} for an unknown JID */
  updateUser(jid: string, patch: Partial<SimUser>): void {
    const old = this.#users.byJid(jid);
    if (!old) throw new Error(`unknown user ${jid}`);
    const u = this.#users.put({ ...old, ...patch, jid });
    if (u.ext) this.#abEvent(`<AbUpdateUserEvent>${abEntryXml(u)}</AbUpdateUserEvent>`);
  }

  /** Removes a user; sends `AbDeleteUserEvent`. Unknown JIDs are ignored. */
  removeUser(jid: string): void {
    const u = this.#users.remove(jid);
    if (u?.ext) {
      this.#abEvent(`<AbDeleteUserEvent><userId>${escapeXml(jid)}</userId></AbDeleteUserEvent>`);
    }
  }

  /** Current users (address-book order), copies. */
  users(): SimUser[] {
    return this.#users.contacts().map((u) => ({ ...u }));
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

  /** Clears a call as if `releasing` hung up (default: the callee). Returns false if unknown. */
  hangup(callId: number, releasing?: string): boolean {
    const c = this.#calls.get(callId);
    if (!c) return false;
    this.#calls.clear(c, releasing ?? c.callee);
    return true;
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
    return this.#cancels;
  }

  // ---------------------------------------------------------------------------------------
  // Observation

  /** The last 10 000 frames received from clients, oldest first. */
  get received(): ReadonlyArray<SimMessage> {
    return this.#received;
  }

  /** Sequence number the next received frame will get; pass it as `since` to {@link waitFor}. */
  mark(): number {
    return this.#seq + 1;
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
    if (since !== undefined) {
      for (const m of this.#received) {
        if (m.seq < since || m.name !== name) continue;
        const withEl = this.#withEl(m);
        if (withEl && this.#matches(predicate, withEl)) return Promise.resolve(withEl);
      }
    }
    if (this.#closed) return Promise.reject(new Error("simulator closed"));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        name,
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`timeout waiting for ${name}`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  #withEl(m: SimMessage): SimMessageWithEl | undefined {
    try {
      return { ...m, el: parseXml(m.xml) };
    } catch {
      return undefined;
    }
  }

  #matches(p: ((m: SimMessageWithEl) => boolean) | undefined, m: SimMessageWithEl): boolean {
    try {
      return !p || p(m);
    } catch {
      return false;
    }
  }

  /** Open client sessions. */
  sessionCount(): number {
    return this.#sessions.size;
  }

  /** Active call monitors over all sessions. */
  monitorCount(): number {
    let n = 0;
    for (const set of this.#monitors.values()) n += set.size;
    return n;
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
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new Error("simulator closed"));
    }
    this.#waiters.clear();
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
    for (const m of [...s.monitors.values()]) {
      this.#unmonitor(m);
      s.removeMonitor(m);
    }
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
    const msg: SimMessage = {
      seq: ++this.#seq,
      session: s.id,
      invokeId: f.invokeId,
      name: el.name || rootName(f.payload),
      xml: f.payload,
    };
    this.#record(msg, el);
    if (this.#silent.has(msg.name)) return;
    if (this.#delay > 0) {
      this.#timers.set(() => {
        if (!s.closed) this.#handle(s, f.invokeId, el);
      }, this.#delay);
    } else {
      this.#handle(s, f.invokeId, el);
    }
  }

  #record(msg: SimMessage, el: XmlElement): void {
    this.#received.push(msg);
    if (this.#received.length > RECEIVED_LIMIT + 1000) {
      this.#received.splice(0, this.#received.length - RECEIVED_LIMIT);
    }
    if (!this.#waiters.size) return;
    const withEl: SimMessageWithEl = { ...msg, el };
    for (const w of this.#waiters) {
      if (w.name !== msg.name || !this.#matches(w.predicate, withEl)) continue;
      clearTimeout(w.timer);
      this.#waiters.delete(w);
      w.resolve(withEl);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Command dispatch

  #reply(s: SimSession, id: number, xml: string): void {
    s.send(id, xml);
  }

  #error(s: SimSession, id: number, text: string): void {
    s.send(id, cstaError(text));
  }

  #handle(s: SimSession, id: number, el: XmlElement): void {
    try {
      this.#dispatch(s, id, el);
    } catch {
      // A handler bug must not take the simulator down; the client sees an error reply.
      this.#error(s, id, "internal error");
    }
  }

  #dispatch(s: SimSession, id: number, el: XmlElement): void {
    const name = el.name;
    if (name === "keepalive") return;
    if (name === "logout") {
      s.closeAfterFlush();
      return;
    }
    if (name === "loginRequest") {
      this.#login(s, id, el);
      return;
    }
    if (!s.loggedIn) {
      // Nothing is processed before the login (mx-protocol §2.1).
      this.#error(s, id, "not logged in");
      s.closeAfterFlush();
      return;
    }
    switch (name) {
      case "MonitorStart":
        return this.#monitorStart(s, id, el);
      case "MonitorStop":
        return this.#monitorStop(s, id, el);
      case "MonitorStartAb":
        s.abMonitor = true;
        return this.#reply(s, id, "<MonitorStartAbResponse></MonitorStartAbResponse>");
      case "MonitorStopAb":
        s.abMonitor = false;
        return this.#reply(s, id, "<MonitorStopAbResponse></MonitorStopAbResponse>");
      case "iq":
        return this.#iq(s, id, el);
      case "MakeCall":
        return this.#makeCall(s, id, el);
      case "ClearConnection":
      case "HoldCall":
      case "RetrieveCall":
      case "AnswerCall":
      case "SingleStepTransferCall":
      case "DeflectCall":
        return this.#callControl(s, id, el);
      case "MailGetListIncoming":
      case "MailReceiveIncoming":
      case "MailCancelReceive":
      case "MailSetStatus":
      case "UpdateVmNote":
      case "MailDeleteIncoming":
        return this.#mailCommand(s, id, el);
      default:
        return this.#error(s, id, `unknown command ${name}`);
    }
  }

  #login(s: SimSession, id: number, el: XmlElement): void {
    const failed = (code: number, text: string) =>
      this.#reply(
        s,
        id,
        `<loginFailed Code="${code}" sn="${escapeXml(this.sn)}" apiversion="${API_VERSION}">` +
          `${escapeXml(text)}</loginFailed>`,
      );
    if (s.loggedIn) return this.#error(s, id, "already logged in");
    const type = el.attrs.type ?? "User";
    const login = textAt(el, "userName");
    const pwd = child(el, "pwd")?.text ?? "";
    const u = this.#users.byLogin(login);
    const asServer = type === "Server";
    if (!u || (asServer && !u.server) || (!asServer && !u.ext)) {
      return failed(1, "Invalid user name or password");
    }
    let okLogin = false;
    if (this.#users.hashMatches(u, pwd)) {
      if (u.plainOnly) {
        s.plainRetryLogin = login;
        return failed(4, "Plain text password required");
      }
      okLogin = true;
    } else if (s.plainRetryLogin === login && pwd === u.password) {
      okLogin = true;
    }
    if (!okLogin) return failed(1, "Invalid user name or password");
    s.user = u;
    s.server = asServer;
    const ext = asServer ? "" : u.ext;
    const userId = asServer ? "0" : u.jid;
    this.#reply(
      s,
      id,
      `<loginResponce Code="0" sn="${escapeXml(this.sn)}" apiversion="${API_VERSION}"` +
        ` ext="${escapeXml(ext)}" userId="${escapeXml(userId)}">Login OK</loginResponce>`,
    );
    s.event(`<presence from="0" status="Available" mxStatus=""></presence>`);
  }

  // --- monitors ---------------------------------------------------------------------------

  #monitorStart(s: SimSession, id: number, el: XmlElement): void {
    const ext = textAt(el, "monitorObject", "deviceObject");
    if (!this.#users.byExt(ext)) return this.#error(s, id, "invalid device id");
    // A User session may only watch its own extension (mx-protocol §3.1).
    if (!s.server && ext !== s.user?.ext) return this.#error(s, id, "URM Denied");
    // A repeated MonitorStart for the same extension returns the existing monitor, so a
    // session never receives each event twice (the MX's behaviour is unknown, §7.12).
    let m = s.monitorOf(ext);
    if (!m) {
      m = s.addMonitor(ext);
      let set = this.#monitors.get(ext);
      if (!set) this.#monitors.set(ext, set = new Set());
      set.add(m);
    }
    this.#reply(
      s,
      id,
      `<MonitorStartResponse><monitorCrossRefID>${m.ref}</monitorCrossRefID>` +
        `<actualMonitorMediaClass><voice>true</voice></actualMonitorMediaClass>` +
        `</MonitorStartResponse>`,
    );
  }

  #monitorStop(s: SimSession, id: number, el: XmlElement): void {
    const m = s.monitors.get(intAt(el, "monitorCrossRefID"));
    if (!m) return this.#error(s, id, "invalid monitor id");
    s.removeMonitor(m);
    this.#unmonitor(m);
    this.#reply(s, id, "<MonitorStopResponse></MonitorStopResponse>");
  }

  #unmonitor(m: SimMonitor): void {
    const set = this.#monitors.get(m.ext);
    if (!set) return;
    set.delete(m);
    if (!set.size) this.#monitors.delete(m.ext);
  }

  /** Sends one event to every monitor of every listed extension. */
  #fanout(name: string, exts: readonly string[], body: (ext: string) => string): void {
    for (const ext of exts) {
      const set = this.#monitors.get(ext);
      if (!set?.size) continue;
      const inner = body(ext);
      for (const m of set) {
        m.session.event(
          `<${name}><monitorCrossRefID>${m.ref}</monitorCrossRefID>${inner}</${name}>`,
        );
      }
    }
  }

  // --- iq: address book, call log, call mode ------------------------------------------------

  #iq(s: SimSession, id: number, el: XmlElement): void {
    const kind = el.attrs.id ?? "";
    if (kind === "addressbook") {
      const contacts = this.#users.contacts();
      const index = Math.max(0, Math.trunc(Number(el.attrs.index ?? 0)) || 0);
      const page = contacts.slice(index * AB_PAGE, (index + 1) * AB_PAGE);
      s.event(
        `<ablist size="${contacts.length}" index="${index}">` +
          page.map(abEntryXml).join("") + `</ablist>`,
      );
      return;
    }
    if (kind === "calllog") {
      const ts = Number(el.attrs.timestamp ?? -1);
      const ext = s.server ? "" : s.user!.ext;
      // An empty log gets no reply at all (mx-protocol §3.5).
      for (const block of this.#callLog.blocks(ext, Number.isFinite(ts) ? ts : -1)) {
        s.event(block);
      }
      return;
    }
    if (kind === "mode" && el.attrs.type === "set") {
      const rec: CallModeRecord = {
        session: s.id,
        login: s.user!.login,
        ext: s.user!.ext,
        mode: el.attrs.mode ?? "",
        ringDelay: el.attrs.ringdelay ?? "",
        vmDelay: el.attrs.vmdelay ?? "",
        address: textAt(el, "address"),
      };
      s.callMode = rec;
      this.#callModes.push(rec);
      if (this.#callModes.length > RECEIVED_LIMIT) this.#callModes.shift();
      return; // fire-and-forget: no reply
    }
    this.#error(s, id, `unknown iq ${kind}`);
  }

  // --- calls --------------------------------------------------------------------------------

  #makeCall(s: SimSession, id: number, el: XmlElement): void {
    const from = textAt(el, "callingDevice");
    const to = textAt(el, "calledDirectoryNumber");
    if (!from) return this.#error(s, id, "invalid calling device");
    if (!to) return this.#error(s, id, "invalid called device");
    if (!s.server && from !== s.user!.ext) return this.#error(s, id, "invalid calling device");
    // Server sessions may originate from an outside number (MX dials both ends).
    const callbackAddress = s.callMode?.mode === "remote" ? s.callMode.address : undefined;
    const c = this.#calls.peekNextId();
    this.#reply(
      s,
      id,
      `<MakeCallResponse><callingDevice><callID>${c}</callID>` +
        `<deviceID>${escapeXml(from)}</deviceID></callingDevice>` +
        `<calledDevice>${escapeXml(to)}</calledDevice></MakeCallResponse>`,
    );
    this.#calls.start(from, to, { callbackAddress });
  }

  #callControl(s: SimSession, id: number, el: XmlElement): void {
    const container = el.children[0];
    const callId = intAt(container, "callID");
    const device = textAt(container, "deviceID");
    const e = this.#calls;
    switch (el.name) {
      case "ClearConnection": {
        const r = e.checkClear(callId, device);
        if (!r.ok) return this.#error(s, id, r.error);
        this.#reply(s, id, "<ClearConnectionResponse></ClearConnectionResponse>");
        return e.clear(r.value, device);
      }
      case "HoldCall": {
        const r = e.checkHold(callId, device);
        if (!r.ok) return this.#error(s, id, r.error);
        this.#reply(s, id, "<HoldCallResponse></HoldCallResponse>");
        return e.hold(r.value, device);
      }
      case "RetrieveCall": {
        const r = e.checkRetrieve(callId, device);
        if (!r.ok) return this.#error(s, id, r.error);
        this.#reply(s, id, "<RetrieveCallResponse></RetrieveCallResponse>");
        return e.retrieve(r.value, device);
      }
      case "AnswerCall": {
        const r = e.checkAlerting(callId, device);
        if (!r.ok) return this.#error(s, id, r.error);
        this.#reply(s, id, "<AnswerCallResponse></AnswerCallResponse>");
        return e.answer(r.value);
      }
      case "DeflectCall": {
        const to = textAt(el, "newDestination");
        if (!to) return this.#error(s, id, "invalid destination");
        const r = e.checkAlerting(callId, device);
        if (!r.ok) return this.#error(s, id, r.error);
        this.#reply(s, id, "<DeflectCallResponse></DeflectCallResponse>");
        return e.deflect(r.value, device, to);
      }
      case "SingleStepTransferCall": {
        const to = textAt(el, "transferredTo");
        const r = e.checkTransfer(callId, device, to);
        if (!r.ok) return this.#error(s, id, r.error);
        this.#reply(
          s,
          id,
          `<SingleStepTransferCallResponse><transferredCall><callID>${e.peekNextId()}</callID>` +
            `<deviceID>${escapeXml(to)}</deviceID></transferredCall>` +
            `</SingleStepTransferCallResponse>`,
        );
        e.transfer(r.value, device, to);
        return;
      }
    }
  }

  // --- voicemail ----------------------------------------------------------------------------

  #mailCommand(s: SimSession, id: number, el: XmlElement): void {
    // The mailbox is the session user's; a Server session names it in userID.
    const ext = s.server ? textAt(el, "userID") || textAt(el, "userId") : s.user!.ext;
    // Mail commands "do not work without" a monitor on the own extension (§3.6).
    if (!ext || !s.monitorOf(ext)) return this.#error(s, id, "monitor required");
    const mailId = el.name === "MailReceiveIncoming"
      ? textAt(el, "faxSessionID")
      : textAt(el, "mailId");
    switch (el.name) {
      case "MailGetListIncoming": {
        const list = [...this.#mail.list(ext)];
        let xml = mailListXml(list);
        // Keep the reply inside one frame: drop the newest entries if it would not fit.
        while (new TextEncoder().encode(xml).length > MAX_PAYLOAD && list.length) {
          list.splice(Math.max(0, Math.floor(list.length * 0.9)));
          xml = mailListXml(list);
        }
        return this.#reply(s, id, xml);
      }
      case "MailReceiveIncoming": {
        const m = this.#mail.get(ext, mailId);
        if (!m) return this.#error(s, id, "invalid mail id");
        const n = child(el, "nextChunk") ? (s.transfers.get(mailId) ?? 0) + 1 : 1;
        const total = chunkCount(m.content.length, this.#chunkSize);
        if (n > total) {
          s.transfers.delete(mailId);
          return this.#error(s, id, "no more chunks");
        }
        if (n === total) s.transfers.delete(mailId);
        else s.transfers.set(mailId, n);
        if (!s.send(id, chunkXml(m, n, this.#chunkSize))) {
          this.#error(s, id, "chunk too large");
        }
        return;
      }
      case "MailCancelReceive":
        this.#cancels.push({
          session: s.id,
          ext,
          mailId,
          chunksSent: s.transfers.get(mailId) ?? 0,
        });
        if (this.#cancels.length > RECEIVED_LIMIT) this.#cancels.shift();
        s.transfers.delete(mailId);
        return this.#reply(s, id, "<MailCancelReceiveResponse></MailCancelReceiveResponse>");
      case "MailSetStatus": {
        const m = this.#mail.get(ext, mailId);
        if (!m) return this.#error(s, id, "invalid mail id");
        const read = textAt(el, "read").toLowerCase();
        m.read = read === "true" || read === "1";
        return this.#reply(s, id, "<MailSetStatusResponse></MailSetStatusResponse>");
      }
      case "UpdateVmNote": {
        const m = this.#mail.get(ext, mailId);
        if (!m) return this.#error(s, id, "invalid mail id");
        m.note = child(el, "note")?.text ?? "";
        return this.#reply(s, id, "<UpdateVmNoteResponse></UpdateVmNoteResponse>");
      }
      case "MailDeleteIncoming":
        // Deleting an unknown or foreign message is not an error (seed 2).
        this.#mail.delete(ext, mailId);
        return this.#reply(s, id, "<MailDeleteIncomingResponse></MailDeleteIncomingResponse>");
    }
  }
}
