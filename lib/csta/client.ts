/**
 * A long-lived, self-healing CSTA session (the "server account" session): connects, logs in,
 * reconnects with exponential backoff and jitter when the session ends, and re-creates every
 * monitor after a reconnect. Listeners see events with the extension they belong to, so they
 * never deal with `monitorCrossRefID`s, which change on every reconnect.
 *
 * @module
 */
import { type ConnectionOptions, type Credentials, CstaConnection } from "./connection.ts";
import { monitorStart, parseMonitorStart, stopMonitor } from "./commands/monitors.ts";
import { isErrorReply } from "./commands/error_reply.ts";
import { ConnectionClosedError, LoginFailedError, UnavailableError } from "./errors.ts";
import { child, type XmlElement } from "./xml.ts";
import type { LoginInfo } from "./types.ts";

/** Session state as shown by `/readyz` and metrics. */
export type ClientState = "connecting" | "connected" | "disconnected" | "stopped";

/** Backoff parameters. */
export interface Backoff {
  /** First delay; default 500 ms. */
  initialMs?: number;
  /** Largest delay; default 30 s. */
  maxMs?: number;
  /** Random spread, 0–1, applied ± to each delay; default 0.2. */
  jitter?: number;
}

/** Options for {@link CstaClient}. */
export interface ClientOptions extends ConnectionOptions {
  credentials: Credentials;
  backoff?: Backoff;
  /**
   * Runs after each successful login and monitor restore, before the client reports
   * "connected" (e.g. fetch the address book, `MonitorStartAb`). A failure counts as a failed
   * connection attempt.
   */
  onSession?: (conn: CstaConnection, info: LoginInfo) => Promise<void>;
  /** Diagnostics. */
  log?: (level: "info" | "warn" | "error", msg: string) => void;
}

/** Listener for unsolicited messages; `ext` is set for messages of a monitor we own. */
export type ClientListener = (msg: XmlElement, ext: string | undefined) => void;

/**
 * Computes the delay before reconnect attempt `attempt` (0-based).
 *
 * @example
 * ```ts
 * backoffDelay(3, { initialMs: 500, maxMs: 30_000, jitter: 0 }); // 4000
 * ```
 */
export function backoffDelay(attempt: number, b: Backoff = {}, rnd = Math.random): number {
  const initial = b.initialMs ?? 500;
  const max = b.maxMs ?? 30_000;
  const jitter = b.jitter ?? 0.2;
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.max(0, Math.round(base * (1 + jitter * (2 * rnd() - 1))));
}

/**
 * @example
 * ```ts
 * const client = new CstaClient({ hostname, port, tls: {}, credentials: { type: "Server", userName, password } });
 * client.onMessage((msg, ext) => console.log(ext, msg.name));
 * client.start();
 * await client.ready();
 * await client.monitor("3095");
 * ```
 */
export class CstaClient {
  #opts: ClientOptions;
  #state: ClientState = "disconnected";
  #conn?: CstaConnection;
  #info?: LoginInfo;
  /** ext -> current monitorCrossRefID (undefined while not yet established). */
  #monitors = new Map<string, number | undefined>();
  #byRef = new Map<number, string>();
  #listeners = new Set<ClientListener>();
  /** MonitorStart requests in flight, by extension. */
  #starting = new Map<string, Promise<void>>();
  #stateListeners = new Set<(s: ClientState) => void>();
  #readyWaiters: Array<() => void> = [];
  #attempt = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #reconnects = 0;
  #lastError = "";
  #running?: Promise<void>;

  /** @param opts connection, credentials and hooks */
  constructor(opts: ClientOptions) {
    this.#opts = opts;
  }

  /** Current state. */
  get state(): ClientState {
    return this.#state;
  }
  /** Login info of the current (or last) session. */
  get info(): LoginInfo | undefined {
    return this.#info;
  }
  /** Number of successful reconnects after the first connection. */
  get reconnects(): number {
    return this.#reconnects;
  }
  /** Text of the last connection error, for diagnostics. */
  get lastError(): string {
    return this.#lastError;
  }
  /** Extensions currently requested to be monitored. */
  get monitoredExtensions(): string[] {
    return [...this.#monitors.keys()];
  }

  /** The live connection. @throws {UnavailableError} when the session is down */
  get connection(): CstaConnection {
    if (this.#state !== "connected" || !this.#conn || this.#conn.isClosed) {
      throw new UnavailableError(
        this.#lastError ? `MX unavailable: ${this.#lastError}` : "MX unavailable",
      );
    }
    return this.#conn;
  }

  /** Begins connecting in the background. */
  start(): void {
    if (this.#stopped() || this.#running) return;
    this.#running = this.#connectLoop();
  }

  /** Resolves when connected (or rejects after `timeoutMs`). */
  ready(timeoutMs = 30_000): Promise<void> {
    if (this.#state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.#readyWaiters.indexOf(done);
        if (i >= 0) this.#readyWaiters.splice(i, 1);
        reject(new UnavailableError(`MX not ready: ${this.#lastError || "timeout"}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.#readyWaiters.push(done);
    });
  }

  /** Adds a listener for unsolicited messages. Returns an unsubscribe function. */
  onMessage(l: ClientListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /** Adds a state listener. Returns an unsubscribe function. */
  onState(l: (s: ClientState) => void): () => void {
    this.#stateListeners.add(l);
    return () => this.#stateListeners.delete(l);
  }

  /**
   * Ensures a monitor on `ext`; it survives reconnects until {@link unmonitor}. Resolves once
   * the MX confirmed it. While disconnected it is recorded and started on reconnect.
   * Concurrent calls for one extension share one `MonitorStart` (never two MX monitors).
   * @throws {RefusedError} when the MX refuses the monitor (the extension is then forgotten)
   */
  monitor(ext: string): Promise<void> {
    if (this.#monitors.get(ext) !== undefined) return Promise.resolve();
    const running = this.#starting.get(ext);
    if (running) return running;
    this.#monitors.set(ext, undefined);
    const conn = this.#conn;
    // During set-up (restore, address book) the connection is usable already.
    if (!conn || conn.isClosed) return Promise.resolve();
    const p = this.#start(conn, ext).then(
      () => {},
      (err) => {
        if (err instanceof ConnectionClosedError) return; // restored after reconnect
        if (this.#monitors.get(ext) === undefined) this.#monitors.delete(ext);
        throw err;
      },
    ).finally(() => this.#starting.delete(ext));
    this.#starting.set(ext, p);
    return p;
  }

  /**
   * Sends `MonitorStart` and records the ref while the reply is dispatched, so that events
   * arriving in the same read as the reply are already routed to `ext`. If the extension
   * was released meanwhile, the new monitor is stopped again.
   */
  async #start(conn: CstaConnection, ext: string): Promise<number> {
    let ref = -1;
    await conn.request(monitorStart(ext), {
      onReply: (e) => {
        if (isErrorReply(e)) return;
        ref = parseMonitorStart(e);
        if (conn !== this.#conn || !this.#monitors.has(ext)) return;
        this.#monitors.set(ext, ref);
        this.#byRef.set(ref, ext);
      },
    });
    if (ref >= 0 && this.#monitors.get(ext) !== ref) {
      // Released while the request was in flight (a logout racing a restore): the MX
      // created the monitor anyway, so stop it rather than leave it running unowned.
      if (this.#byRef.get(ref) === ext) this.#byRef.delete(ref);
      await stopMonitor(conn, ref).catch(() => {});
      return -1;
    }
    return ref;
  }

  /** Stops the monitor on `ext` (best effort on the MX side). */
  async unmonitor(ext: string): Promise<void> {
    const ref = this.#monitors.get(ext);
    this.#monitors.delete(ext);
    if (ref === undefined) return;
    this.#byRef.delete(ref);
    const conn = this.#conn;
    if (conn && !conn.isClosed) await stopMonitor(conn, ref).catch(() => {});
  }

  /** Whether the MX has confirmed a monitor on `ext` in the current session. */
  isMonitoring(ext: string): boolean {
    return this.#monitors.get(ext) !== undefined;
  }

  /** Extension watched by a monitor id of the current session. */
  extForMonitor(ref: number): string | undefined {
    return this.#byRef.get(ref);
  }

  /** Stops reconnecting and closes the session (sends `<logout/>`). */
  async stop(): Promise<void> {
    this.#setState("stopped");
    clearTimeout(this.#timer);
    this.#wake?.();
    this.#conn?.close();
    await this.#running;
  }

  /** Drops the current session as if the network failed (tests, admin). */
  dropSession(): void {
    this.#conn?.destroy("dropped");
  }

  #wake?: () => void;

  /** A method, not a field read, so TypeScript does not narrow the state across awaits. */
  #stopped(): boolean {
    return this.#state === "stopped";
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }

  #setState(s: ClientState): void {
    if (this.#state === s || this.#stopped()) return;
    this.#state = s;
    for (const l of this.#stateListeners) l(s);
    if (s === "connected") {
      const w = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const f of w) f();
    }
  }

  async #connectLoop(): Promise<void> {
    let first = true;
    while (this.#state !== "stopped") {
      this.#setState("connecting");
      let conn: CstaConnection | undefined;
      try {
        conn = await CstaConnection.connect(this.#opts);
        if (this.#stopped()) {
          conn.destroy("stopped");
          break;
        }
        const info = await conn.login(this.#opts.credentials);
        if (this.#stopped()) {
          conn.close();
          break;
        }
        this.#info = info;
        // Refs of the previous session mean nothing now: every monitor is started again.
        this.#byRef.clear();
        for (const ext of this.#monitors.keys()) this.#monitors.set(ext, undefined);
        conn.onMessage((msg) => this.#route(msg));
        this.#conn = conn;
        await this.#restoreMonitors(conn);
        await this.#opts.onSession?.(conn, info);
        // Monitors requested during the address-book fetch are started before "connected".
        await this.#restoreMonitors(conn);
        if (this.#stopped()) {
          conn.close();
          break;
        }
        this.#attempt = 0;
        this.#lastError = "";
        if (!first) this.#reconnects++;
        first = false;
        this.#setState("connected");
        this.#opts.log?.("info", `MX session up (sn ${info.sn})`);
        const reason = await conn.closed;
        if (this.#stopped()) break;
        this.#lastError = reason.message;
        this.#opts.log?.("warn", `MX session ended: ${reason.message}`);
        this.#setState("disconnected");
        // The first retry after a working session goes quickly: the MX may be right back.
        this.#attempt = 0;
      } catch (err) {
        conn?.destroy("setup failed");
        if (this.#stopped()) break;
        const msg = err instanceof Error ? err.message : String(err);
        this.#lastError = msg;
        this.#setState("disconnected");
        // Wrong server credentials will not fix themselves quickly: log loudly, keep trying.
        // The socket error behind a wrapped one (with the address) is for the log only.
        const cause = err instanceof Error && err.cause instanceof Error
          ? ` (${err.cause.message})`
          : "";
        this.#opts.log?.(
          err instanceof LoginFailedError ? "error" : "warn",
          `MX connect failed: ${msg}${cause}`,
        );
      }
      const delay = backoffDelay(this.#attempt++, this.#opts.backoff);
      await this.#sleep(delay);
    }
    this.#conn = undefined;
  }

  /**
   * Starts every recorded monitor on a new session, including ones requested while this
   * runs, until none is missing.
   */
  async #restoreMonitors(conn: CstaConnection): Promise<void> {
    const failed = new Set<string>();
    for (;;) {
      const missing = [...this.#monitors].filter(([ext, ref]) =>
        ref === undefined && !failed.has(ext) && !this.#starting.has(ext)
      ).map(([ext]) => ext);
      if (missing.length === 0) break;
      for (const ext of missing) {
        try {
          await this.#start(conn, ext);
        } catch (err) {
          if (err instanceof ConnectionClosedError) throw err;
          // The extension may have been removed from the MX meanwhile; retried next session.
          this.#opts.log?.("warn", `monitor ${ext} not restored: ${(err as Error).message}`);
          failed.add(ext);
        }
      }
    }
    await Promise.allSettled([...this.#starting.values()]);
  }

  #route(msg: XmlElement): void {
    const refEl = child(msg, "monitorCrossRefID");
    const ext = refEl ? this.#byRef.get(Number(refEl.text)) : undefined;
    for (const l of this.#listeners) l(msg, ext);
  }
}
