// @ts-check
/**
 * Pure helpers for the address book: display names, presence classes, search and lookup
 * of a number's name.
 *
 * @example
 * ```js
 * const byExt = indexByExt(contacts);
 * nameOf(byExt, "3099"); // "Maxim Donchenko"
 * contacts.filter((c) => matchesQuery(c, "donch"));
 * ```
 *
 * @module
 */

/** @typedef {import("./api.js").Contact} Contact */

/**
 * First and last name, or the extension when both are empty.
 * @param {Contact} c
 */
export function fullName(c) {
  return [c.firstName, c.lastName].filter(Boolean).join(" ") || c.ext;
}

/**
 * The dot colour for a presence status: `on`, `off` or `busy`.
 * @param {string | undefined} status
 * @returns {"on" | "off" | "busy"}
 */
export function presenceClass(status) {
  const s = (status ?? "").toLowerCase();
  if (s === "available" || s === "online") return "on";
  if (!s || s === "loggedout" || s === "offline") return "off";
  return "busy";
}

/** @param {string | undefined} s */
const digitsOf = (s) => (s ?? "").replace(/[^\d]/g, "");

/**
 * Whether a contact matches a search: the text anywhere in name, extension, e-mail, note
 * or status, or its digits anywhere in one of the numbers.
 * @param {Contact} c
 * @param {string} query
 */
export function matchesQuery(c, query) {
  const q = query.trim().toLowerCase();
  if (!q) return true;
  const hay = [fullName(c), c.ext, c.email, c.note, c.status].join(" ").toLowerCase();
  if (hay.includes(q)) return true;
  const digits = digitsOf(q);
  if (!digits) return false;
  return [c.ext, c.cellPhone, c.homePhone, c.did].some((p) => digitsOf(p).includes(digits));
}

/**
 * Contacts by extension.
 * @param {readonly Contact[]} contacts
 * @returns {ReadonlyMap<string, Contact>}
 */
export function indexByExt(contacts) {
  /** @type {Map<string, Contact>} */
  const m = new Map();
  for (const c of contacts) if (c.ext) m.set(String(c.ext), c);
  return m;
}

/**
 * The name of the contact with extension `number`, "" when there is none.
 * @param {ReadonlyMap<string, Contact>} byExt
 * @param {string} number
 */
export function nameOf(byExt, number) {
  const c = byExt.get(number);
  return c ? fullName(c) : "";
}
