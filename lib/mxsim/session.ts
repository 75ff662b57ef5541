/**
 * One client connection of the simulated MX: reads frames, hands them to the server's
 * handler, writes replies and events in order through an {@link Outbox}, and holds the
 * per-session protocol state (login, monitors, voicemail transfers, call mode). Also the
 * handlers of the commands that change that state: `loginRequest` (mx-protocol §2) and
 * `iq mode` (callback mode, §3.4.2).
 *
 * @module
 */
import type { SimConn } from "./tls_listener.ts";
import { EVENT_INVOKE_ID, type Frame, FrameDecoder } from "../csta/frame.ts";
import { child, escapeXml, textAt, type XmlElement } from "../csta/xml.ts";
import { Outbox } from "./outbox.ts";
import type { SimUser, UserDirectory } from "./users.ts";
import { pushBounded } from "./received.ts";

/** API version announced in login replies. */
export const API_VERSION = "11";

/** One call monitor (`MonitorStart`) of a session. */
export interface SimMonitor {
  /** `monitorCrossRefID`, unique within the session. */
  ref: number;
  /** Monitored extension. */
  ext: string;
  /** Owning session. */
  session: SimSession;
}

/** A recorded `<iq type="set" id="mode">` (callback mode, mx-protocol §3.4.2). */
export interface CallModeRecord {
  /** Session number. */
  session: number;
  /** Login of the session's user. */
  login: string;
  /** Extension of the session's user. */
  ext: string;
  /** `remote` / `local`. */
  mode: string;
  /** `ringdelay` attribute as sent (`""` when absent). */
  ringDelay: string;
  /** `vmdelay` attribute as sent. */
  vmDelay: string;
  /** `<address>` text. */
  address: string;
}

/** Callbacks a session needs from its server. */
export interface SessionHost {
  /** Handles one decoded frame. Must not throw. */
  onFrame(s: SimSession, f: Frame): void;
  /** Called once when the session has ended. */
  onClosed(s: SimSession): void;
  /** Optional wire logger for outgoing frames. */
  wireLog?: (dir: "in" | "out", frame: string) => void;
}

/**
 * Protocol state of one connection.
 *
 * @example
 * ```ts
 * const s = new SimSession(1, conn, host); // reads frames at once, calls host.onFrame
 * s.send(7, "<MonitorStopResponse></MonitorStopResponse>");
 * s.error(8, "invalid monitor id");
 * s.closeAfterFlush();
 * ```
 */
export class SimSession {
  /** Session number (1, 2, … per simulator). */
  readonly id: number;
  /** Logged-in user, once logged in. */
  user?: SimUser;
  /** Logged in with `type="Server"`. */
  server = false;
  /** Login for which a Code 4 failure allows a plain-text retry. */
  plainRetryLogin?: string;
  /** Monitors by `monitorCrossRefID`. */
  readonly monitors = new Map<number, SimMonitor>();
  /** The same monitors by extension (server sessions may watch thousands). */
  readonly #byExt = new Map<string, SimMonitor>();
  /** Next `monitorCrossRefID`. */
  nextMonitorRef = 1;
  /** Sent `MonitorStartAb`. */
  abMonitor = false;
  /** Voicemail downloads in progress: mail id → last chunk sent. */
  readonly transfers = new Map<string, number>();
  /** Latest call-mode request. */
  callMode?: CallModeRecord;
  /** Whether the session has ended. */
  closed = false;

  #conn: SimConn;
  #host: SessionHost;
  #out: Outbox;
  #done: Promise<void>;

  /**
   * Starts reading at once.
   * @param id session number
   * @param conn the accepted connection
   * @param host server callbacks
   */
  constructor(id: number, conn: SimConn, host: SessionHost) {
    this.id = id;
    this.#conn = conn;
    this.#host = host;
    this.#out = new Outbox(conn, () => this.close());
    // Events follow replies in separate small writes; with Nagle's algorithm each would wait
    // for the client's delayed ACK (~40 ms).
    try {
      (conn as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    } catch {
      // Not a TCP socket: nothing to tune.
    }
    this.#done = this.#readLoop();
  }

  /** Resolves when the read loop and pending writes have finished. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Whether the session has logged in. */
  get loggedIn(): boolean {
    return this.user !== undefined;
  }

  /** The monitor of `ext` on this session, if any. */
  monitorOf(ext: string): SimMonitor | undefined {
    return this.#byExt.get(ext);
  }

  /** Registers a new monitor of `ext` and returns it. */
  addMonitor(ext: string): SimMonitor {
    const m: SimMonitor = { ref: this.nextMonitorRef++, ext, session: this };
    this.monitors.set(m.ref, m);
    this.#byExt.set(ext, m);
    return m;
  }

  /** Forgets a monitor. */
  removeMonitor(m: SimMonitor): void {
    this.monitors.delete(m.ref);
    if (this.#byExt.get(m.ext) === m) this.#byExt.delete(m.ext);
  }

  /** Queues one frame (reply or event). Never throws; oversize payloads are dropped. */
  send(invokeId: number, xml: string): boolean {
    if (this.closed || !this.#out.pushFrame(invokeId, xml)) return false;
    this.#host.wireLog?.("out", xml);
    return true;
  }

  /** Queues a `CSTAErrorCode` reply with `text` as its `privateErrorCode`. */
  error(invokeId: number, text: string): void {
    this.send(invokeId, cstaError(text));
  }

  /** Queues an unsolicited message (invoke id 9999). */
  event(xml: string): void {
    this.send(EVENT_INVOKE_ID, xml);
  }

  /** Queues raw bytes (fault injection). */
  sendRaw(bytes: Uint8Array): void {
    if (!this.closed) this.#out.pushRaw(bytes);
  }

  /** Closes after everything queued so far has been written. */
  closeAfterFlush(): void {
    if (this.closed) return;
    this.#out.drained().then(() => this.close());
  }

  /** Closes the socket at once (abrupt drop). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer or the runtime.
    }
  }

  async #readLoop(): Promise<void> {
    const dec = new FrameDecoder();
    const buf = new Uint8Array(64 * 1024);
    try {
      while (!this.closed) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        // FrameError (garbage header) ends this session only.
        for (const f of dec.push(buf.subarray(0, n))) {
          if (this.closed) break;
          this.#host.onFrame(this, f);
        }
      }
    } catch {
      // Read errors, TLS failures and malformed frames all just end the session.
    } finally {
      this.close();
      await this.#out.drained();
      this.#host.onClosed(this);
    }
  }
}

/**
 * A `CSTAErrorCode` payload.
 *
 * @example
 * ```ts
 * cstaError("invalid call id");
 * // <CSTAErrorCode><privateErrorCode>invalid call id</privateErrorCode></CSTAErrorCode>
 * ```
 */
export function cstaError(text: string): string {
  return `<CSTAErrorCode><privateErrorCode>${escapeXml(text)}</privateErrorCode></CSTAErrorCode>`;
}

/**
 * Handles `loginRequest` (mx-protocol §2): checks base64(SHA-1) of the password (a
 * `plainOnly` user gets `loginFailed Code="4"` first and may then retry with the plain text),
 * answers `loginResponce` and a `presence` event, or `loginFailed`.
 *
 * @example
 * ```ts
 * handleLogin(users, "63022", session, invokeId, parseXml(payload));
 * session.loggedIn; // true after a good password
 * ```
 */
export function handleLogin(
  users: UserDirectory,
  sn: string,
  s: SimSession,
  id: number,
  el: XmlElement,
): void {
  const failed = (code: number, text: string): void => {
    s.send(
      id,
      `<loginFailed Code="${code}" sn="${escapeXml(sn)}" apiversion="${API_VERSION}">` +
        `${escapeXml(text)}</loginFailed>`,
    );
  };
  if (s.loggedIn) return s.error(id, "already logged in");
  const type = el.attrs.type ?? "User";
  const login = textAt(el, "userName");
  const pwd = child(el, "pwd")?.text ?? "";
  const u = users.byLogin(login);
  const asServer = type === "Server";
  if (!u || (asServer && !u.server) || (!asServer && !u.ext)) {
    return failed(1, "Invalid user name or password");
  }
  let okLogin = false;
  if (users.hashMatches(u, pwd)) {
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
  s.send(
    id,
    `<loginResponce Code="0" sn="${escapeXml(sn)}" apiversion="${API_VERSION}"` +
      ` ext="${escapeXml(ext)}" userId="${escapeXml(userId)}">Login OK</loginResponce>`,
  );
  s.event(`<presence from="0" status="Available" mxStatus=""></presence>`);
}

/**
 * Handles `<iq type="set" id="mode">` (callback mode, mx-protocol §3.4.2): remembers it on the
 * session (a following `MakeCall` rings `address` first) and in `seen`. Fire-and-forget: no
 * reply.
 *
 * @example
 * ```ts
 * const seen: CallModeRecord[] = [];
 * handleCallMode(session, parseXml('<iq type="set" id="mode" mode="remote"/>'), seen);
 * seen[0].mode; // "remote"
 * ```
 */
export function handleCallMode(s: SimSession, el: XmlElement, seen: CallModeRecord[]): void {
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
  pushBounded(seen, rec);
}
