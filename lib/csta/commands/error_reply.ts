/**
 * The MX's error reply, `CSTAErrorCode` (mx-protocol §3.10): any command may get it instead of
 * its normal reply, with the same invoke id.
 *
 * @example
 * ```ts
 * const reply = parseXml("<CSTAErrorCode><privateErrorCode>URM Denied</privateErrorCode></CSTAErrorCode>");
 * isErrorReply(reply);    // true
 * parseErrorReply(reply); // "URM Denied"
 * ```
 *
 * @module
 */
import type { XmlElement } from "../xml.ts";
import { RefusedError } from "../errors.ts";

/**
 * Whether a reply is a `CSTAErrorCode`.
 *
 * @example
 * ```ts
 * isErrorReply(parseXml("<MakeCallResponse/>")); // false
 * ```
 */
export function isErrorReply(e: XmlElement): boolean {
  return e.name === "CSTAErrorCode";
}

/**
 * The message of a `CSTAErrorCode`: the character data of its child elements, the last
 * non-empty one winning (as the Go decoders effectively did); "CSTA error" when none has any.
 *
 * @example
 * ```ts
 * parseErrorReply(parseXml("<CSTAErrorCode><privateErrorCode>URM Denied</privateErrorCode></CSTAErrorCode>"));
 * // "URM Denied"
 * ```
 */
export function parseErrorReply(e: XmlElement): string {
  let msg = "";
  for (const c of e.children) {
    const t = c.text.trim();
    if (t) msg = t;
  }
  return msg || "CSTA error";
}

/**
 * Throws {@link RefusedError} when `e` is a `CSTAErrorCode`, so parsers fail with its text.
 *
 * @example
 * ```ts
 * throwIfErrorReply(reply); // then read the normal reply
 * ```
 */
export function throwIfErrorReply(e: XmlElement): void {
  if (isErrorReply(e)) throw new RefusedError(parseErrorReply(e));
}
