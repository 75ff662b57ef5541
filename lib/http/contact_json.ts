/**
 * Contact fields shared by the Flex and Proxy address-book formats.
 *
 * @module
 */
import type { Contact } from "../mx/types.ts";

/** Optional contact fields, in the originals' order; each is emitted only when non-empty. */
const OPTIONAL = ["homePhone", "cellPhone", "email", "homeSystem", "did", "exchangeId"] as const;

/** Copies the non-empty optional fields of `c` into `o` (in order) and returns `o`. */
export function withOptionalFields(
  o: Record<string, string>,
  c: Contact,
): Record<string, string> {
  for (const k of OPTIONAL) if (c[k]) o[k] = c[k];
  return o;
}
