/**
 * Ties Flex API tokens to MX monitors: each issued token holds one reference on its user's
 * extension monitor until logout or expiry, so several tokens of one user stay independent
 * and the monitor stops only when the last one goes. Also tracks each token's open SSE
 * streams so logout ends them.
 *
 * @module
 */
import type { MxSession } from "./session.ts";
import type { Logger } from "../log.ts";

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

/** Caps on concurrent event streams (config `rateLimits.streams`). */
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

/**
 * @example
 * ```ts
 * const tm = new TokenMonitors(mx, log);
 * await tm.add(jti, "3095", exp);
 * await tm.remove(jti); // logout
 * ```
 */
export class TokenMonitors {
  #mx: MxSession;
  #log: Logger;
  #tokens = new Map<string, Entry>();
  /** Open streams per extension, over all tokens. */
  #userStreams = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout>;
  #expiredListeners = new Set<(jti: string) => void | Promise<void>>();

  /** @param sweepMs how often expired tokens are released; default 30 s */
  constructor(mx: MxSession, log: Logger, sweepMs = 30_000) {
    this.#mx = mx;
    this.#log = log;
    this.#timer = setInterval(() => this.sweep(), sweepMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Number of live tokens. */
  get size(): number {
    return this.#tokens.size;
  }

  /** Whether the token still holds its monitor. */
  has(jti: string): boolean {
    return this.#tokens.has(jti);
  }

  /** Records a new token and takes its monitor reference. */
  async add(jti: string, ext: string, exp: number): Promise<void> {
    await this.#mx.acquire(ext, holderOf(jti));
    this.#tokens.set(jti, { ext, exp, streams: new Set() });
  }

  /**
   * Registers an SSE stream of a token within the caps. A refused stream is not registered;
   * an accepted one is counted until `release` runs (the hub's `onClose`, which runs however
   * the stream ends) or the token goes.
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

  /** SSE streams open per extension (for /api/info-style diagnostics). */
  streamCounts(): Record<string, number> {
    return Object.fromEntries(this.#userStreams);
  }

  /** Logout or expiry: ends the token's streams and drops its monitor reference. */
  async remove(jti: string): Promise<void> {
    const e = this.#tokens.get(jti);
    if (!e) return;
    this.#tokens.delete(jti);
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

  /**
   * Adds a listener called for each token the sweep releases because it expired (e.g. to
   * wipe what belongs to it); returns the remover. Failures are logged, not thrown.
   */
  onExpired(l: (jti: string) => void | Promise<void>): () => void {
    this.#expiredListeners.add(l);
    return () => this.#expiredListeners.delete(l);
  }

  /** Releases every expired token now. */
  sweep(nowSec = Date.now() / 1000): void {
    for (const [jti, e] of this.#tokens) {
      if (e.exp > nowSec) continue;
      void this.remove(jti);
      for (const l of this.#expiredListeners) {
        Promise.resolve().then(() => l(jti)).catch((err) =>
          this.#log.warn(`expired token cleanup failed: ${(err as Error).message}`)
        );
      }
    }
  }

  /** Releases all tokens and stops the sweeper (shutdown). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#tokens.keys()].map((j) => this.remove(j)));
  }
}

function holderOf(jti: string): string {
  return `jwt:${jti}`;
}
