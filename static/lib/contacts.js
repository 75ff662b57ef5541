// @ts-check
/**
 * Pure helpers for the address book: display names, search, lookup of a number's name,
 * and the changes the event stream reports (`presence`, `contact`), applied without
 * mutating anything: a change returns a new array with new objects for the contacts it
 * touched (the others stay the same objects), and a change that changes nothing returns
 * the very array it was given.
 *
 * @example
 * ```js
 * const byExt = indexByExt(contacts);
 * nameOf(byExt, "3099"); // "Maxim Donchenko"
 * contacts.filter((c) => matchesQuery(c, "donch"));
 * contacts = applyPresence(contacts, { jid: "1", ext: "3099", status: "Away", note: "" });
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

/**
 * Orders extensions as the server does: numeric ones by value, then the rest as strings.
 * @param {string} a
 * @param {string} b
 */
export function compareExt(a, b) {
  const na = /^\d+$/.test(a), nb = /^\d+$/.test(b);
  if (na && nb) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A presence change (`event: presence`, or an entry of a snapshot's `presence`): the
 * contact with that `jid` (else that `ext`) gets the new status and note.
 * @param {readonly Contact[]} contacts
 * @param {Readonly<Record<string, unknown>>} p `{jid, ext, status, note}`
 * @returns {readonly Contact[]}
 */
export function applyPresence(contacts, p) {
  const jid = typeof p.jid === "string" ? p.jid : "";
  const ext = typeof p.ext === "string" ? p.ext : "";
  if (!jid && !ext) return contacts;
  let i = jid ? contacts.findIndex((c) => c.jid === jid) : -1;
  if (i < 0 && ext) i = contacts.findIndex((c) => c.ext === ext);
  if (i < 0) return contacts;
  const old = contacts[i];
  const status = typeof p.status === "string" ? p.status : old.status;
  const note = typeof p.note === "string" ? p.note : old.note;
  if (status === old.status && (note ?? "") === (old.note ?? "")) return contacts;
  /** @type {Contact} */
  const next = { ...old, status };
  if (note) next.note = note;
  else delete next.note;
  return contacts.with(i, next);
}

/** @param {unknown} c */
const isContact = (c) =>
  !!c && typeof c === "object" && typeof (/** @type {Contact} */ (c).jid) === "string" &&
  typeof (/** @type {Contact} */ (c).ext) === "string";

/**
 * An address-book change (`event: contact`): `added` or `updated` puts the contact in its
 * place by extension (replacing the one with its `jid`), `removed` takes it out.
 * Malformed changes change nothing.
 * @param {readonly Contact[]} contacts
 * @param {Readonly<Record<string, unknown>>} change `{action, contact}`
 * @returns {readonly Contact[]}
 */
export function applyContactChange(contacts, change) {
  const c = change.contact;
  if (!isContact(c)) return contacts;
  const contact = /** @type {Contact} */ (c);
  const rest = contacts.filter((x) => x.jid !== contact.jid);
  if (change.action === "removed") return rest.length === contacts.length ? contacts : rest;
  if (change.action !== "added" && change.action !== "updated") return contacts;
  const at = rest.findIndex((x) => compareExt(x.ext, contact.ext) > 0);
  return rest.toSpliced(at < 0 ? rest.length : at, 0, contact);
}
