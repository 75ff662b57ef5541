// @ts-check
/**
 * The user's voicemail list (`GET /api/voicemail`) and the changes the page makes to it
 * once the server has accepted them (read flag, note, deletion). Pure: every change
 * returns a new array, newest message first.
 *
 * @example
 * ```js
 * let list = sortVoicemails(body.voicemails);
 * unreadCount(list); // 2
 * list = withVoicemailChange(list, "80", { read: true });
 * list = withoutVoicemail(list, "80");
 * ```
 *
 * @module
 */

/**
 * A voicemail as the server sends it (mx-protocol §6.3; `read` and `note` are absent when
 * false or empty).
 * @typedef {{id: string, from: string, fromName?: string, callerName?: string, to?: string,
 *   ownerType?: string, received: number, duration?: number, read?: boolean,
 *   note?: string}} Voicemail
 */

/** @param {unknown} v */
const isVoicemail = (v) =>
  !!v && typeof v === "object" && typeof (/** @type {Voicemail} */ (v).id) === "string";

/**
 * The well-formed messages of a reply, newest first.
 * @param {readonly unknown[]} list
 * @returns {readonly Voicemail[]}
 */
export function sortVoicemails(list) {
  return /** @type {Voicemail[]} */ (list.filter(isVoicemail))
    .sort((a, b) => (Number(b.received) || 0) - (Number(a.received) || 0));
}

/**
 * How many messages are unread.
 * @param {readonly Voicemail[]} list
 */
export function unreadCount(list) {
  let n = 0;
  for (const v of list) if (!v.read) n++;
  return n;
}

/**
 * The list with message `id` changed (`read`, `note`); the same list when it is absent.
 * @param {readonly Voicemail[]} list
 * @param {string} id
 * @param {{read?: boolean, note?: string}} change
 * @returns {readonly Voicemail[]}
 */
export function withVoicemailChange(list, id, change) {
  const i = list.findIndex((v) => v.id === id);
  if (i < 0) return list;
  return list.with(i, { ...list[i], ...change });
}

/**
 * The list without message `id`.
 * @param {readonly Voicemail[]} list
 * @param {string} id
 * @returns {readonly Voicemail[]}
 */
export function withoutVoicemail(list, id) {
  const next = list.filter((v) => v.id !== id);
  return next.length === list.length ? list : next;
}

/**
 * Who left the message: the number to call back and a name ("" when none).
 * @param {Voicemail} v
 */
export function callerOf(v) {
  return { number: v.from ?? "", name: v.fromName || v.callerName || "" };
}
