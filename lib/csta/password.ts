/**
 * MX password hashing (mx-protocol §2.2): the MX expects base64(SHA-1(password)) followed by
 * one newline, and every client passes through a password that already looks like such a
 * hash, so configs may store the hash instead of the plain password.
 *
 * @module
 */

/**
 * Hashes a plain password the way the MX expects it.
 *
 * @example
 * ```ts
 * await hashPassword("password"); // "W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
 * ```
 */
export async function hashPassword(pw: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-1", new TextEncoder().encode(pw)),
  );
  let bin = "";
  for (const b of digest) bin += String.fromCharCode(b);
  return btoa(bin) + "\n";
}

/** Standard base64 alphabet with padding; a SHA-1 digest is 28 characters with one `=`. */
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Whether `pw` already is a hash made by {@link hashPassword}: it ends in `"\n"`, is longer
 * than 4 characters, and the part before the newline is base64 of exactly 20 bytes.
 *
 * @example
 * ```ts
 * isHashedPassword("W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"); // true
 * isHashedPassword("password"); // false
 * ```
 */
export function isHashedPassword(pw: string): boolean {
  if (pw.length <= 4 || !pw.endsWith("\n")) return false;
  const b64 = pw.slice(0, -1);
  if (b64.length % 4 !== 0 || !B64.test(b64)) return false;
  try {
    return atob(b64).length === 20;
  } catch {
    return false;
  }
}
