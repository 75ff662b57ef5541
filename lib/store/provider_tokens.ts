/**
 * APNs provider tokens shared through Deno KV, so every MXFlex process that sends with the
 * same `.p8` key uses the same token. Apple refuses a token older than an hour
 * (`ExpiredProviderToken`) and a key whose token changes more often than every 20 minutes
 * (`TooManyProviderTokenUpdates`); several processes that each signed their own would trip
 * the second rule.
 *
 * Key layout: `["push", "apns-provider-token", id]` → `{jwt, issuedAt}` where `id` names the
 * key (`<teamId>.<keyId>`); written with `expireIn` one hour. A token is used until it is
 * {@link PROVIDER_TOKEN_MAX_AGE_MS} old, then replaced; the replacement is an atomic
 * check-and-set on the entry that was read, so of several processes racing only one token
 * is created and the others adopt it.
 *
 * @module
 */
import { retryLocked } from "./retry_locked.ts";

/** A token is replaced once it is this old (Apple accepts it for 60 minutes). */
export const PROVIDER_TOKEN_MAX_AGE_MS = 50 * 60 * 1000;
/** Apple refuses token updates more often than this. */
export const PROVIDER_TOKEN_MIN_AGE_MS = 20 * 60 * 1000;

/** A signed provider token and when it was issued (its `iat`, ms). */
export interface ProviderToken {
  /** The ES256 JWT. */
  jwt: string;
  /** `iat` of the token, ms since the epoch (whole seconds). */
  issuedAt: number;
}

/** Signs a token with the given `iat` (ms since the epoch, whole seconds). */
export type ProviderTokenSigner = (issuedAt: number) => Promise<string>;

const PREFIX = ["push", "apns-provider-token"] as const;
/** KV keeps an entry no longer than Apple honours the token. */
const ENTRY_TTL_MS = 60 * 60 * 1000;

/**
 * Provider tokens per key, created once across all processes sharing the KV.
 *
 * @example
 * ```ts
 * const tokens = new ProviderTokenStore(kv);
 * const { jwt } = await tokens.get("TEAM123.ABC123", (iat) => sign(iat));
 * ```
 */
export class ProviderTokenStore {
  #kv: Deno.Kv;
  #now: () => number;
  #maxAgeMs: number;

  /**
   * @param kv the shared database
   * @param opts.now clock in ms (tests)
   * @param opts.maxAgeMs replace tokens this old; clamped to Apple's 20–50 minute window
   */
  constructor(kv: Deno.Kv, opts: { now?: () => number; maxAgeMs?: number } = {}) {
    this.#kv = kv;
    this.#now = opts.now ?? Date.now;
    this.#maxAgeMs = Math.min(
      PROVIDER_TOKEN_MAX_AGE_MS,
      Math.max(PROVIDER_TOKEN_MIN_AGE_MS, opts.maxAgeMs ?? PROVIDER_TOKEN_MAX_AGE_MS),
    );
  }

  /** How old a token may get before it is replaced. */
  get maxAgeMs(): number {
    return this.#maxAgeMs;
  }

  /**
   * The current token of `id`: the stored one while younger than {@link maxAgeMs}, else a
   * new one from `sign`, stored unless another process stored one first (then that one).
   */
  get(id: string, sign: ProviderTokenSigner): Promise<ProviderToken> {
    return retryLocked(() => this.#get(id, sign));
  }

  /**
   * Replaces `stale` after Apple answered `ExpiredProviderToken` for it. Only the first
   * process to report a given token replaces it; the others get that replacement.
   */
  replace(id: string, stale: string, sign: ProviderTokenSigner): Promise<ProviderToken> {
    return retryLocked(() => this.#get(id, sign, stale));
  }

  async #get(id: string, sign: ProviderTokenSigner, stale?: string): Promise<ProviderToken> {
    const key = [...PREFIX, id];
    for (;;) {
      const prev = await this.#kv.get<ProviderToken>(key);
      const now = this.#now();
      const cur = prev.value;
      if (cur && cur.jwt !== stale && now - cur.issuedAt < this.#maxAgeMs) return cur;
      const issuedAt = Math.floor(now / 1000) * 1000;
      const next: ProviderToken = { jwt: await sign(issuedAt), issuedAt };
      const res = await this.#kv.atomic().check(prev)
        .set(key, next, { expireIn: ENTRY_TTL_MS }).commit();
      if (res.ok) return next;
      // Another process stored a token between our read and commit: read it (the loop).
      stale = undefined;
    }
  }
}
