/**
 * Retrying a KV operation that a local KV file refused as locked, for every store that writes
 * to KV from several processes (push dedupe, device tokens, live tokens, signing keys).
 *
 * @module
 */

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
