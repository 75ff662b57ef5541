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

import { retryLocked } from "./retry_locked.ts";

const PREFIX = ["push", "dedupe"] as const;

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
