/**
 * Contact JSON: the fields shared by the Flex and Proxy address-book formats, the Flex
 * contact (`GET /api/contacts` and the stream's `contact` events use the same function, so
 * the two never disagree) and the Flex presence item (`presence` events and snapshots).
 *
 * @module
 */
import type { Contact } from "./types.ts";

/** Optional contact fields, in the originals' order; each is emitted only when non-empty. */
const OPTIONAL = ["homePhone", "cellPhone", "email", "homeSystem", "did", "exchangeId"] as const;

/**
 * Copies the non-empty optional fields of `c` into `o` (in order) and returns `o`.
 *
 * @example
 * ```ts
 * withOptionalFields({ ext: c.ext }, c); // { ext: "3095", cellPhone: "+79031744445", … }
 * ```
 */
export function withOptionalFields(
  o: Record<string, string>,
  c: Contact,
): Record<string, string> {
  for (const k of OPTIONAL) if (c[k]) o[k] = c[k];
  return o;
}

/**
 * Flex contact JSON, field order as the original (mx-protocol §5.6).
 *
 * @example
 * ```ts
 * flexContact(c); // { jid: "43884851147406145", status: "Available", firstName: "Dmitry", … }
 * ```
 */
export function flexContact(c: Contact): Record<string, string> {
  const o: Record<string, string> = { jid: c.jid };
  if (c.presence) o.status = c.presence;
  if (c.presenceNote) o.note = c.presenceNote;
  o.firstName = c.firstName;
  o.lastName = c.lastName;
  o.ext = c.ext;
  return withOptionalFields(o, c);
}

/** A presence item of the Flex stream. */
export interface FlexPresence {
  jid: string;
  ext: string;
  status: string;
  note: string;
}

/**
 * The presence of a contact as the stream's `presence` event and the snapshot carry it.
 *
 * @example
 * ```ts
 * flexPresence(c); // { jid: "43884852031096113", ext: "3099", status: "Away", note: "back at 3" }
 * ```
 */
export function flexPresence(c: Contact): FlexPresence {
  return { jid: c.jid, ext: c.ext, status: c.presence, note: c.presenceNote };
}
