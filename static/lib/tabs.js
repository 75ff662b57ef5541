// @ts-check
/**
 * The four views of a session and which of them are on screen. On a phone-sized screen
 * one view is shown at a time, chosen by its tab. On a wide screen the calls view is
 * always shown (left column) and the tabs choose the view beside it, so the Calls tab is
 * not offered there.
 *
 * @example
 * ```js
 * isShown("calls", { tab: "contacts", wide: true }); // true
 * tabsOffered(true); // ["history", "voicemail", "contacts"]
 * nextTab(["calls", "history"], "calls", "ArrowRight"); // "history"
 * ```
 *
 * @module
 */

/** @typedef {"calls" | "history" | "voicemail" | "contacts"} Tab */

/** Every tab, in order. @type {readonly Tab[]} */
export const TABS = Object.freeze(["calls", "history", "voicemail", "contacts"]);

/** Screens at least this wide (CSS px) show the calls view beside the others. */
export const WIDE_MIN_PX = 900;

/** The tab shown beside the calls on a wide screen when none was chosen. */
export const WIDE_DEFAULT_TAB = "contacts";

/**
 * @param {unknown} t
 * @returns {t is Tab}
 */
export function isTab(t) {
  return typeof t === "string" && TABS.includes(/** @type {Tab} */ (t));
}

/**
 * The tabs offered on this screen.
 * @param {boolean} wide
 * @returns {readonly Tab[]}
 */
export function tabsOffered(wide) {
  return wide ? TABS.filter((t) => t !== "calls") : TABS;
}

/**
 * Whether the panel of `tab` is on screen.
 * @param {Tab} tab
 * @param {{tab: Tab, wide: boolean}} s the chosen tab and the screen
 */
export function isShown(tab, s) {
  return tab === s.tab || (tab === "calls" && s.wide);
}

/**
 * The tab a key moves to (ARIA tabs pattern: arrows wrap, Home and End), or undefined for
 * other keys.
 * @param {readonly Tab[]} offered
 * @param {Tab} current
 * @param {string} key
 * @returns {Tab | undefined}
 */
export function nextTab(offered, current, key) {
  const i = Math.max(0, offered.indexOf(current));
  switch (key) {
    case "ArrowRight":
      return offered[(i + 1) % offered.length];
    case "ArrowLeft":
      return offered[(i - 1 + offered.length) % offered.length];
    case "Home":
      return offered[0];
    case "End":
      return offered[offered.length - 1];
    default:
      return undefined;
  }
}
