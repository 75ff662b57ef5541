// @ts-check
/**
 * MXFlex built-in web client, entry module: login, then the Calls, History, Voicemail and
 * Contacts views kept live by Server-Sent Events (calls, presence, address book), with
 * click-to-call, call control, the ring of incoming calls and transfer by contact. Native
 * ES modules, no build step, no framework:
 *
 * - `lib/` holds what has no DOM of its own: the API client (`api.js`), the event stream
 *   (`event_stream.js`), the pure call state machine (`calls.js`), contact helpers,
 *   storage, a tiny store, formats and DOM helpers;
 * - `views/` holds one module per part of the page (login, session bar, tabs, calls and
 *   the transfer dialog, incoming strip, ringer, history, voicemail, contacts, own
 *   presence);
 * - `session.js` runs one signed-in session and mounts the views.
 *
 * This module switches between the login form and a session. When everything has loaded
 * it sets `data-app="ready"` on `<html>` (the browser test waits for it).
 *
 * Test hooks (stable): #login-form, #login-error, #login-notice, #contacts,
 * [data-testid=contact-<ext>], #dial-input, #dial-button, [data-testid=call-<callId>] with
 * data-state (originated | delivered | ringing | established | held | remote-held | cleared |
 * failed) and data-history, buttons
 * [data-action=answer|decline|hold|retrieve|complete|transfer|hangup|call], #conn-status with
 * data-state (connecting | live | reconnecting | offline); each view's module lists its own.
 *
 * @module
 */
import { logout, SESSION_EXPIRED } from "./lib/api.js";
import { byId } from "./lib/dom.js";
import { clearToken, loadToken, saveToken } from "./lib/storage.js";
import { startSession } from "./session.js";
import { loginView } from "./views/login.js";

const appView = byId("app-view");
/** @type {import("./session.js").Session | undefined} */
let session;

const login = loginView({
  onToken(token, expiresIn) {
    const expiresAt = Date.now() + expiresIn * 1000;
    saveToken(token, expiresAt);
    enter(token, expiresAt);
  },
});

/**
 * @param {string} token
 * @param {number} expiresAt
 */
function enter(token, expiresAt) {
  session?.stop("");
  login.hide();
  appView.hidden = false;
  const s = startSession({
    token,
    expiresAt,
    onEnd(notice) {
      if (session === s) session = undefined;
      clearToken();
      appView.hidden = true;
      login.show(notice);
      // Logging out (no notice) also ends the token on the server.
      if (!notice) logout(token);
    },
  });
  session = s;
}

globalThis.addEventListener("pagehide", () => session?.pause());
globalThis.addEventListener("pageshow", (e) => {
  // Back/forward cache: the stream was closed on pagehide.
  if (e.persisted) session?.resume();
});

const stored = loadToken();
if (!stored.token) {
  login.show("");
} else if (stored.expiresAt && stored.expiresAt <= Date.now()) {
  clearToken();
  login.show(SESSION_EXPIRED);
} else {
  enter(stored.token, stored.expiresAt);
}
document.documentElement.dataset.app = "ready";
