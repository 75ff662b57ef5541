/**
 * The one password-length cap of both APIs (Flex login form, Proxy Basic auth): a password
 * longer than {@link MAX_PASSWORD} characters is answered 400 `password too long` before any
 * MX login is tried. The reason is the wire: the plain-password retry (mx-protocol §2.4) sends
 * the password XML-escaped in one CSTA frame of at most 64 KiB, and `&` alone grows fivefold.
 * 400, not 401: nothing was verified, so it is an input limit, not a wrong password (and it
 * does not count as a failed login). See docs/DECISIONS.md.
 *
 * @example
 * ```ts
 * checkPassword(form.password); // throws HttpError(400, "password too long") past the cap
 * ```
 *
 * @module
 */
import { HttpError } from "./errors.ts";

/** Longest accepted password (characters). */
export const MAX_PASSWORD = 1024;

/**
 * Throws 400 `password too long` when `password` exceeds {@link MAX_PASSWORD}.
 *
 * @example
 * ```ts
 * checkPassword("secret"); // fine
 * checkPassword("x".repeat(2000)); // HttpError 400
 * ```
 */
export function checkPassword(password: string): void {
  if (password.length > MAX_PASSWORD) throw new HttpError(400, "password too long");
}
