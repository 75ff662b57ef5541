/**
 * Sealed MX credentials of Flex tokens, so that a token can open a user session on the MX
 * (call log, voicemail, presence) without the user's password at rest.
 *
 * At login the credential the MX login used (the password hash the CSTA login sends, or the
 * plain password for an MX that asked for it, mx-protocol §2.2/§2.4) is encrypted with
 * AES-256-GCM under a random key made for that one token. The ciphertext goes to Deno KV
 * under the token id, expiring with the token (`expireIn`, and the expiry is checked on
 * every read, since KV deletes expired keys only eventually); the key goes only into the
 * token itself (the private claim `ck`, base64url). The token id is the additional
 * authenticated data, so a ciphertext cannot be moved to another token.
 *
 * Nothing at rest decrypts without a live token; any instance sharing the KV can open the
 * session for a token it accepts; {@link CredentialVault.wipe} at logout and expiry makes an
 * old token useless for user sessions even if it leaks later. Secrets never reach logs: no
 * method logs, and errors carry no key or plaintext.
 *
 * Key layout: `["flex", "credential", jti]` → `{iv, data, exp}` (bytes, bytes, Unix seconds).
 *
 * @example
 * ```ts
 * const vault = new CredentialVault(kv);
 * const key = CredentialVault.newKey(); // goes into the JWT as `ck`
 * await vault.seal(jti, key, { login: "dmitry", secret: hash }, exp);
 * const cred = await vault.open(jti, key); // { login, secret } or undefined
 * await vault.wipe(jti); // logout
 * ```
 *
 * @module
 */

/** What a sealed credential holds. */
export interface MxCredential {
  /** The MX login name. */
  login: string;
  /** What the MX login accepts as the password (normally the hash the login sent). */
  secret: string;
}

interface Sealed {
  iv: Uint8Array;
  data: Uint8Array;
  /** Token expiry, Unix seconds. */
  exp: number;
}

const PREFIX = ["flex", "credential"] as const;
const enc = new TextEncoder();
const dec = new TextDecoder();

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A 32-byte key from base64url, or undefined for anything else. */
function fromB64url(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]{43}$/.test(s)) return undefined;
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.length === 32 ? out : undefined;
}

function importKey(raw: Uint8Array, use: KeyUsage): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new Uint8Array(raw), "AES-GCM", false, [use]);
}

/**
 * @example
 * ```ts
 * const vault = new CredentialVault(await Deno.openKv(":memory:"));
 * ```
 */
export class CredentialVault {
  #kv: Deno.Kv;
  #now: () => number;

  /**
   * @param kv the database (keys under `["flex", "credential"]`)
   * @param now clock in ms (tests)
   */
  constructor(kv: Deno.Kv, now: () => number = Date.now) {
    this.#kv = kv;
    this.#now = now;
  }

  /**
   * A fresh random key for one token, base64url (43 characters).
   *
   * @example
   * ```ts
   * CredentialVault.newKey(); // "q3Rk…" (32 random bytes)
   * ```
   */
  static newKey(): string {
    return b64url(crypto.getRandomValues(new Uint8Array(32)));
  }

  /**
   * Encrypts `cred` with `key` and stores it for token `jti` until `exp` (Unix seconds).
   * @throws {RangeError} for a malformed key or an expiry in the past
   */
  async seal(jti: string, key: string, cred: MxCredential, exp: number): Promise<void> {
    const raw = fromB64url(key);
    if (!raw) throw new RangeError("bad credential key");
    const ttlMs = exp * 1000 - this.#now();
    if (!(ttlMs > 0)) throw new RangeError("token already expired");
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: enc.encode(jti) },
        await importKey(raw, "encrypt"),
        enc.encode(JSON.stringify(cred)),
      ),
    );
    await this.#kv.set([...PREFIX, jti], { iv, data, exp } satisfies Sealed, { expireIn: ttlMs });
  }

  /**
   * The credential of token `jti`, or `undefined` when it is gone (logout, expiry), the key
   * does not fit, or the ciphertext was tampered with.
   */
  async open(jti: string, key: string): Promise<MxCredential | undefined> {
    const raw = fromB64url(key);
    if (!raw) return undefined;
    const e = await this.#kv.get<Sealed>([...PREFIX, jti]);
    const v = e.value;
    if (!v || v.exp * 1000 <= this.#now()) return undefined;
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: new Uint8Array(v.iv), additionalData: enc.encode(jti) },
        await importKey(raw, "decrypt"),
        new Uint8Array(v.data),
      );
      const cred = JSON.parse(dec.decode(plain)) as MxCredential;
      if (typeof cred?.login !== "string" || typeof cred.secret !== "string") return undefined;
      return cred;
    } catch {
      // Wrong key or tampered data: AES-GCM's tag check failed.
      return undefined;
    }
  }

  /** Deletes the credential of token `jti` (logout, expiry). */
  async wipe(jti: string): Promise<void> {
    await this.#kv.delete([...PREFIX, jti]);
  }
}
