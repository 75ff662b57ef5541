/**
 * HTTP Basic authentication for the proxy API: header parsing (RFC 7617, UTF-8) and a cache of
 * recently verified credentials so that identity-only endpoints need not log in to the MX on
 * every request.
 *
 * Unlike the seed (whose cache ignored the password for 30 minutes after one good login), the
 * cache is keyed by the password too: a wrong password always misses. Passwords are never stored;
 * only an HMAC-SHA-256 (keyed with a random per-cache secret) of scope + login + password is kept.
 *
 * @example
 * ```ts
 * const creds = parseBasicAuth(req.headers.get("authorization"));
 * if (!creds) return errorResponse(401, "unauthorized", { "WWW-Authenticate": "Basic realm=mxproxy" });
 * const cache = new VerifiedCache<{ jid: string }>();
 * let who = await cache.get("mx1", creds.login, creds.password);
 * if (!who) { who = await mxLogin(creds); await cache.set("mx1", creds.login, creds.password, who); }
 * ```
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Credentials from an `Authorization: Basic` header. */
export interface BasicCredentials {
  /** User id (MX login); never empty, no control characters. */
  login: string;
  /** Password; may contain ':' and any UTF-8. */
  password: string;
}

// token68 per RFC 7235; Basic uses standard base64 (padding optional: we are lenient there).
const BASIC_RE = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i;
// deno-lint-ignore no-control-regex
const CTL_RE = /[\u0000-\u001f\u007f]/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses an `Authorization` header value with the Basic scheme (case-insensitive). Returns
 * `undefined` for a missing header, another scheme, bad base64, invalid UTF-8, no ':' separator,
 * an empty login or a login with control characters. The password is everything after the first
 * ':' (RFC 7617: the user-id cannot contain ':').
 *
 * @example
 * ```ts
 * parseBasicAuth("Basic " + btoa("alice:pa:ss")); // { login: "alice", password: "pa:ss" }
 * parseBasicAuth("Bearer x");                      // undefined
 * ```
 */
export function parseBasicAuth(header: string | null | undefined): BasicCredentials | undefined {
  if (!header || header.length > 8192) return undefined;
  const m = BASIC_RE.exec(header.trim());
  if (!m) return undefined;
  let text: string;
  try {
    const bin = atob(m[1]);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    text = utf8.decode(bytes);
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  if (colon <= 0) return undefined;
  const login = text.slice(0, colon);
  if (CTL_RE.test(login)) return undefined;
  return { login, password: text.slice(colon + 1) };
}

/** Options for {@link VerifiedCache}. */
export interface VerifiedCacheOptions {
  /** How long a verified login stays valid, ms; default 5 minutes. */
  ttlMs?: number;
  /** Most entries kept; the least recently used goes first; default 10000. */
  max?: number;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

interface Entry<T> {
  secret: Buffer;
  value: T;
  expires: number;
}

/**
 * A bounded, expiring cache of credentials already verified against an MX. One entry per
 * (scope, login): the latest successful password wins; any other password misses.
 *
 * @example
 * ```ts
 * const cache = new VerifiedCache<string>({ ttlMs: 300_000 });
 * await cache.set("mx1", "alice", "pw", "43884851147406145");
 * await cache.get("mx1", "alice", "pw");    // "43884851147406145"
 * await cache.get("mx1", "alice", "wrong"); // undefined
 * ```
 */
export class VerifiedCache<T> {
  #ttl: number;
  #max: number;
  #now: () => number;
  // Random per instance: the stored digests are useless outside this process (no offline
  // dictionary attack on a memory dump without the key, no cross-instance correlation).
  #hmacKey = randomBytes(32);
  // Map iteration order is insertion order: re-inserting on hit gives LRU for free.
  #map = new Map<string, Entry<T>>();

  /**
   * Creates an empty cache with its own random HMAC key.
   *
   * @param opts See {@link VerifiedCacheOptions}.
   */
  constructor(opts: VerifiedCacheOptions = {}) {
    this.#ttl = opts.ttlMs ?? 5 * 60_000;
    this.#max = Math.max(1, opts.max ?? 10_000);
    this.#now = opts.now ?? Date.now;
  }

  /** Number of entries (including not yet swept expired ones). */
  get size(): number {
    return this.#map.size;
  }

  /**
   * The cached value for these exact credentials, or `undefined` (unknown, expired or a
   * different password). Async for API stability (a Web Crypto backend would be async).
   */
  get(scope: string, login: string, password: string): Promise<T | undefined> {
    const key = this.#key(scope, login);
    const e = this.#map.get(key);
    if (!e) return Promise.resolve(undefined);
    if (e.expires <= this.#now()) {
      this.#map.delete(key);
      return Promise.resolve(undefined);
    }
    // Constant-time compare; a wrong password does not evict the good entry (else anyone could
    // flush a user's cache entry by sending a bad password).
    if (!timingSafeEqual(e.secret, this.#secret(scope, login, password))) {
      return Promise.resolve(undefined);
    }
    this.#map.delete(key);
    this.#map.set(key, e);
    return Promise.resolve(e.value);
  }

  /** Remembers that these credentials were accepted, with `value` (e.g. the JID). */
  set(scope: string, login: string, password: string, value: T): Promise<void> {
    const key = this.#key(scope, login);
    this.#map.delete(key);
    while (this.#map.size >= this.#max) {
      this.#map.delete(this.#map.keys().next().value as string);
    }
    this.#map.set(key, {
      secret: this.#secret(scope, login, password),
      value,
      expires: this.#now() + this.#ttl,
    });
    return Promise.resolve();
  }

  /** Forgets a login (e.g. after the MX rejected it). */
  delete(scope: string, login: string): void {
    this.#map.delete(this.#key(scope, login));
  }

  /** Forgets everything. */
  clear(): void {
    this.#map.clear();
  }

  #key(scope: string, login: string): string {
    // JSON array encoding keeps ("a:b","c") and ("a","b:c") apart.
    return createHmac("sha256", this.#hmacKey).update(JSON.stringify([scope, login])).digest(
      "hex",
    );
  }

  #secret(scope: string, login: string, password: string): Buffer {
    return createHmac("sha256", this.#hmacKey).update(JSON.stringify([scope, login, password]))
      .digest();
  }
}
