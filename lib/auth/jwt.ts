/**
 * Access tokens for the Flex API: HS256 JWTs signed with a random per-process key (so every
 * restart invalidates all tokens, as the seed documents), with a `jti` so that logout can revoke
 * one token.
 *
 * Verification pins the algorithm to HS256: `alg: none`, RS256/ES256 tokens (including the
 * classic "RS256 public key used as HMAC secret" confusion), tampered, truncated, foreign-key,
 * expired and malformed tokens all fail with an {@link AuthError}.
 *
 * @example
 * ```ts
 * const issuer = new TokenIssuer();
 * const { token, expiresIn } = await issuer.issue({ sub: "43884851147406145", ext: "3095", mx: "63022" });
 * const claims = await issuer.verify(token); // { sub, ext, mx, jti, iat, exp }
 * issuer.revoke(claims.jti, claims.exp);     // logout
 * ```
 *
 * @module
 */

import { errors as joseErrors, jwtVerify, SignJWT } from "jose";

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
  /** HMAC key; default 64 random bytes created with the issuer (the app creates one per process). */
  key?: Uint8Array;
  /** Clock in milliseconds; default `Date.now`. Injectable for tests. */
  now?: () => number;
  /** Most revoked-but-unexpired tokens remembered; default 100000. */
  maxRevoked?: number;
}

// iat is backdated like the original (`iat = now - 10 s`), which gives verifiers on other
// hosts a little clock skew for free.
const IAT_BACKDATE_SECONDS = 10;
// A JWT with our claims is ~300 bytes; anything huge is garbage and not worth parsing.
const MAX_TOKEN_LENGTH = 4096;

/**
 * Issues and verifies HS256 access tokens, and remembers revoked ones until they expire.
 *
 * @example
 * ```ts
 * const issuer = new TokenIssuer({ ttlSeconds: 3600 });
 * const { token } = await issuer.issue({ sub: "1", ext: "3095", mx: "63022" });
 * await issuer.verify(token);
 * ```
 */
export class TokenIssuer {
  /** Token lifetime in seconds (the `expires_in` of the login reply). */
  readonly ttlSeconds: number;
  #key: Promise<CryptoKey>;
  #now: () => number;
  // jti -> exp (seconds). Insertion order is close to expiry order (fixed TTL), which makes the
  // "drop the oldest" fallback evict the entries closest to expiring anyway.
  #revoked = new Map<string, number>();
  #maxRevoked: number;
  #sweepAt = 1024;

  /**
   * Creates an issuer; without `key`, a fresh random 64-byte key (tokens die with the issuer).
   *
   * @param opts See {@link TokenIssuerOptions}.
   */
  constructor(opts: TokenIssuerOptions = {}) {
    this.ttlSeconds = opts.ttlSeconds ?? 3600;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds <= 0) {
      throw new RangeError("ttlSeconds must be a positive integer");
    }
    const raw = opts.key ?? crypto.getRandomValues(new Uint8Array(64));
    if (raw.byteLength < 32) throw new RangeError("HS256 key must be at least 32 bytes");
    // Import once: jose would otherwise re-import a raw key on every sign/verify. The key is not
    // extractable, so it cannot leak through a stray serialisation either.
    this.#key = crypto.subtle.importKey(
      "raw",
      new Uint8Array(raw),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    this.#now = opts.now ?? Date.now;
    this.#maxRevoked = opts.maxRevoked ?? 100_000;
  }

  /**
   * Signs a new token. Header `{"alg":"HS256","typ":"JWT"}`; claims in alphabetical order like
   * the original (`ck` when given, `exp, ext, iat, jti, mx, sub`).
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
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(await this.#key);
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
    let payload: Record<string, unknown>;
    let typ: unknown;
    try {
      const res = await jwtVerify(token, await this.#key, {
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
    if (this.#revoked.has(jti)) throw new AuthError("token revoked");
    return ck === undefined ? { sub, ext, mx, jti, iat, exp } : { sub, ext, mx, jti, iat, exp, ck };
  }

  /**
   * Revokes one token (logout) until its expiry; afterwards it fails on `exp` anyway, so it is
   * forgotten. Memory is bounded by `maxRevoked`.
   *
   * @example
   * ```ts
   * const claims = await issuer.verify(token);
   * issuer.revoke(claims.jti, claims.exp);
   * ```
   */
  revoke(jti: string, exp: number): void {
    const nowSec = Math.floor(this.#now() / 1000);
    if (exp <= nowSec) return; // already dead
    this.#revoked.delete(jti); // re-insert at the end
    this.#revoked.set(jti, exp);
    if (this.#revoked.size >= this.#sweepAt) {
      for (const [id, e] of this.#revoked) if (e <= nowSec) this.#revoked.delete(id);
      // Amortised: the next full sweep waits until the set has doubled.
      this.#sweepAt = Math.max(1024, this.#revoked.size * 2);
    }
    // Hard bound: drop the oldest entries (they expire first with a fixed TTL).
    while (this.#revoked.size > this.#maxRevoked) {
      const first = this.#revoked.keys().next().value as string;
      this.#revoked.delete(first);
    }
  }

  /** Number of remembered revocations (for metrics and tests). */
  get revokedCount(): number {
    return this.#revoked.size;
  }
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
