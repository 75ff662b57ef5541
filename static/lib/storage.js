// @ts-check
/**
 * What the page keeps in `sessionStorage` (per tab, gone when the tab closes): the token,
 * when it expires, the id of the last event received (for `Last-Event-ID` replay after a
 * reload), and the view last chosen.
 *
 * @example
 * ```js
 * saveToken(token, Date.now() + 3600_000);
 * loadToken(); // {token, expiresAt}
 * ```
 *
 * @module
 */

const TOKEN_KEY = "mxflex.token";
const EXPIRES_KEY = "mxflex.expires";
const LAST_EVENT_KEY = "mxflex.lastEventId";
const TAB_KEY = "mxflex.tab";

/**
 * The stored token and its expiry (ms since the epoch, 0 when unknown); token "" when none.
 * @returns {{token: string, expiresAt: number}}
 */
export function loadToken() {
  return {
    token: sessionStorage.getItem(TOKEN_KEY) ?? "",
    expiresAt: Number(sessionStorage.getItem(EXPIRES_KEY) ?? "0") || 0,
  };
}

/**
 * Stores a new token; the last event id of an earlier token is dropped.
 * @param {string} token
 * @param {number} expiresAt ms since the epoch
 */
export function saveToken(token, expiresAt) {
  clearToken();
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(EXPIRES_KEY, String(expiresAt));
}

/** Forgets the token, its expiry and the last event id. */
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  sessionStorage.removeItem(LAST_EVENT_KEY);
}

/** The id of the last event received, "" when none. */
export function lastEventId() {
  return sessionStorage.getItem(LAST_EVENT_KEY) ?? "";
}

/** @param {string} id */
export function saveLastEventId(id) {
  sessionStorage.setItem(LAST_EVENT_KEY, id);
}

/** The view last chosen ("" when none). */
export function savedTab() {
  return sessionStorage.getItem(TAB_KEY) ?? "";
}

/** @param {string} tab */
export function saveTab(tab) {
  sessionStorage.setItem(TAB_KEY, tab);
}
