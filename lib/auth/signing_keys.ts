/**
 * HS256 signing keys shared through Deno KV, so a token issued by one instance is accepted by
 * every other one and survives restarts.
 *
 * - Each key has a `kid` (put in the token header) and is the *current* key for
 *   `rotateSeconds` (default one day); the first instance that needs a key after that creates
 *   the next one. Creation is one atomic operation checked against the current-key entry, so
 *   racing instances create exactly one key per rotation (the others read the winner's).
 * - An old key stays accepted until the longest token signed with it has expired:
 *   `acceptUntil` = end of its current period + the longest token lifetime of any instance
 *   that signed with it (each instance raises it once per key if its `tokenTtl` is longer)
 *   + one minute of clock skew. KV drops the key after that (`expireIn`).
 * - Verification needs no KV read for known keys; an unknown `kid` reloads the key list at
 *   most once per second (a key another instance just created), so made-up `kid`s cost
 *   nothing.
 *
 * Key layout: `["jwt-key", kid]` → {@link StoredKey}; `["jwt-current"]` → `{kid, rotateAt}`,
 * the key that signs now.
 *
 * The secrets are random 64-byte values stored in KV (like the ACME account key): whoever can
 * read the database can mint tokens, so protect it as the configuration file.
 *
 * @example
 * ```ts
 * const keys = await SigningKeys.open(kv, { ttlSeconds: 3600 });
 * const { kid, key } = await keys.signingKey();
 * const same = await keys.verificationKey(kid); // on any instance sharing kv
 * ```
 *
 * @module
 */
import { retryLocked } from "../store/retry_locked.ts";

/** Where {@link TokenIssuer} gets its keys (see `lib/auth/jwt.ts`). */
export interface KeySource {
  /** The key to sign new tokens with, and its id. */
  signingKey(): Promise<{ kid: string; key: CryptoKey }>;
  /** The key for a token's `kid`, or undefined when unknown or no longer accepted. */
  verificationKey(kid: string): Promise<CryptoKey | undefined>;
}

/** A key as stored in KV. */
export interface StoredKey {
  kid: string;
  /** 64 random bytes. */
  secret: Uint8Array;
  /** When it was created, ms. */
  createdAt: number;
  /** When it stops being the current (signing) key, ms. */
  rotateAt: number;
  /** When tokens signed with it stop being accepted, ms. */
  acceptUntil: number;
}

interface Current {
  kid: string;
  rotateAt: number;
}

interface Loaded {
  kid: string;
  key: CryptoKey;
  rotateAt: number;
  acceptUntil: number;
}

const KEY = "jwt-key";
const CURRENT = ["jwt-current"] as const;
const SKEW_MS = 60_000;
const RELOAD_MIN_MS = 1000;
const KID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Options for {@link SigningKeys.open}. */
export interface SigningKeysOptions {
  /** How long a key signs new tokens, seconds; default 86400 (daily). */
  rotateSeconds?: number;
  /** This instance's token lifetime, seconds (how long its tokens need their key). */
  ttlSeconds: number;
  /** Clock in ms (tests); default `Date.now`. */
  now?: () => number;
}

/**
 * Shared, rotated HS256 keys.
 *
 * @example
 * ```ts
 * const keys = await SigningKeys.open(kv, { ttlSeconds: 3600, rotateSeconds: 86400 });
 * const issuer = new TokenIssuer({ keys, ttlSeconds: 3600 });
 * ```
 */
export class SigningKeys implements KeySource {
  #kv: Deno.Kv;
  #rotateMs: number;
  #ttlMs: number;
  #now: () => number;
  #keys = new Map<string, Loaded>();
  #current?: Loaded;
  #extended = new Set<string>();
  #rotating?: Promise<Loaded>;
  #reloading?: Promise<void>;
  #reloadedAt = -Infinity;

  private constructor(kv: Deno.Kv, o: SigningKeysOptions) {
    this.#kv = kv;
    this.#rotateMs = (o.rotateSeconds ?? 86_400) * 1000;
    this.#ttlMs = o.ttlSeconds * 1000;
    this.#now = o.now ?? Date.now;
    if (!(this.#rotateMs > 0) || !(this.#ttlMs > 0)) {
      throw new RangeError("rotateSeconds and ttlSeconds must be positive");
    }
  }

  /** Loads the accepted keys and makes sure a current one exists (creating it if needed). */
  static async open(kv: Deno.Kv, o: SigningKeysOptions): Promise<SigningKeys> {
    const k = new SigningKeys(kv, o);
    await k.#reload();
    await k.signingKey();
    return k;
  }

  /** Number of keys accepted now (for metrics and tests). */
  get size(): number {
    return this.#keys.size;
  }

  /** @inheritdoc */
  async signingKey(): Promise<{ kid: string; key: CryptoKey }> {
    let cur = this.#current;
    if (!cur || cur.rotateAt <= this.#now()) {
      this.#rotating ??= this.#ensureCurrent().finally(() => this.#rotating = undefined);
      cur = await this.#rotating;
    }
    if (!this.#extended.has(cur.kid)) await this.#extend(cur);
    return { kid: cur.kid, key: cur.key };
  }

  /** @inheritdoc */
  async verificationKey(kid: string): Promise<CryptoKey | undefined> {
    if (!KID_RE.test(kid)) return undefined;
    const usable = () => {
      const k = this.#keys.get(kid);
      return k && k.acceptUntil > this.#now() ? k : undefined;
    };
    // Unknown here, or past the end known here (another instance with a longer token
    // lifetime may have extended it): read the keys again, at most once per second.
    if (!usable() && this.#now() - this.#reloadedAt >= RELOAD_MIN_MS) {
      this.#reloading ??= this.#reload().finally(() => this.#reloading = undefined);
      await this.#reloading;
    }
    return usable()?.key;
  }

  /** Reads the current key, or creates the next one when it is due (exactly once). */
  async #ensureCurrent(): Promise<Loaded> {
    for (;;) {
      const cur = await retryLocked(() => this.#kv.get<Current>(CURRENT));
      const now = this.#now();
      if (cur.value && cur.value.rotateAt > now) {
        const have = this.#keys.get(cur.value.kid);
        if (have) return this.#current = have;
        const stored = await retryLocked(() => this.#kv.get<StoredKey>([KEY, cur.value!.kid]));
        if (stored.value) return this.#current = await this.#load(stored.value);
        // The current entry names a key that is gone (deleted by hand): replace it.
      }
      const kid = crypto.randomUUID();
      const key: StoredKey = {
        kid,
        secret: crypto.getRandomValues(new Uint8Array(64)),
        createdAt: now,
        rotateAt: now + this.#rotateMs,
        acceptUntil: now + this.#rotateMs + this.#ttlMs + SKEW_MS,
      };
      const res = await retryLocked(() =>
        this.#kv.atomic().check(cur)
          .set([KEY, kid], key, { expireIn: key.acceptUntil - now })
          .set(CURRENT, { kid, rotateAt: key.rotateAt } satisfies Current)
          .commit()
      );
      // Lost the race: another instance created the key; read it.
      if (res.ok) return this.#current = await this.#load(key);
    }
  }

  /** Makes sure tokens this instance signs with `k` stay verifiable until they expire. */
  async #extend(k: Loaded): Promise<void> {
    const need = k.rotateAt + this.#ttlMs + SKEW_MS;
    for (;;) {
      const e = await retryLocked(() => this.#kv.get<StoredKey>([KEY, k.kid]));
      if (!e.value || e.value.acceptUntil >= need) break;
      const v = { ...e.value, acceptUntil: need };
      const res = await retryLocked(() =>
        this.#kv.atomic().check(e).set([KEY, k.kid], v, { expireIn: need - this.#now() }).commit()
      );
      if (res.ok) break;
    }
    k.acceptUntil = Math.max(k.acceptUntil, need);
    this.#extended.add(k.kid);
  }

  async #reload(): Promise<void> {
    this.#reloadedAt = this.#now();
    const now = this.#now();
    const listed = new Set<string>();
    for await (const e of this.#kv.list<StoredKey>({ prefix: [KEY] })) {
      const v = e.value;
      if (v.acceptUntil <= now) continue;
      listed.add(v.kid);
      const have = this.#keys.get(v.kid);
      if (have) have.acceptUntil = Math.max(have.acceptUntil, v.acceptUntil);
      else await this.#load(v);
    }
    // Keys past their end (KV expired them, or will): forgotten here too.
    for (const [kid, k] of this.#keys) {
      if (!listed.has(kid) && k.acceptUntil <= now) this.#keys.delete(kid);
    }
  }

  async #load(v: StoredKey): Promise<Loaded> {
    const have = this.#keys.get(v.kid);
    if (have) return have;
    const key = await importHmac(v.secret);
    const l: Loaded = { kid: v.kid, key, rotateAt: v.rotateAt, acceptUntil: v.acceptUntil };
    this.#keys.set(v.kid, l);
    return l;
  }
}

/**
 * One fixed key (tests, and a server without shared state): tokens carry `kid` and are valid
 * only with this key.
 *
 * @example
 * ```ts
 * const issuer = new TokenIssuer({ keys: new StaticKey(crypto.getRandomValues(new Uint8Array(64))) });
 * ```
 */
export class StaticKey implements KeySource {
  /** The key id written into tokens. */
  readonly kid: string;
  #key: Promise<CryptoKey>;

  /** @param raw at least 32 bytes; @param kid default "static" */
  constructor(raw: Uint8Array, kid = "static") {
    if (raw.byteLength < 32) throw new RangeError("HS256 key must be at least 32 bytes");
    this.kid = kid;
    this.#key = importHmac(raw);
  }

  /** @inheritdoc */
  async signingKey(): Promise<{ kid: string; key: CryptoKey }> {
    return { kid: this.kid, key: await this.#key };
  }

  /** @inheritdoc */
  async verificationKey(kid: string): Promise<CryptoKey | undefined> {
    return kid === this.kid ? await this.#key : undefined;
  }
}

/** Imports raw bytes as a non-extractable HMAC-SHA-256 key (cannot leak by serialisation). */
function importHmac(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    new Uint8Array(raw),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}
