/**
 * Push de-duplication on Deno KV. The original pushed on every qualifying DeliveredEvent
 * (mx-protocol §6.6: repeated alerting, several legs, and several server processes all
 * produced pushes); MXFlex claims each push once, across every process sharing the KV.
 *
 * Key layout: `["push", "dedupe", key]` → expiry time (ms). Entries are written with
 * `expireIn`; because KV deletes expired entries lazily, a claim also takes over an entry
 * whose stored expiry has passed.
 *
 * @module
 */

const PREFIX = ["push", "dedupe"] as const;

/**
 * Runs a KV operation again while SQLite reports "database is locked". Several handles on
 * one local KV file (several processes, or a test opening the path twice) make SQLite
 * refuse a write instead of waiting; the write was not applied, so repeating the whole
 * read-check-commit is safe. Remote KV (KV Connect) never raises this.
 *
 * @param op the complete operation, re-run from its reads
 * @param attempts how many times to try before giving up with the last error
 *
 * @example
 * ```ts
 * const ok = await retryLocked(() => kv.atomic().check(prev).set(key, 1).commit());
 * ```
 */
export async function retryLocked<T>(op: () => Promise<T>, attempts = 100): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await op();
    } catch (e) {
      if (i >= attempts || !(e instanceof Error) || !/database is locked/i.test(e.message)) throw e;
      // Jitter so the contenders do not collide again in lockstep.
      await new Promise((r) => setTimeout(r, 1 + Math.random() * Math.min(50, 2 * i)));
    }
  }
}

/**
 * First-caller-wins claims with a time to live.
 *
 * @example
 * ```ts
 * const dedupe = new PushDedupe(kv);
 * if (await dedupe.claim(`${mx}|${callId}|${token}`)) await send();
 * ```
 */
export class PushDedupe {
  #kv: Deno.Kv;
  #ttlMs: number;
  #now: () => number;

  /**
   * @param kv the shared database
   * @param opts.ttlMs how long a claim blocks duplicates; default 10 minutes (longer than
   *   any ringing phase, short enough to keep the KV small)
   * @param opts.now clock in ms (tests)
   */
  constructor(kv: Deno.Kv, opts: { ttlMs?: number; now?: () => number } = {}) {
    this.#kv = kv;
    this.#ttlMs = opts.ttlMs ?? 10 * 60 * 1000;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Claims `key`. Resolves `true` for exactly one caller until the claim expires; `false`
   * for everyone else. Keys must fit a KV key part (≤ 2 KiB); hash long ones.
   */
  claim(key: string): Promise<boolean> {
    return retryLocked(() => this.#claimOnce(key));
  }

  async #claimOnce(key: string): Promise<boolean> {
    const k = [...PREFIX, key];
    const prev = await this.#kv.get<number>(k);
    const now = this.#now();
    if (prev.value !== null && prev.value > now) return false;
    // check(prev) is "still absent" (versionstamp null) or "still the expired entry we saw":
    // of several racing callers only one commit succeeds.
    const res = await this.#kv.atomic().check(prev)
      .set(k, now + this.#ttlMs, { expireIn: this.#ttlMs }).commit();
    return res.ok;
  }
}
