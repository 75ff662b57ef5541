/**
 * A Deno KV store for `rate-limiter-flexible`: {@link RateLimiterKv} extends the library's
 * `RateLimiterStoreAbstract` (its documented way to add a store) with the four store methods,
 * so several MXFlex instances on one KV share every counter instead of each counting alone.
 *
 * - Increments are atomic: read, then `kv.atomic().check(versionstamp).set(...)`, retried after
 *   a short random pause on a conflict (optimistic concurrency, as Deno KV intends), and after
 *   SQLite's "database is locked" from another process on the same KV file (`retryLocked`).
 * - Reads are batched: every `get` issued in the same turn of the event loop, by any limiter
 *   sharing one {@link KvReader}, goes to KV as one `getMany` (so checking several limits
 *   before a login costs one KV read).
 * - A record is `{points, expire}` (expire in ms since the epoch, `null` = never) under
 *   `["ratelimit", "<keyPrefix>:<key>"]`, written with `expireIn` so KV drops it later; an
 *   expired record still present is treated as absent.
 *
 * @example
 * ```ts
 * const reader = new KvReader(kv);
 * const perIp = new RateLimiterKv({ storeClient: reader, keyPrefix: "ip", points: 5, duration: 60 });
 * const res = await perIp.get("192.0.2.1"); // null: nothing counted yet
 * await perIp.penalty("192.0.2.1");          // one failure
 * ```
 *
 * @module
 */
import {
  type IRateLimiterStoreOptions,
  RateLimiterRes,
  type RateLimiterStoreAbstract,
} from "rate-limiter-flexible";
// The abstract store class is not in the package's index (only in its types): load its file.
import StoreAbstractImpl from "rate-limiter-flexible/lib/RateLimiterStoreAbstract.js";
import { retryLocked } from "./retry_locked.ts";

/** What a counter looks like in KV. */
export interface KvRateRecord {
  points: number;
  /** Ms since the epoch; `null` = no expiry. */
  expire: number | null;
}

/** Root of every rate-limit key in KV. */
export const RATE_LIMIT_PREFIX = "ratelimit";

/** Most attempts of one atomic increment under contention before giving up. */
const MAX_ATTEMPTS = 50;
/** Deno KV's most keys per `getMany`. */
const MAX_BATCH = 10;

interface PendingGet {
  key: Deno.KvKey;
  resolve: (e: Deno.KvEntryMaybe<unknown>) => void;
  reject: (err: unknown) => void;
}

/**
 * Coalesces the `kv.get` calls made in one event-loop turn into `getMany` calls.
 *
 * @example
 * ```ts
 * const reader = new KvReader(kv);
 * const [a, b] = await Promise.all([reader.get(["x"]), reader.get(["y"])]); // one getMany
 * ```
 */
export class KvReader {
  /** The underlying KV. */
  readonly kv: Deno.Kv;
  #pending: PendingGet[] = [];

  /** @param kv the KV to read from */
  constructor(kv: Deno.Kv) {
    this.kv = kv;
  }

  /** Reads one key, in a batch with the other reads of this turn. */
  get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) queueMicrotask(() => this.#flush());
      this.#pending.push({
        key,
        resolve: resolve as (e: Deno.KvEntryMaybe<unknown>) => void,
        reject,
      });
    });
  }

  #flush(): void {
    const all = this.#pending;
    this.#pending = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) {
      const part = all.slice(i, i + MAX_BATCH);
      this.kv.getMany(part.map((p) => p.key)).then(
        (entries) => part.forEach((p, j) => p.resolve(entries[j])),
        (err) => part.forEach((p) => p.reject(err)),
      );
    }
  }
}

/** Options of {@link RateLimiterKv}: the library's, with a {@link KvReader} as `storeClient`. */
export interface RateLimiterKvOptions extends IRateLimiterStoreOptions {
  storeClient: KvReader;
  /** Clock in ms; default `Date.now` (tests move it). */
  now?: () => number;
}

const Base = StoreAbstractImpl as unknown as typeof RateLimiterStoreAbstract;

/**
 * A `rate-limiter-flexible` limiter whose counters live in Deno KV.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiterKv({ storeClient: new KvReader(kv), keyPrefix: "login",
 *   points: 10, duration: 3600, blockDuration: 900 });
 * try {
 *   await limiter.consume("dmitry");
 * } catch (res) {
 *   // RateLimiterRes: res.msBeforeNext until the next point
 * }
 * ```
 */
export class RateLimiterKv extends Base {
  #reader: KvReader;
  #now: () => number;

  /** @param opts the library's options plus {@link RateLimiterKvOptions.now} */
  constructor(opts: RateLimiterKvOptions) {
    super(opts);
    this.#reader = opts.storeClient;
    this.#now = opts.now ?? Date.now;
  }

  /** The KV key of a limiter key (for callers that commit several keys in one atomic). */
  kvKey(key: string): Deno.KvKey {
    return [RATE_LIMIT_PREFIX, this.getKey(key)];
  }

  /** Whether a stored record (as `_get` returns it) counts as blocked now. */
  isBlocked(res: RateLimiterRes | null): res is RateLimiterRes {
    return res !== null && res.consumedPoints > this.points && res.msBeforeNext !== 0;
  }

  // --- the four methods of RateLimiterStoreAbstract (called by the library) ---

  _getRateLimiterRes(_rlKey: string, changedPoints: number, r: KvRateRecord): RateLimiterRes {
    const first = changedPoints === r.points;
    const consumed = first ? changedPoints : r.points;
    return new RateLimiterRes(
      Math.max(this.points - consumed, 0),
      r.expire === null ? -1 : Math.max(r.expire - this.#now(), 0),
      consumed,
      first,
    );
  }

  async _upsert(
    rlKey: string,
    points: number,
    msDuration: number,
    forceExpire = false,
  ): Promise<KvRateRecord> {
    const kv = this.#reader.kv;
    const key = [RATE_LIMIT_PREFIX, rlKey];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cur = forceExpire ? undefined : await kv.get<KvRateRecord>(key);
      const now = this.#now();
      const live = cur?.value && (cur.value.expire === null || cur.value.expire > now)
        ? cur.value
        : undefined;
      const rec: KvRateRecord = live
        ? { points: live.points + points, expire: live.expire }
        : { points, expire: msDuration > 0 ? now + msDuration : null };
      const op = kv.atomic();
      if (cur) op.check(cur);
      op.set(key, rec, rec.expire === null ? undefined : { expireIn: rec.expire - now + 1000 });
      // Another process's write in between makes a local KV file refuse the commit ("database
      // is locked"); it was not applied, so committing the same operation again is safe.
      if ((await retryLocked(() => op.commit())).ok) return rec;
      // Lost a race with another writer of this key: back off a little (random, growing).
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
    }
    throw new Error(`rate limit store: ${MAX_ATTEMPTS} conflicting updates of one key`);
  }

  async _get(rlKey: string): Promise<KvRateRecord | null> {
    const e = await this.#reader.get<KvRateRecord>([RATE_LIMIT_PREFIX, rlKey]);
    const v = e.value;
    if (!v || (v.expire !== null && v.expire <= this.#now())) return null;
    return v;
  }

  async _delete(rlKey: string): Promise<boolean> {
    const key = [RATE_LIMIT_PREFIX, rlKey];
    const kv = this.#reader.kv;
    const had = (await kv.get(key)).versionstamp !== null;
    await kv.delete(key);
    return had;
  }
}
