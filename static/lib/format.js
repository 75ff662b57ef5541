// @ts-check
/**
 * Text formats shown by the views.
 *
 * @example
 * ```js
 * clock(75_000); // "1:15"
 * clock(3_725_000); // "1:02:05"
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
