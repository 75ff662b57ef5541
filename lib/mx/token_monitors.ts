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

  /** Registers an SSE stream of a token; returns the function to call when it closes. */
  attachStream(jti: string, ctl: AbortController): () => void {
    const e = this.#tokens.get(jti);
    if (!e) {
      ctl.abort();
      return () => {};
    }
    e.streams.add(ctl);
    return () => e.streams.delete(ctl);
  }

  /** SSE streams open per extension (for /api/info-style diagnostics). */
  streamCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.#tokens.values()) out[e.ext] = (out[e.ext] ?? 0) + e.streams.size;
    return out;
  }

  /** Logout or expiry: ends the token's streams and drops its monitor reference. */
  async remove(jti: string): Promise<void> {
    const e = this.#tokens.get(jti);
    if (!e) return;
    this.#tokens.delete(jti);
    for (const s of e.streams) s.abort();
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
