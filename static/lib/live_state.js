// @ts-check
/**
 * The live part of a session's state and how each event of `/api/events` changes it: call
 * events go through the call state machine (`calls.js`), `presence` and `contact` change
 * the address book (`contacts.js`), and a `snapshot` (sent after a gap in the events)
 * replaces the calls and the presence of everyone. Pure, like its parts: an event that
 * changes nothing returns the very state it was given.
 *
 * @example
 * ```js
 * let live = { me: "3095", calls: NO_CALLS, contacts, contactsByExt: indexByExt(contacts) };
 * live = applyStreamEvent(live, { name: "presence", data: { jid, ext: "3099",
 *   status: "Away", note: "" }, at: Date.now() });
 * ```
 *
 * @module
 */
import { applyCallEvent, CALL_EVENTS, restoreCalls } from "./calls.js";
import { applyContactChange, applyPresence, indexByExt } from "./contacts.js";

/** @typedef {import("./api.js").Contact} Contact */

/**
 * @typedef {object} LiveState
 * @property {string} me the user's extension
 * @property {import("./calls.js").Calls} calls
 * @property {readonly Contact[]} contacts
 * @property {ReadonlyMap<string, Contact>} contactsByExt
 */

/** Every event name of the stream the page listens for. */
export const STREAM_EVENTS = Object.freeze([...CALL_EVENTS, "presence", "contact", "snapshot"]);

/**
 * `s` with a new contact list (and its index); `s` itself when the list is the same.
 * @template {LiveState} S
 * @param {S} s
 * @param {readonly Contact[]} contacts
 * @returns {S}
 */
export function withContacts(s, contacts) {
  return contacts === s.contacts ? s : { ...s, contacts, contactsByExt: indexByExt(contacts) };
}

/**
 * `s` with new calls; `s` itself when they are the same.
 * @template {LiveState} S
 * @param {S} s
 * @param {import("./calls.js").Calls} calls
 * @returns {S}
 */
export function withCalls(s, calls) {
  return calls === s.calls ? s : { ...s, calls };
}

/** @param {unknown} v */
const list = (v) => (Array.isArray(v) ? v : []);

/**
 * Applies one event of the stream.
 * @template {LiveState} S
 * @param {S} s
 * @param {{name: string, data: Readonly<Record<string, unknown>>, at: number}} event
 * @returns {S}
 */
export function applyStreamEvent(s, event) {
  const { name, data, at } = event;
  switch (name) {
    case "presence":
      return withContacts(s, applyPresence(s.contacts, data));
    case "contact":
      return withContacts(s, applyContactChange(s.contacts, data));
    case "snapshot": {
      let contacts = s.contacts;
      for (const p of list(data.presence)) {
        if (p && typeof p === "object") contacts = applyPresence(contacts, p);
      }
      const calls = restoreCalls(s.calls, list(data.calls), s.me, at);
      return withCalls(withContacts(s, contacts), calls);
    }
    default:
      return withCalls(s, applyCallEvent(s.calls, event, s.me));
  }
}
