/**
 * Everything MXFlex does with one MX: the server-account session (self-healing), the cached
 * address book kept current by change notifications, reference-counted monitors on user
 * extensions, routing of call events by extension, the call operations of the Flex API on the
 * server session (make a call, call control, transfer), and short-lived user sessions
 * ({@link UserSession}).
 *
 * Routes use this class (through `lib/mx/mod.ts`) and never the CSTA client below it.
 *
 * @module
 */
import {
  type Backoff,
  type CallAction,
  callControl,
  type CallEvent,
  type ClientState,
  type ConnectionOptions,
  consultationTransfer,
  CstaClient,
  CstaConnection,
  decodeAbEvent,
  decodeCallEvent,
  decodePresence,
  fetchAddressBook,
  type LoginInfo,
  type MakeCallResult,
  monitorAddressBook,
  type MxTlsOptions,
  placeCall,
  singleStepTransfer,
  UnavailableError,
  type WireLogger,
} from "../csta/mod.ts";
import type { Contact, UserLoginAttrs } from "./types.ts";
import { UserSession } from "./user_session.ts";
import type { MxConfig } from "../config.ts";
import type { Logger } from "../log.ts";

/**
 * User sessions ({@link MxSession.withUser}) one user may have open at once on this instance.
 * Each is an MX connection logged in as the user; without a bound, one client (a token, or
 * Basic credentials) could open hundreds by starting downloads it never reads.
 */
export const MAX_USER_SESSIONS = 10;

/**
 * A user already has {@link MAX_USER_SESSIONS} user sessions open: refused, not queued.
 *
 * @example
 * ```ts
 * throw new UserSessionLimitError(); // "too many MX sessions for this user"
 * ```
 */
export class UserSessionLimitError extends Error {
  constructor() {
    super("too many MX sessions for this user");
    this.name = "UserSessionLimitError";
  }
}

/** Where trust-on-first-use fingerprints are remembered. */
export interface TrustStore {
  get(mx: string): string | undefined;
  set(mx: string, fingerprint: string): void;
}

/** Options for {@link MxSession}. */
export interface MxSessionOptions {
  log: Logger;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  keepAliveMs?: number;
  wireLog?: WireLogger;
  backoff?: Backoff;
  /** Backoff after the MX refused the server account; default `AUTH_BACKOFF` (30 s to 10 min). */
  authBackoff?: Backoff;
  trust?: TrustStore;
  /** PEM text of `tls.ca`, already read by the caller. */
  caPem?: string;
  /** loginRequest attributes for the server account (Flex: platform iPhone, version 1.0). */
  serverLogin?: { platform?: string; version?: string };
  /** Metrics hooks passed to every connection of this MX. */
  observer?: ConnectionOptions["observer"];
}

/** Listener for routed call events. */
export type CallEventListener = (ext: string, ev: CallEvent) => void;

/** What happened to an address-book entry. */
export type ContactAction = "added" | "updated" | "removed";

/**
 * Listener for address-book changes, called after the cache changed: `contact` is the new
 * entry (for `removed`: the entry as it was).
 */
export type ContactListener = (action: ContactAction, contact: Contact) => void;

/** Listener for presence changes of contacts, called after the cache changed. */
export type PresenceListener = (contact: Contact) => void;

/** Fields that make two entries of the address book differ (everything). */
const CONTACT_FIELDS = [
  "presence",
  "presenceNote",
  "firstName",
  "lastName",
  "ext",
  "homePhone",
  "cellPhone",
  "email",
  "homeSystem",
  "did",
  "exchangeId",
] as const;

function sameContact(a: Contact, b: Contact): boolean {
  return CONTACT_FIELDS.every((k) => a[k] === b[k]);
}

/**
 * @example
 * ```ts
 * const mx = new MxSession(cfg.mx[0], { log });
 * mx.start();
 * await mx.ready();
 * mx.onCallEvent((ext, ev) => console.log(ext, ev.name));
 * await mx.acquire("3095", "token:abc");
 * ```
 */
export class MxSession {
  /** Config name (`/mx/<name>/…`). */
  readonly name: string;
  /**
   * The self-healing server-account session, for diagnostics and tests. Routes use the
   * operations of this class instead (`makeCall`, `callControl`, `withUser`, …).
   */
  readonly client: CstaClient;

  #cfg: MxConfig;
  #opts: MxSessionOptions;
  #contacts = new Map<string, Contact>();
  #contactsVersion = 0;
  #holders = new Map<string, Set<string>>();
  #listeners = new Set<CallEventListener>();
  /** User-session connections (see {@link openUser}), ended by {@link stop}. */
  #userConns = new Set<CstaConnection>();
  /** Open {@link withUser} sessions per user JID (bounded by {@link MAX_USER_SESSIONS}). */
  #userSessions = new Map<string, number>();
  #stopping = new AbortController();
  #contactListeners = new Set<ContactListener>();
  #presenceListeners = new Set<PresenceListener>();
  #releaseListeners = new Set<(ext: string) => void>();
  #byExt?: { version: number; map: Map<string, Contact> };

  /** @param cfg this MX's config; @param opts shared options */
  constructor(cfg: MxConfig, opts: MxSessionOptions) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#opts = opts;
    this.client = new CstaClient({
      ...this.#connectionOptions(),
      credentials: {
        type: "Server",
        userName: cfg.login,
        password: cfg.password,
        ...opts.serverLogin,
      },
      backoff: opts.backoff,
      authBackoff: opts.authBackoff,
      accountLabel: `the server account (config ${cfg.key}.login)`,
      log: (level, msg) => opts.log[level](`mx ${cfg.name}: ${msg}`),
      onSession: async (conn) => {
        // MonitorStartAb before the fetch, so no change between the two is missed.
        await monitorAddressBook(conn);
        const list = await fetchAddressBook(conn);
        this.#reload(list);
      },
    });
    this.client.onMessage((msg, ext) => {
      if (ext !== undefined) {
        const ev = decodeCallEvent(msg);
        if (ev) {
          for (const l of this.#listeners) l(ext, ev);
        }
        return;
      }
      const ab = decodeAbEvent(msg);
      if (ab) {
        if (ab.kind === "delete") {
          const old = this.#contacts.get(ab.jid);
          if (!old) return;
          this.#contacts.delete(ab.jid);
          this.#contactsVersion++;
          this.#emitContact("removed", old);
        } else {
          const old = this.#contacts.get(ab.contact.jid);
          if (old && sameContact(old, ab.contact)) return;
          this.#contacts.set(ab.contact.jid, ab.contact);
          this.#contactsVersion++;
          this.#emitContact(old ? "updated" : "added", ab.contact);
        }
        return;
      }
      const p = decodePresence(msg);
      // from="0" is the session's own account (the server account): not a contact.
      if (p && p.from !== "0") {
        const c = this.#contacts.get(p.from);
        if (!c) return;
        const next = {
          ...c,
          presence: p.status ?? c.presence,
          presenceNote: p.note ?? c.presenceNote,
        };
        if (next.presence === c.presence && next.presenceNote === c.presenceNote) return;
        this.#contacts.set(c.jid, next);
        this.#contactsVersion++;
        for (const l of this.#presenceListeners) l(next);
      }
    });
  }

  /**
   * Replaces the address book with a fresh fetch (each server login). After the first load,
   * what changed while the session was down is announced like live changes.
   */
  #reload(list: Contact[]): void {
    const prev = this.#contacts;
    const first = this.#contactsVersion === 0;
    this.#contacts = new Map(list.map((c) => [c.jid, c]));
    this.#contactsVersion++;
    if (first) return;
    for (const c of this.#contacts.values()) {
      const old = prev.get(c.jid);
      if (!old) this.#emitContact("added", c);
      else if (!sameContact(old, c)) this.#emitContact("updated", c);
    }
    for (const old of prev.values()) {
      if (!this.#contacts.has(old.jid)) this.#emitContact("removed", old);
    }
  }

  #emitContact(action: ContactAction, c: Contact): void {
    for (const l of this.#contactListeners) l(action, c);
  }

  /** MX serial number (known after the first login). */
  get sn(): string | undefined {
    return this.client.info?.sn;
  }

  /** Server session state. */
  get state(): ClientState {
    return this.client.state;
  }

  /** Number of successful reconnects of the server session. */
  get reconnects(): number {
    return this.client.reconnects;
  }

  /** Why the server session last failed ("" while it is up). */
  get lastError(): string {
    return this.client.lastError;
  }

  /** When the server session's next connection attempt is due, while it waits. */
  get nextAttempt(): Date | undefined {
    return this.client.nextAttempt;
  }

  /**
   * Adds a listener for server-session state changes; returns the remover.
   *
   * @example
   * ```ts
   * mx.onState((s) => s === "connected" && restoreMonitors());
   * ```
   */
  onState(l: (s: ClientState) => void): () => void {
    return this.client.onState(l);
  }

  /**
   * Changes whenever the address book changes (for ETags); 0 until it is first loaded.
   */
  get contactsVersion(): number {
    return this.#contactsVersion;
  }

  /**
   * The cached address book. The one "address book not loaded yet" check of the API: it is
   * loaded with every server login, before the session reports "connected", and kept (and
   * updated) across outages afterwards.
   * @throws {UnavailableError} before the first load ("MX unavailable: address book not loaded yet")
   *
   * @example
   * ```ts
   * const byExt = new Map(mx.contacts().map((c) => [c.ext, c]));
   * ```
   */
  contacts(): Contact[] {
    if (this.#contactsVersion === 0) {
      throw new UnavailableError("MX unavailable: address book not loaded yet");
    }
    return [...this.#contacts.values()];
  }

  /** Looks a contact up by JID. */
  contact(jid: string): Contact | undefined {
    return this.#contacts.get(jid);
  }

  /** Looks a contact up by extension (an index rebuilt when the address book changed). */
  contactByExt(ext: string): Contact | undefined {
    if (this.#byExt?.version !== this.#contactsVersion) {
      const map = new Map<string, Contact>();
      for (const c of this.#contacts.values()) if (c.ext) map.set(c.ext, c);
      this.#byExt = { version: this.#contactsVersion, map };
    }
    return this.#byExt.map.get(ext);
  }

  /**
   * Adds a listener for address-book changes (change events, and what a reload after an
   * outage found changed); returns the remover. The cache already holds the change.
   *
   * @example
   * ```ts
   * mx.onContactChange((action, c) => console.log(action, c.ext));
   * ```
   */
  onContactChange(l: ContactListener): () => void {
    this.#contactListeners.add(l);
    return () => this.#contactListeners.delete(l);
  }

  /**
   * Adds a listener for contacts' presence changes (the MX's `presence` messages on the
   * server session); returns the remover. The cache already holds the new presence.
   *
   * @example
   * ```ts
   * mx.onPresence((c) => console.log(c.ext, c.presence, c.presenceNote));
   * ```
   */
  onPresence(l: PresenceListener): () => void {
    this.#presenceListeners.add(l);
    return () => this.#presenceListeners.delete(l);
  }

  /**
   * Adds a listener called when the last reference on an extension is dropped (its monitor
   * stops, so no more events come for it); returns the remover.
   */
  onRelease(l: (ext: string) => void): () => void {
    this.#releaseListeners.add(l);
    return () => this.#releaseListeners.delete(l);
  }

  /** Starts the server session in the background. */
  start(): void {
    this.client.start();
  }

  /** Waits until the server session is up. */
  ready(timeoutMs?: number): Promise<void> {
    return this.client.ready(timeoutMs);
  }

  /**
   * Stops the server session, and ends every user session still connecting, logging in or
   * open (their requests fail at once with `ConnectionClosedError`), so stopping never waits
   * for an MX that says nothing.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const conn of this.#userConns) conn.destroy("server stopping");
    await this.client.stop();
  }

  /** Adds a call-event listener; returns the remover. */
  onCallEvent(l: CallEventListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /**
   * Takes a reference on the monitor of `ext` for `holder` (e.g. a token id). The first
   * reference starts the MX monitor.
   * @throws {UnavailableError} when the MX is down (nothing is recorded then)
   */
  async acquire(ext: string, holder: string): Promise<void> {
    // Throws the session's own UnavailableError, which says why ("MX connect timeout", …).
    if (this.client.state !== "connected") void this.client.connection;
    await this.#hold(ext, holder);
  }

  /**
   * Registers a reference that must survive MX outages (push registrations restored at
   * start-up): recorded even while disconnected, started on (re)connect.
   */
  acquirePersistent(ext: string, holder: string): Promise<void> {
    return this.#hold(ext, holder);
  }

  async #hold(ext: string, holder: string): Promise<void> {
    let set = this.#holders.get(ext);
    if (!set) {
      set = new Set();
      this.#holders.set(ext, set);
    }
    set.add(holder);
    try {
      await this.client.monitor(ext);
    } catch (err) {
      // The MX refused this extension: a holder without a monitor would only mislead.
      set.delete(holder);
      if (set.size === 0) this.#holders.delete(ext);
      throw err;
    }
  }

  /** Drops a reference; the last one stops the MX monitor. Returns the remaining count. */
  async release(ext: string, holder: string): Promise<number> {
    const set = this.#holders.get(ext);
    if (!set || !set.delete(holder)) return set?.size ?? 0;
    if (set.size > 0) return set.size;
    this.#holders.delete(ext);
    for (const l of this.#releaseListeners) l(ext);
    await this.client.unmonitor(ext);
    return 0;
  }

  /** Number of references on `ext`. */
  holders(ext: string): number {
    return this.#holders.get(ext)?.size ?? 0;
  }

  /** Whether `holder` holds a reference on `ext`. */
  holds(ext: string, holder: string): boolean {
    return this.#holders.get(ext)?.has(holder) ?? false;
  }

  /** Monitored extensions and their reference counts. */
  monitorTable(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [ext, set] of this.#holders) out[ext] = set.size;
    return out;
  }

  /**
   * Places a call from a device (extension) to a number on the server session (Flex API).
   * @throws {UnavailableError} when the server session is down
   * @throws {RefusedError} when the MX refuses the call
   *
   * @example
   * ```ts
   * const { callId, deviceId } = await mx.makeCall("3095", "3099");
   * ```
   */
  async makeCall(from: string, to: string): Promise<MakeCallResult> {
    return await placeCall(this.client.connection, from, to);
  }

  /**
   * Holds, retrieves, answers or hangs up (`clear`) one call leg on the server session; the
   * outcome arrives as a call event (`HeldEvent`, …).
   * @throws {UnavailableError} when the server session is down
   * @throws {RefusedError} when the MX refuses (e.g. an unknown call)
   *
   * @example
   * ```ts
   * await mx.callControl("hold", 38, "3095");
   * ```
   */
  async callControl(action: CallAction, callId: number, deviceId: string): Promise<void> {
    await callControl(this.client.connection, action, callId, deviceId);
  }

  /**
   * Blind transfer of a call leg to `to`; returns the transferred leg.
   * @throws {UnavailableError} when the server session is down
   * @throws {RefusedError} when the MX refuses
   *
   * @example
   * ```ts
   * const leg = await mx.transferCall(38, "3095", "3099");
   * ```
   */
  async transferCall(
    callId: number,
    deviceId: string,
    to: string,
  ): Promise<{ callId: number; deviceId: string }> {
    return await singleStepTransfer(this.client.connection, callId, deviceId, to);
  }

  /**
   * The first step of a consultation transfer: holds the call and calls `to` from the same
   * device. If the second call cannot be placed, the held call is taken back (best effort)
   * and the MX's error is thrown. Complete with {@link completeTransfer}; to cancel, hang up
   * the consultation call and retrieve the held one.
   * @throws {UnavailableError} when the server session is down
   * @throws {RefusedError} when the MX refuses the hold or the call
   *
   * @example
   * ```ts
   * const { call, heldCall } = await mx.consultTransfer(38, "3095", "3099");
   * await mx.completeTransfer(heldCall.callId, call.callId, "3095");
   * ```
   */
  async consultTransfer(
    callId: number,
    deviceId: string,
    to: string,
  ): Promise<{ call: MakeCallResult; heldCall: { callId: number; deviceId: string } }> {
    const conn = this.client.connection;
    await callControl(conn, "hold", callId, deviceId);
    try {
      const call = await placeCall(conn, deviceId, to);
      return { call, heldCall: { callId, deviceId } };
    } catch (err) {
      await callControl(conn, "retrieve", callId, deviceId).catch(() => {});
      throw err;
    }
  }

  /**
   * Completes a consultation transfer: the held call's other party is connected with the
   * consultation call's, and `deviceId` leaves both (`TransferCall`).
   * @throws {UnavailableError} when the server session is down
   * @throws {RefusedError} when the MX refuses
   *
   * @example
   * ```ts
   * await mx.completeTransfer(38, 41, "3095");
   * ```
   */
  async completeTransfer(
    heldCallId: number,
    consultCallId: number,
    deviceId: string,
  ): Promise<void> {
    await consultationTransfer(this.client.connection, heldCallId, consultCallId, deviceId);
  }

  /**
   * Opens a separate session logged in as a user. The caller must `close()` it; prefer
   * {@link withUser}.
   * @throws {LoginFailedError} wrong credentials
   * @throws {UnreachableError} (or another `CstaError`) when the MX cannot be reached
   *
   * @example
   * ```ts
   * const user = await mx.openUser("dmitry", "secret", { platform: "iPhone", version: "1.0" });
   * try { await user.voicemails(); } finally { user.close(); }
   * ```
   */
  async openUser(
    login: string,
    password: string,
    attrs: UserLoginAttrs = {},
  ): Promise<UserSession> {
    const conn = await CstaConnection.connect({
      ...this.#connectionOptions(),
      signal: this.#stopping.signal,
    });
    this.#userConns.add(conn);
    void conn.closed.then(() => this.#userConns.delete(conn));
    if (this.#stopping.signal.aborted) conn.destroy("server stopping");
    try {
      await conn.login({ type: "User", userName: login, password, ...attrs });
      return new UserSession(conn);
    } catch (err) {
      conn.destroy("login failed");
      throw err;
    }
  }

  /**
   * Runs `fn` on a fresh session logged in as the user and closes it afterwards, also when
   * `fn` fails. With `keepOpen`, a session whose `fn` succeeded stays open and belongs to
   * what `fn` returned (a voicemail download, whose stream closes it at its end). A user
   * holds at most {@link MAX_USER_SESSIONS} of these at once (counted per JID, after login).
   * @throws {LoginFailedError} wrong credentials, and whatever `fn` throws
   * @throws {UserSessionLimitError} when the user already has that many open
   *
   * @example
   * ```ts
   * const log = await mx.withUser("dmitry", "secret", (u) => u.callLog(-1));
   * ```
   */
  async withUser<T>(
    login: string,
    password: string,
    fn: (user: UserSession) => Promise<T>,
    opts: { attrs?: UserLoginAttrs; keepOpen?: boolean } = {},
  ): Promise<T> {
    const user = await this.openUser(login, password, opts.attrs);
    const open = this.#userSessions.get(user.jid) ?? 0;
    if (open >= MAX_USER_SESSIONS) {
      user.close();
      throw new UserSessionLimitError();
    }
    this.#userSessions.set(user.jid, open + 1);
    void user.closed.then(() => {
      const n = (this.#userSessions.get(user.jid) ?? 1) - 1;
      if (n > 0) this.#userSessions.set(user.jid, n);
      else this.#userSessions.delete(user.jid);
    });
    let handedOff = false;
    try {
      const out = await fn(user);
      handedOff = opts.keepOpen === true;
      return out;
    } finally {
      if (!handedOff) user.close();
    }
  }

  /**
   * Verifies user credentials with a throw-away session (closed right after the reply).
   * @throws {LoginFailedError} wrong credentials
   *
   * @example
   * ```ts
   * const { jid, ext } = await mx.verifyUser("dmitry", "secret", { platform: "CRM", version: "1.0" });
   * ```
   */
  async verifyUser(
    login: string,
    password: string,
    attrs: UserLoginAttrs = {},
  ): Promise<LoginInfo> {
    const user = await this.openUser(login, password, attrs);
    user.close();
    return user.info;
  }

  #connectionOptions(): ConnectionOptions {
    const cfg = this.#cfg;
    const o = this.#opts;
    let tls: MxTlsOptions | false = false;
    if (!cfg.tls.plain) {
      const trust = o.trust;
      tls = {
        ca: o.caPem ? [o.caPem] : undefined,
        fingerprint: cfg.tls.fingerprint,
        tofu: (fp) => {
          if (!trust) return true;
          const known = trust.get(cfg.name);
          if (!known) {
            trust.set(cfg.name, fp);
            o.log.info(`mx ${cfg.name}: trusting certificate ${fp} (first use)`);
            return true;
          }
          if (known === fp) return true;
          if (cfg.tls.allowChangedCertificate) {
            o.log.warn(`mx ${cfg.name}: certificate changed to ${fp}; accepted by config`);
            trust.set(cfg.name, fp);
            return true;
          }
          o.log.error(`mx ${cfg.name}: certificate changed from ${known} to ${fp}; refusing`);
          return false;
        },
      };
    }
    return {
      hostname: cfg.hostname,
      port: cfg.port,
      tls,
      connectTimeoutMs: o.connectTimeoutMs,
      requestTimeoutMs: o.requestTimeoutMs,
      keepAliveMs: o.keepAliveMs,
      wireLog: o.wireLog,
      onBadMessage: (err) => o.log.warn(`mx ${cfg.name}: bad message: ${err.message}`),
      observer: o.observer,
    };
  }
}
