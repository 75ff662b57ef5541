/**
 * A sliding-window rate limiter with bounded memory, for login attempts (per login and per
 * client IP) and Basic-auth failures.
 *
 * It uses the "sliding window counter" approximation: per key, the count of the current fixed
 * window plus the previous window's count weighted by how much of it still overlaps the sliding
 * window. Three numbers per key, no timestamps list, no timers.
 *
 * @example
 * ```ts
 * const perIp = new RateLimiter({ limit: 10, windowMs: 60_000 });
 * const { allowed, retryAfterSeconds } = perIp.check(ip);
 * if (!allowed) throw tooManyRequests("too many requests", retryAfterSeconds); // lib/http/errors.ts
 * const ok = await tryLogin();
 * if (ok) perIp.reset(ip); else perIp.hit(ip);
 * ```
 *
 * @module
 */

/** Options for {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Allowed hits per window (≥ 1). */
  limit: number;
  /** Window length in ms (> 0). */
  windowMs: number;
  /** Most keys remembered; the least recently hit is forgotten first; default 10000. */
  max?: number;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/** The verdict for one key. */
export interface RateLimitResult {
  /** Whether the attempt may proceed. */
  allowed: boolean;
  /** When not allowed: whole seconds (≥ 1) until an attempt would be allowed; else 0. */
  retryAfterSeconds: number;
}

interface Counter {
  start: number; // start of the current fixed window (ms, multiple of windowMs)
  cur: number; // hits in the current window
  prev: number; // hits in the previous window
}

/**
 * Sliding-window counter per key.
 *
 * @example
 * ```ts
 * const rl = new RateLimiter({ limit: 3, windowMs: 60_000 });
 * rl.hit("alice"); rl.hit("alice"); rl.hit("alice");
 * rl.hit("alice"); // { allowed: false, retryAfterSeconds: 60 } (or less)
 * ```
 */
export class RateLimiter {
  #limit: number;
  #w: number;
  #max: number;
  #now: () => number;
  #map = new Map<string, Counter>();

  /**
   * Creates a limiter; throws RangeError for a limit below 1 or a non-positive window.
   *
   * @param opts See {@link RateLimiterOptions}.
   */
  constructor(opts: RateLimiterOptions) {
    if (!(opts.limit >= 1)) throw new RangeError("limit must be >= 1");
    if (!(opts.windowMs > 0)) throw new RangeError("windowMs must be > 0");
    this.#limit = Math.floor(opts.limit);
    this.#w = opts.windowMs;
    this.#max = Math.max(1, opts.max ?? 10_000);
    this.#now = opts.now ?? Date.now;
  }

  /** Number of keys remembered. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * Records one attempt for `key` if it is allowed. Denied attempts are not counted, so a
   * client that keeps trying is unblocked once its earlier attempts slide out of the window.
   */
  hit(key: string): RateLimitResult {
    return this.#evaluate(key, true);
  }

  /** Like {@link hit} but records nothing: "would an attempt be allowed now?" */
  check(key: string): RateLimitResult {
    return this.#evaluate(key, false);
  }

  /** Forgets a key (e.g. after a successful login). */
  reset(key: string): void {
    this.#map.delete(key);
  }

  #evaluate(key: string, record: boolean): RateLimitResult {
    const now = this.#now();
    const w = this.#w;
    const windowStart = Math.floor(now / w) * w;
    let c = this.#map.get(key);
    if (c) {
      if (c.start !== windowStart) {
        // Roll forward: the old current window becomes "previous" only if it is adjacent.
        c.prev = c.start + w === windowStart ? c.cur : 0;
        c.cur = 0;
        c.start = windowStart;
      }
      if (c.cur === 0 && c.prev === 0) {
        this.#map.delete(key); // idle key: free it now
        c = undefined;
      }
    }
    const cur = c?.cur ?? 0;
    const prev = c?.prev ?? 0;
    const elapsed = now - windowStart;
    const estimate = prev * (1 - elapsed / w) + cur;
    if (estimate + 1 > this.#limit) {
      return { allowed: false, retryAfterSeconds: this.#retryAfter(cur, prev, elapsed) };
    }
    if (record) {
      if (c) {
        c.cur++;
        // Re-insert so that Map order is least-recently-hit first.
        this.#map.delete(key);
        this.#map.set(key, c);
      } else {
        while (this.#map.size >= this.#max) {
          this.#map.delete(this.#map.keys().next().value as string);
        }
        this.#map.set(key, { start: windowStart, cur: 1, prev: 0 });
      }
    }
    return { allowed: true, retryAfterSeconds: 0 };
  }

  // Smallest wait t such that prev'*(1 - f') + cur' + 1 <= limit at time now + t.
  #retryAfter(cur: number, prev: number, elapsed: number): number {
    const w = this.#w;
    const limit = this.#limit;
    const remaining = w - elapsed;
    let t: number;
    const room = limit - cur - 1;
    // Still inside this window, once enough of the previous window has slid out?
    const inWindow = room >= 0 && prev > 0 ? w * (1 - room / prev) - elapsed : Infinity;
    if (inWindow < remaining) {
      t = Math.max(0, inWindow);
    } else {
      // Next window: the current count becomes the weighted previous one.
      const f = cur > 0 ? Math.max(0, 1 - (limit - 1) / cur) : 0;
      t = remaining + w * f;
    }
    return Math.max(1, Math.ceil(t / 1000));
  }
}
