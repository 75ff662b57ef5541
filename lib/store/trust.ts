/**
 * Trust-on-first-use memory for MX certificates, persisted in Deno KV so a restart does not
 * silently accept a changed certificate. Reads are synchronous (the TLS callback needs an
 * answer at once), so entries are loaded at start-up and written through.
 *
 * Key layout: `["mx-cert", <mx name>]` -> SHA-256 fingerprint string.
 *
 * @module
 */

/**
 * Remembered MX certificate fingerprints backed by Deno KV; it fits `TrustStore` of
 * `lib/mx/session.ts` (the MX layer names what it needs; the store does not import it).
 *
 * @example
 * ```ts
 * const trust = await KvTrustStore.open(kv);
 * const mx = new MxSession(cfg, { log, trust });
 * trust.get("main"); // the fingerprint seen on first connect, once there was one
 * ```
 */
export class KvTrustStore {
  #kv: Deno.Kv;
  #m = new Map<string, string>();

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Loads every remembered fingerprint. */
  static async open(kv: Deno.Kv): Promise<KvTrustStore> {
    const s = new KvTrustStore(kv);
    for await (const e of kv.list<string>({ prefix: ["mx-cert"] })) {
      s.#m.set(String(e.key[1]), e.value);
    }
    return s;
  }

  /** The fingerprint remembered for `mx`, if any. */
  get(mx: string): string | undefined {
    return this.#m.get(mx);
  }

  /** Remembers `fingerprint` for `mx` (written through to KV). */
  set(mx: string, fingerprint: string): void {
    this.#m.set(mx, fingerprint);
    this.#kv.set(["mx-cert", mx], fingerprint).catch(() => {});
  }
}
