/**
 * Ties Flex API tokens to MX monitors, on every instance: each live token (from any instance,
 * through the shared {@link LiveTokenStore}) holds one reference on its user's extension
 * monitor until logout or expiry, so several tokens of one user stay independent and the
 * monitor stops only when the last one goes. Also tracks each token's open SSE streams so a
 * logout, on this instance or another one, ends them.
 *
 * The local table follows the store's `tokens` feed: a login or logout elsewhere is applied
 * within one poll period, a restart or a missed update is repaired by a resync from the store.
 * A token this instance has not heard of yet (used within that period, on another instance
 * than the one that issued it) is looked up in KV once; a token known to be dead (logged out,
 * or looked up and absent) is refused without a KV read.
 *
 * @example
 * ```ts
 * const tm = new TokenMonitors(mx, new LiveTokenStore(kv), log);
 * await tm.start();
 * await tm.add({ jti, ext: "3095", sub: jid, exp }); // login
 * await tm.isLive(jti, exp);                           // true, on every instance
 * await tm.remove(jti, exp);                           // logout, everywhere
 * ```
 *
 * @module
 */
import type { MxSession } from "./session.ts";
import type { Logger } from "../log.ts";
import type { LiveToken, LiveTokenStore, TokenChange } from "../store/live_tokens.ts";

/** Claims the Flex routes rely on. */
export interface TokenClaims {
  sub: string;
  ext: string;
  mx: string;
  jti: string;
  iat: number;
  exp: number;
  /** Key of the token's sealed MX credential (private claim), when it has one. */
  ck?: string;
}

/** Caps on concurrent event streams (config `rateLimits.streams`), per instance. */
export interface StreamLimits {
  /** Streams open at once with one token. */
  perToken: number;
  /** Streams open at once for one user (extension), over all their tokens. */
  perUser: number;
}

/** Defaults: a few tabs or reconnects per token, many devices per user. */
export const DEFAULT_STREAM_LIMITS: Readonly<StreamLimits> = Object.freeze({
  perToken: 10,
  perUser: 50,
});

/** The answer of {@link TokenMonitors.attachStream}. */
export type StreamSlot =
  | { ok: true; /** Call once when the stream ends (idempotent). */ release: () => void }
  | { ok: false; /** Which cap is reached. */ full: "token" | "user" | "gone" };

interface Entry {
  ext: string;
  /** Expiry, Unix seconds. */
  exp: number;
  streams: Set<AbortController>;
}

/** Options for {@link TokenMonitors}. */
export interface TokenMonitorsOptions {
  /** How often expired tokens are released, ms; default 30 s. */
  sweepMs?: number;
  /** Most dead (logged-out) token ids remembered; default 100000. */
  maxDead?: number;
  /** Clock in ms (tests); default `Date.now`. */
  now?: () => number;
}

/**
 * The local table of live tokens, their monitors and streams.
 *
 * @example
 * ```ts
 * const tm = new TokenMonitors(mx, store, log);
 * await tm.start();
 * tm.attachStream(jti, new AbortController());
 * ```
 */
export class TokenMonitors {
  #mx: MxSession;
  #store: LiveTokenStore;
  #log: Logger;
  #now: () => number;
  #tokens = new Map<string, Entry>();
  /** Open streams per extension, over all tokens. */
  #userStreams = new Map<string, number>();
  // jti -> exp (s). Insertion order is close to expiry order, so dropping the oldest past the
  // bound drops the entries closest to expiring anyway.
  #dead = new Map<string, number>();
  #maxDead: number;
  #sweepMs: number;
  #timer?: ReturnType<typeof setInterval>;
  #expiredListeners = new Set<(jti: string) => void | Promise<void>>();

  /**
   * @param mx the Flex API's MX
   * @param store the shared live tokens
   * @param log logger
   * @param opts sweep period, dead-set bound, clock
   */
  constructor(
    mx: MxSession,
    store: LiveTokenStore,
    log: Logger,
    opts: TokenMonitorsOptions = {},
  ) {
    this.#mx = mx;
    this.#store = store;
    this.#log = log;
    this.#now = opts.now ?? Date.now;
    this.#maxDead = opts.maxDead ?? 100_000;
    this.#sweepMs = opts.sweepMs ?? 30_000;
  }

  /** Loads the live tokens (taking their monitors) and follows the feed. */
  async start(): Promise<void> {
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.sweep(), this.#sweepMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
    await this.#store.feed.follow({
      apply: (changes) => this.#apply(changes),
      resync: () => this.#resync(),
    });
  }

  /** Number of live tokens known here. */
  get size(): number {
    return this.#tokens.size;
  }

  /** Whether the token is live in the local table (no KV read). */
  has(jti: string): boolean {
    return this.#tokens.has(jti);
  }

  /**
   * Whether a token (its signature already verified) is live: the local table, else the dead
   * set, else one KV read (a login on another instance not applied here yet).
   */
  async isLive(jti: string, exp: number): Promise<boolean> {
    if (this.#tokens.has(jti)) return true;
    if (this.#dead.has(jti)) return false;
    const t = await this.#store.get(jti);
    if (!t) {
      this.#markDead(jti, exp);
      return false;
    }
    this.#hold(t);
    return this.#tokens.has(jti);
  }

  /**
   * Login: records the token for every instance, then takes its monitor here.
   * @throws {UnavailableError} when the MX is down (the token is withdrawn again)
   * @throws {RefusedError} when the MX refuses the monitor (likewise)
   */
  async add(t: LiveToken): Promise<void> {
    await this.#store.add(t);
    try {
      await this.#mx.acquire(t.ext, holderOf(t.jti));
    } catch (err) {
      await this.#drop(t.jti, t.exp);
      await this.#store.remove(t.jti, t.exp).catch(() => {});
      throw err;
    }
    if (!this.#tokens.has(t.jti)) {
      this.#tokens.set(t.jti, { ext: t.ext, exp: t.exp, streams: new Set() });
    }
  }

  /** Logout: ends the token here (streams, monitor) and on every other instance. */
  async remove(jti: string, exp: number): Promise<void> {
    const released = this.#drop(jti, exp);
    await this.#store.remove(jti, exp);
    await released;
  }

  /**
   * Registers an SSE stream of a token within the caps (this instance's streams). A refused
   * stream is not registered; an accepted one is counted until `release` runs (the hub's
   * `onClose`, which runs however the stream ends) or the token goes.
   *
   * @example
   * ```ts
   * const slot = tokens.attachStream(jti, ctl, { perToken: 10, perUser: 50 });
   * if (!slot.ok) throw tooManyRequests(`too many event streams (${slot.full})`, 30);
   * hub.subscribe(topic, { signal: ctl.signal, onClose: slot.release });
   * ```
   */
  attachStream(
    jti: string,
    ctl: AbortController,
    caps: StreamLimits = { perToken: Infinity, perUser: Infinity },
  ): StreamSlot {
    const e = this.#tokens.get(jti);
    if (!e) {
      ctl.abort();
      return { ok: false, full: "gone" };
    }
    if (e.streams.size >= caps.perToken) return { ok: false, full: "token" };
    const userCount = this.#userStreams.get(e.ext) ?? 0;
    if (userCount >= caps.perUser) return { ok: false, full: "user" };
    e.streams.add(ctl);
    this.#userStreams.set(e.ext, userCount + 1);
    return {
      ok: true,
      release: () => {
        if (e.streams.delete(ctl)) this.#uncount(e.ext, 1);
      },
    };
  }

  #uncount(ext: string, by: number): void {
    const n = (this.#userStreams.get(ext) ?? 0) - by;
    if (n > 0) this.#userStreams.set(ext, n);
    else this.#userStreams.delete(ext);
  }

  /** SSE streams open per extension on this instance (for diagnostics). */
  streamCounts(): Record<string, number> {
    return Object.fromEntries(this.#userStreams);
  }

  /**
   * Adds a listener called for each token the sweep releases because it expired (e.g. to
   * wipe what belongs to it); returns the remover. Failures are logged, not thrown. With
   * several instances each one's sweep calls it (the cleanup must be idempotent).
   */
  onExpired(l: (jti: string) => void | Promise<void>): () => void {
    this.#expiredListeners.add(l);
    return () => this.#expiredListeners.delete(l);
  }

  /** Releases every expired token and forgets expired dead ids (KV expires its own). */
  sweep(nowSec = this.#now() / 1000): void {
    for (const [jti, e] of this.#tokens) {
      if (e.exp > nowSec) continue;
      void this.#drop(jti, e.exp);
      for (const l of this.#expiredListeners) {
        Promise.resolve().then(() => l(jti)).catch((err) =>
          this.#log.warn(`expired token cleanup failed: ${(err as Error).message}`)
        );
      }
    }
    for (const [jti, exp] of this.#dead) if (exp <= nowSec) this.#dead.delete(jti);
  }

  /**
   * Shutdown: stops following and releases this instance's monitors. The tokens stay live in
   * KV (they survive restarts and are served by the other instances).
   */
  async close(): Promise<void> {
    this.#store.feed.close();
    clearInterval(this.#timer);
    const all = [...this.#tokens];
    this.#tokens.clear();
    await Promise.all(all.map(([jti, e]) => this.#release(jti, e)));
  }

  #apply(changes: TokenChange[]): void {
    for (const c of changes) {
      if (c.op === "add") this.#hold(c.token);
      else void this.#drop(c.jti, c.exp);
    }
  }

  async #resync(): Promise<void> {
    const live = await this.#store.list();
    const ids = new Set(live.map((t) => t.jti));
    for (const [jti, e] of this.#tokens) if (!ids.has(jti)) void this.#drop(jti, e.exp);
    for (const t of live) this.#hold(t);
  }

  /** Takes a token into the table with a monitor that survives MX outages. Idempotent. */
  #hold(t: LiveToken): void {
    if (this.#tokens.has(t.jti) || this.#dead.has(t.jti)) return;
    if (t.exp * 1000 <= this.#now()) return;
    this.#tokens.set(t.jti, { ext: t.ext, exp: t.exp, streams: new Set() });
    this.#mx.acquirePersistent(t.ext, holderOf(t.jti)).catch((err) =>
      this.#log.warn(`monitor for ${t.ext} not started: ${(err as Error).message}`)
    );
  }

  /** Ends a token here: remembered as dead, streams ended, monitor reference released. */
  #drop(jti: string, exp: number): Promise<void> {
    this.#markDead(jti, exp);
    const e = this.#tokens.get(jti);
    if (!e) return Promise.resolve();
    this.#tokens.delete(jti);
    return this.#release(jti, e);
  }

  async #release(jti: string, e: Entry): Promise<void> {
    // Aborting ends each hub subscription, whose onClose releases it; whatever is left
    // (a stream that never reached the hub) is uncounted here.
    for (const s of [...e.streams]) s.abort();
    this.#uncount(e.ext, e.streams.size);
    e.streams.clear();
    try {
      await this.#mx.release(e.ext, holderOf(jti));
    } catch (err) {
      this.#log.warn(`monitor release for ${e.ext} failed: ${(err as Error).message}`);
    }
  }

  #markDead(jti: string, exp: number): void {
    if (exp * 1000 <= this.#now()) return; // fails on exp anyway
    this.#dead.delete(jti);
    this.#dead.set(jti, exp);
    while (this.#dead.size > this.#maxDead) {
      this.#dead.delete(this.#dead.keys().next().value as string);
    }
  }
}

function holderOf(jti: string): string {
  return `jwt:${jti}`;
}
