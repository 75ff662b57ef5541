// @ts-check
/**
 * Text formats shown by the views.
 *
 * @example
 * ```js
 * clock(75_000); // "1:15"
 * clock(3_725_000); // "1:02:05"
 * when(Date.now() - 86_400_000); // "Yesterday 14:31" (in the browser's language)
 * ```
 *
 * @module
 */

/**
 * A duration as `m:ss`, or `h:mm:ss` from one hour on.
 * @param {number} ms
 */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** @param {Date} a @param {Date} b */
const sameDay = (a, b) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() &&
  a.getDate() === b.getDate();

/**
 * A moment for a list: the time alone today, "Yesterday" and the time, else the date (with
 * the year when not this year) and the time, in the browser's language and time zone.
 * @param {number} ms since the epoch
 * @param {number} [now] ms since the epoch
 */
export function when(ms, now = Date.now()) {
  const d = new Date(ms), n = new Date(now);
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (sameDay(d, n)) return time;
  const yesterday = new Date(n.getFullYear(), n.getMonth(), n.getDate() - 1);
  if (sameDay(d, yesterday)) return `Yesterday ${time}`;
  const date = d.toLocaleDateString(undefined, {
    day: "numeric",
    month: "short",
    year: d.getFullYear() === n.getFullYear() ? undefined : "numeric",
  });
  return `${date} ${time}`;
}
