/**
 * Access tokens for the Flex API: HS256 JWTs with a `kid` header naming the signing key and a
 * `jti` naming the token. The keys come from a {@link KeySource}: the server uses
 * `SigningKeys` (`lib/auth/signing_keys.ts`: shared through Deno KV, rotated daily), so a
 * token is valid on every instance and across restarts; without one, a random per-issuer key.
 * Whether a token is still live (not logged out) is decided by `TokenMonitors`, not here.
 *
 * Verification pins the algorithm to HS256: `alg: none`, RS256/ES256 tokens (including the
 * classic "RS256 public key used as HMAC secret" confusion), tampered, truncated, foreign-key,
 * unknown-`kid`, expired and malformed tokens all fail with an {@link AuthError}.
 *
 * @example
 * ```ts
 * const issuer = new TokenIssuer();
 * const { token, expiresIn } = await issuer.issue({ sub: "43884851147406145", ext: "3095", mx: "63022" });
 * const claims = await issuer.verify(token); // { sub, ext, mx, jti, iat, exp }
 * ```
 *
 * @module
 */

import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { type KeySource, StaticKey } from "./signing_keys.ts";

/**
 * A rejected token. The message is short and safe to show ("token expired", "invalid token",
 * "token revoked"). It knows nothing about HTTP (`lib/auth` does not depend on `lib/http`): the
 * Flex routes answer it with 401 and the RFC 6750 challenge
 * `Bearer realm="MXFlex", error="invalid_token"`.
 *
 * @example
 * ```ts
 * try {
 *   await issuer.verify(token);
 * } catch (err) {
 *   if (err instanceof AuthError) console.log(err.message); // "token expired"
 * }
 * ```
 */
export class AuthError extends Error {
  /**
   * Creates a token error.
   *
   * @param message Short client-visible reason.
   */
  constructor(message: string) {
    super(message);
    this.name = "AuthError";
  }
}

/** Claims a caller puts into a token. `sub` is the JID as a string (JIDs exceed 2^53). */
export interface TokenClaims {
  /** JID as a decimal string. */
  sub: string;
  /** The user's extension. */
  ext: string;
  /** The MX serial number (`sn`). */
  mx: string;
  /**
   * Private claim: the key of the token's sealed MX credential (base64url; see
   * `lib/store/credentials.ts`). Only the token carries it.
   */
  ck?: string;
}

/** Claims of a verified token. */
export interface VerifiedClaims extends TokenClaims {
  /** Random token id, used for revocation. */
  jti: string;
  /** Issued-at, seconds since the epoch. */
  iat: number;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

/** Options for {@link TokenIssuer}. */
export interface TokenIssuerOptions {
  /** Token lifetime in seconds; default 3600. */
  ttlSeconds?: number;
  /** Where the keys come from; default a {@link StaticKey} of `key`. */
  keys?: KeySource;
  /** One fixed HMAC key (tests); default 64 random bytes created with the issuer. */
  key?: Uint8Array;
  /** Clock in milliseconds; default `Date.now`. Injectable for tests. */
  now?: () => number;
}

// iat is backdated like the original (`iat = now - 10 s`), which gives verifiers on other
// hosts a little clock skew for free.
const IAT_BACKDATE_SECONDS = 10;
// A JWT with our claims is ~300 bytes; anything huge is garbage and not worth parsing.
const MAX_TOKEN_LENGTH = 4096;

/**
 * Issues and verifies HS256 access tokens.
 *
 * @example
 * ```ts
 * const issuer = new TokenIssuer({ ttlSeconds: 3600, keys: await SigningKeys.open(kv, { ttlSeconds: 3600 }) });
 * const { token } = await issuer.issue({ sub: "1", ext: "3095", mx: "63022" });
 * await issuer.verify(token);
 * ```
 */
export class TokenIssuer {
  /** Token lifetime in seconds (the `expires_in` of the login reply). */
  readonly ttlSeconds: number;
  #keys: KeySource;
  #now: () => number;
  // Tokens whose signature and claims were checked, by their exact text: every request of a
  // client carries the same token, and HMAC verification through Web Crypto was the largest
  // part of a request's cost. Only the identical string hits, so nothing forged does; expiry
  // is checked on every hit; revocation is the caller's (live tokens), as without the cache.
  #verified = new Map<string, VerifiedClaims>();

  /**
   * Creates an issuer; without `keys` or `key`, a fresh random 64-byte key (tokens die with
   * the issuer).
   *
   * @param opts See {@link TokenIssuerOptions}.
   */
  constructor(opts: TokenIssuerOptions = {}) {
    this.ttlSeconds = opts.ttlSeconds ?? 3600;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds <= 0) {
      throw new RangeError("ttlSeconds must be a positive integer");
    }
    this.#keys = opts.keys ??
      new StaticKey(opts.key ?? crypto.getRandomValues(new Uint8Array(64)));
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Signs a new token. Header `{"alg":"HS256","typ":"JWT","kid":…}`; claims in alphabetical
   * order like the original (`ck` when given, `exp, ext, iat, jti, mx, sub`).
   *
   * @example
   * ```ts
   * const { token, expiresIn } = await issuer.issue({ sub: jid, ext: "3095", mx: sn });
   * ```
   */
  async issue(claims: TokenClaims): Promise<{ token: string; expiresIn: number }> {
    for (const k of ["sub", "ext", "mx"] as const) {
      if (typeof claims[k] !== "string") throw new TypeError(`claim ${k} must be a string`);
    }
    const nowSec = Math.floor(this.#now() / 1000);
    const payload = {
      ...(claims.ck === undefined ? {} : { ck: String(claims.ck) }),
      exp: nowSec + this.ttlSeconds,
      ext: claims.ext,
      iat: nowSec - IAT_BACKDATE_SECONDS,
      jti: randomId(),
      mx: claims.mx,
      sub: claims.sub,
    };
    const { kid, key } = await this.#keys.signingKey();
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
      .sign(key);
    return { token, expiresIn: this.ttlSeconds };
  }

  /**
   * Verifies a token and returns its claims, or throws {@link AuthError}.
   *
   * @example
   * ```ts
   * try {
   *   const { ext } = await issuer.verify(token);
   * } catch (err) {
   *   if (err instanceof AuthError) throw new HttpError(401, err.message);
   *   throw err;
   * }
   * ```
   */
  async verify(token: string): Promise<VerifiedClaims> {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new AuthError("invalid token");
    }
    const known = this.#verified.get(token);
    if (known) {
      if (known.exp > this.#now() / 1000) return known;
      this.#verified.delete(token);
      throw new AuthError("token expired");
    }
    const claims = await this.#verifyFully(token);
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
      // The oldest entry goes first (insertion order); a busy client simply re-verifies.
      this.#verified.delete(this.#verified.keys().next().value as string);
    }
    this.#verified.set(token, claims);
    return claims;
  }

  async #verifyFully(token: string): Promise<VerifiedClaims> {
    let payload: Record<string, unknown>;
    let typ: unknown;
    try {
      const res = await jwtVerify(token, async (header) => {
        const key = typeof header.kid === "string"
          ? await this.#keys.verificationKey(header.kid)
          : undefined;
        if (!key) throw new AuthError("invalid token");
        return key;
      }, {
        algorithms: ["HS256"],
        currentDate: new Date(this.#now()),
        requiredClaims: ["exp", "iat"],
      });
      payload = res.payload as Record<string, unknown>;
      typ = res.protectedHeader.typ;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AuthError("token expired");
      // Everything else (bad signature, alg, structure, nbf, claim types) is one answer: the
      // details help attackers more than clients.
      throw new AuthError("invalid token");
    }
    // As the original: typ must be absent or "JWT".
    if (typ !== undefined && typ !== "JWT") throw new AuthError("invalid token");
    const { sub, ext, mx, jti, iat, exp, ck } = payload;
    if (
      typeof sub !== "string" || typeof ext !== "string" || typeof mx !== "string" ||
      typeof jti !== "string" || typeof iat !== "number" || typeof exp !== "number" ||
      (ck !== undefined && typeof ck !== "string")
    ) {
      throw new AuthError("invalid token");
    }
    // The original rejected tokens issued in the future; jose only checks that without maxTokenAge.
    if (iat > Math.floor(this.#now() / 1000)) throw new AuthError("invalid token");
    return Object.freeze(
      ck === undefined ? { sub, ext, mx, jti, iat, exp } : { sub, ext, mx, jti, iat, exp, ck },
    );
  }
}

/** Verified tokens remembered by {@link TokenIssuer.verify} (about 0.5 KiB each). */
export const VERIFIED_CACHE_SIZE = 10_000;

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
