/**
 * One CSTA session with an MX: a transport, the frame codec, login, invoke-id allocation,
 * request/response matching, keep-alive and orderly shutdown. It does not reconnect: that
 * is {@link ../client.ts}'s job.
 *
 * Replies are matched three ways (mx-protocol §1.6): by invoke id; by element name for the
 * separately named data messages (`ablist`, `callloginfo`) whatever their id; everything
 * else with id 9999 (or an id nobody waits for) is an unsolicited message delivered to the
 * message listeners.
 *
 * @module
 */
import { encodeFrame, EVENT_INVOKE_ID, FrameDecoder } from "./frame.ts";
import { openTransport, type Transport, type TransportOptions } from "./transport.ts";
import { parseXml, rootName, type XmlElement } from "./xml.ts";
import type { WireLogger } from "./wire_log.ts";
import {
  BusyError,
  ConnectionClosedError,
  FrameError,
  LoginFailedError,
  RefusedError,
  TimeoutError,
  XmlError,
} from "./errors.ts";
import { isErrorReply, parseErrorReply } from "./commands/error_reply.ts";
import {
  KEEPALIVE,
  loginRequest,
  logout,
  parseLoginReply,
  shouldRetryPlain,
} from "./commands/session.ts";
import { hashPassword, isHashedPassword } from "./password.ts";
import type { LoginInfo } from "./types.ts";

/**
 * Marks a promise as handled so that a waiter registered before its request is sent cannot
 * crash the process with an unhandled rejection when the session dies first; callers that
 * await it still see the rejection.
 */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Credentials and login attributes. */
export interface Credentials {
  type: "User" | "Server" | "Mobile";
  userName: string;
  /** Plain password, or an already hashed one (base64 SHA-1 + "\n"). */
  password: string;
  platform?: string;
  version?: string;
  clientType?: string;
}

/** Options for {@link CstaConnection.connect}. */
export interface ConnectionOptions extends TransportOptions {
  /** Reply timeout for each request; default 7 s (mx-protocol §1.8). */
  requestTimeoutMs?: number;
  /** Send `<keepalive />` after this long without sending; default 60 s. */
  keepAliveMs?: number;
  /** Most requests that may wait for a reply at once; default 1 000. */
  maxPending?: number;
  /** Wire log sink (the `-csta` flag). */
  wireLog?: WireLogger;
  /** Called for payloads that are not well-formed XML (logged by the owner). */
  onBadMessage?: (err: Error) => void;
  /** Metrics hooks: frames in/out, request durations, timeouts. */
  observer?: {
    frame(dir: "in" | "out"): void;
    command(ms: number): void;
    timeout(): void;
  };
}

/** A listener for unsolicited messages (events, presence, address-book changes…). */
export type MessageListener = (msg: XmlElement, invokeId: number) => void;

interface Pending {
  resolve: (e: XmlElement) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface NameWaiter {
  names: ReadonlySet<string>;
  deliver: (e: XmlElement) => void;
  fail: (e: Error) => void;
}

/**
 * A logged-in (or logging-in) CSTA session.
 *
 * @example
 * ```ts
 * const conn = await CstaConnection.connect({ hostname: "127.0.0.1", port: 7778, tls: {} });
 * const info = await conn.login({ type: "Server", userName: "server", password: "secret" });
 * conn.onMessage((msg) => console.log(msg.name));
 * ```
 */
export class CstaConnection {
  /** Login reply, once logged in. */
  info?: LoginInfo;
  /** Resolves with the reason once the session is over (never rejects). */
  readonly closed: Promise<Error>;

  #t: Transport;
  #decoder = new FrameDecoder();
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #waiters: NameWaiter[] = [];
  #listeners = new Set<MessageListener>();
  #timeoutMs: number;
  #keepAliveMs: number;
  #maxPending: number;
  #wireLog?: WireLogger;
  #onBad?: (err: Error) => void;
  #obs?: ConnectionOptions["observer"];
  #lastSent = Date.now();
  #kaTimer?: ReturnType<typeof setTimeout>;
  #closeReason?: Error;
  #resolveClosed!: (e: Error) => void;

  private constructor(t: Transport, opts: ConnectionOptions) {
    this.#t = t;
    this.#timeoutMs = opts.requestTimeoutMs ?? 7_000;
    this.#keepAliveMs = opts.keepAliveMs ?? 60_000;
    this.#maxPending = opts.maxPending ?? 1_000;
    this.#wireLog = opts.wireLog;
    this.#onBad = opts.onBadMessage;
    this.#obs = opts.observer;
    this.closed = new Promise((r) => this.#resolveClosed = r);
    t.onData((chunk) => this.#onData(chunk));
    t.onClose((err) => this.#shutdown(err ?? new ConnectionClosedError()));
    this.#armKeepAlive(this.#keepAliveMs);
  }

  /** Opens the transport; call {@link login} next. */
  static async connect(opts: ConnectionOptions): Promise<CstaConnection> {
    const t = await openTransport(opts);
    return new CstaConnection(t, opts);
  }

  /** SHA-256 fingerprint of the MX certificate (TLS only). */
  get fingerprint(): string | undefined {
    return this.#t.fingerprint;
  }

  /** True once the session has ended. */
  get isClosed(): boolean {
    return this.#closeReason !== undefined;
  }

  /** Number of requests waiting for a reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The default reply timeout of this connection. */
  get requestTimeoutMs(): number {
    return this.#timeoutMs;
  }

  /**
   * Logs in. Sends the SHA-1 hash; if the MX answers `loginFailed` with code 2 or 4 and API
   * version > 2, repeats once with the plain password (the rule the originals intended).
   * @throws {LoginFailedError} when the MX refuses the credentials
   */
  async login(c: Credentials): Promise<LoginInfo> {
    const preHashed = isHashedPassword(c.password);
    const hashed = preHashed ? c.password : await hashPassword(c.password);
    const attempt = async (pwd: string) =>
      parseLoginReply(
        await this.request(loginRequest({ ...c, password: pwd }), { rawErrors: true }),
      );
    try {
      this.info = await attempt(hashed);
    } catch (err) {
      if (err instanceof LoginFailedError && shouldRetryPlain(err) && !preHashed) {
        this.info = { ...await attempt(c.password), plainPassword: true };
      } else {
        throw err;
      }
    }
    return this.info;
  }

  /** Adds a listener for unsolicited messages; returns a function that removes it. */
  onMessage(l: MessageListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /** Sends a payload without waiting for anything; returns the invoke id used. */
  send(payload: string): number {
    if (this.#closeReason) throw new ConnectionClosedError(this.#closeReason.message);
    const id = this.#allocId();
    this.#write(id, payload);
    return id;
  }

  /**
   * Sends a payload and waits for the reply with the same invoke id.
   * @throws {RefusedError} when the MX answers `CSTAErrorCode` (unless `rawErrors`)
   * @throws {TimeoutError} when no reply arrives in time
   */
  request(
    payload: string,
    opts: { timeoutMs?: number; rawErrors?: boolean; onReply?: (e: XmlElement) => void } = {},
  ): Promise<XmlElement> {
    if (this.#closeReason) {
      return Promise.reject(new ConnectionClosedError(this.#closeReason.message));
    }
    if (this.#pending.size >= this.#maxPending) return Promise.reject(new BusyError());
    const id = this.#allocId();
    let bytes: Uint8Array;
    try {
      // Encode before registering: an oversize payload must not leave a pending entry whose
      // promise nobody holds (its later rejection would be unhandled).
      bytes = encodeFrame(id, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const onReply = opts.onReply;
    const p = new Promise<XmlElement>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#obs?.timeout();
        reject(new TimeoutError());
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (e) => {
          // Runs synchronously while the frame is dispatched, before any later frame of the
          // same read (e.g. an event for a monitor this reply creates).
          onReply?.(e);
          if (!opts.rawErrors && isErrorReply(e)) reject(new RefusedError(parseErrorReply(e)));
          else resolve(e);
        },
        reject,
        timer,
      });
    });
    this.#send(id, payload, bytes);
    const obs = this.#obs, t0 = performance.now();
    if (obs) {
      p.then(() => obs.command(performance.now() - t0), () => obs.command(performance.now() - t0));
    }
    return p;
  }

  /**
   * Waits for the next message with one of `names` (whatever its invoke id). Used for the
   * separately named replies `ablist` and `callloginfo`. Register before sending the request.
   * @throws {TimeoutError} when nothing arrives in time (callers decide whether that is the
   * end of the data, as for the empty call log, or an error)
   */
  waitForName(names: string[], timeoutMs = this.#timeoutMs): Promise<XmlElement> {
    if (this.#closeReason) {
      return handled(Promise.reject(new ConnectionClosedError(this.#closeReason.message)));
    }
    return handled(
      new Promise<XmlElement>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
        };
        const w: NameWaiter = {
          names: new Set(names),
          deliver: (e) => {
            done();
            resolve(e);
          },
          fail: (e) => {
            done();
            reject(e);
          },
        };
        const timer = setTimeout(() => w.fail(new TimeoutError()), timeoutMs);
        this.#waiters.push(w);
      }),
    );
  }

  /**
   * Collects consecutive messages named one of `names` (whatever their invoke id) until
   * `onMessage` returns true, or until no such message arrives for `idleTimeoutMs` (the
   * timer restarts after each one, as the originals' HandleWait did; `nextTimeoutMs` applies
   * after the first message). Register before
   * sending the request: several blocks may arrive in one read.
   * @returns true when `onMessage` ended the collection, false on idle timeout
   */
  collectByName(
    names: string[],
    onMessage: (e: XmlElement) => boolean,
    idleTimeoutMs = this.#timeoutMs,
    nextTimeoutMs = idleTimeoutMs,
  ): Promise<boolean> {
    if (this.#closeReason) {
      return handled(Promise.reject(new ConnectionClosedError(this.#closeReason.message)));
    }
    return handled(
      new Promise<boolean>((resolve, reject) => {
        let timer = setTimeout(() => finish(false), idleTimeoutMs);
        const finish = (complete: boolean) => {
          clearTimeout(timer);
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          resolve(complete);
        };
        const w: NameWaiter = {
          names: new Set(names),
          deliver: (e) => {
            let done: boolean;
            try {
              done = onMessage(e);
            } catch (err) {
              clearTimeout(timer);
              w.fail(err as Error);
              return;
            }
            if (done) return finish(true);
            clearTimeout(timer);
            timer = setTimeout(() => finish(false), nextTimeoutMs);
          },
          fail: (e) => {
            clearTimeout(timer);
            const i = this.#waiters.indexOf(w);
            if (i >= 0) this.#waiters.splice(i, 1);
            reject(e);
          },
        };
        this.#waiters.push(w);
      }),
    );
  }

  /**
   * Ends the session: sends `<logout/>` (as MXFlex 2.0 did) and closes the socket.
   * Safe to call more than once.
   */
  close(): void {
    if (this.#closeReason) return;
    try {
      this.#write(this.#allocId(), logout());
    } catch {
      // The socket may already be gone; closing is all that matters.
    }
    this.#t.close();
    this.#shutdown(new ConnectionClosedError("closed by client"));
  }

  /** Destroys the socket immediately without a logout. */
  destroy(reason = "destroyed"): void {
    this.#t.destroy();
    this.#shutdown(new ConnectionClosedError(reason));
  }

  #allocId(): number {
    // 0001…9998 then wrap (0000 is keep-alive, 9999 events); skip ids still in use.
    for (let n = 0; n < 9998; n++) {
      const id = this.#nextId;
      this.#nextId = id >= 9998 ? 1 : id + 1;
      if (!this.#pending.has(id)) return id;
    }
    throw new BusyError();
  }

  #write(id: number, payload: string): void {
    this.#send(id, payload, encodeFrame(id, payload));
  }

  #send(id: number, payload: string, bytes: Uint8Array): void {
    this.#wireLog?.("out", id, payload);
    this.#t.write(bytes);
    this.#obs?.frame("out");
    this.#lastSent = Date.now();
  }

  #armKeepAlive(ms: number): void {
    if (this.#keepAliveMs <= 0) return;
    this.#kaTimer = setTimeout(() => {
      if (this.#closeReason) return;
      const idle = Date.now() - this.#lastSent;
      if (idle >= this.#keepAliveMs) {
        this.#write(0, KEEPALIVE);
        this.#armKeepAlive(this.#keepAliveMs);
      } else {
        this.#armKeepAlive(this.#keepAliveMs - idle);
      }
    }, ms);
    // Keep-alive alone must not keep the process running.
    Deno.unrefTimer(this.#kaTimer);
  }

  #onData(chunk: Uint8Array): void {
    let frames;
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      // A bad header leaves no way to find the next frame: end this session only.
      const e = err instanceof FrameError ? err : new FrameError(String(err));
      this.#onBad?.(e);
      this.#t.destroy();
      this.#shutdown(new ConnectionClosedError(`protocol error: ${e.message}`));
      return;
    }
    for (const f of frames) {
      this.#wireLog?.("in", f.invokeId, f.payload);
      this.#obs?.frame("in");
      let msg: XmlElement;
      try {
        msg = parseXml(f.payload);
      } catch (err) {
        // One bad payload does not desynchronise the stream: skip it.
        this.#onBad?.(
          err instanceof XmlError ? err : new XmlError(`unparsable ${rootName(f.payload)}`),
        );
        continue;
      }
      this.#dispatch(f.invokeId, msg);
      if (this.#closeReason) return;
    }
    const bad = this.#decoder.error;
    if (bad) {
      this.#onBad?.(bad);
      this.#t.destroy();
      this.#shutdown(new ConnectionClosedError(`protocol error: ${bad.message}`));
    }
  }

  #dispatch(id: number, msg: XmlElement): void {
    if (id !== EVENT_INVOKE_ID) {
      const p = this.#pending.get(id);
      if (p) {
        this.#pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(msg);
        return;
      }
    }
    for (const w of this.#waiters) {
      if (w.names.has(msg.name)) {
        w.deliver(msg);
        return;
      }
    }
    if (msg.name === "Logout") {
      // The MX ended our session (mx-protocol §1.10).
      this.#t.destroy();
      this.#shutdown(new ConnectionClosedError(`logout: ${msg.attrs.mode ?? ""}`));
      return;
    }
    for (const l of this.#listeners) {
      try {
        l(msg, id);
      } catch (err) {
        this.#onBad?.(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  #shutdown(reason: Error): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    clearTimeout(this.#kaTimer);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ConnectionClosedError(reason.message));
    }
    this.#pending.clear();
    for (const w of [...this.#waiters]) w.fail(new ConnectionClosedError(reason.message));
    this.#resolveClosed(reason);
  }
}
