// @ts-check
/**
 * One signed-in session: the API client for its token, the state the views show (a
 * {@link Store} of {@link SessionState}), the live event stream feeding the call state
 * machine, the contacts refresh, the expiry timer, and the views.
 *
 * A view is a module exporting a {@link ViewFactory}: it is given the {@link ViewContext}
 * when the session starts, subscribes to the store, wires its part of index.html, and
 * undoes all of it in `stop()`. Adding a view means adding its module, its markup in
 * index.html and its factory to {@link VIEWS}.
 *
 * @example
 * ```js
 * const session = startSession({ token, expiresAt, onEnd: (notice) => showLogin(notice) });
 * session.stop(""); // logs out locally
 * ```
 *
 * @module
 */
import { ApiError, createApi, SESSION_EXPIRED } from "./lib/api.js";
import { addPlacedCall, applyCallEvent, CALL_EVENTS, NO_CALLS } from "./lib/calls.js";
import { indexByExt } from "./lib/contacts.js";
import { byId, hide, showText } from "./lib/dom.js";
import { openEventStream } from "./lib/event_stream.js";
import { jwtClaims } from "./lib/jwt.js";
import { lastEventId, saveLastEventId } from "./lib/storage.js";
import { createStore } from "./lib/store.js";
import { sessionBarView } from "./views/session_bar.js";
import { callsView } from "./views/calls.js";
import { contactsView } from "./views/contacts.js";

/** @typedef {import("./lib/api.js").Contact} Contact */
/** @typedef {import("./lib/api.js").FlexApi} FlexApi */
/** @typedef {import("./lib/calls.js").Calls} Calls */
/** @typedef {"connecting" | "live" | "reconnecting"} ConnState */

/**
 * What the views show.
 * @typedef {object} SessionState
 * @property {string} me the user's extension
 * @property {Calls} calls
 * @property {readonly Contact[]} contacts
 * @property {ReadonlyMap<string, Contact>} contactsByExt
 * @property {ConnState} conn
 */

/**
 * What a view gets.
 * @typedef {object} ViewContext
 * @property {import("./lib/store.js").Store<SessionState>} store
 * @property {FlexApi} api
 * @property {(to: string, name?: string) => Promise<boolean>} placeCall calls `to` from
 *   the user's extension; true when the MX took it (errors are shown by the session)
 * @property {(text: string) => void} showError shows a failed action
 * @property {() => void} clearError
 * @property {() => void} logout
 */

/** @typedef {{stop: () => void}} View */
/** @typedef {(ctx: ViewContext) => View} ViewFactory */

/** The views of a session, mounted in this order. @type {readonly ViewFactory[]} */
export const VIEWS = [sessionBarView, callsView, contactsView];

/** Contacts are re-read this often (ms) to refresh presence. */
const CONTACTS_REFRESH_MS = 60_000;

/**
 * @typedef {object} Session
 * @property {string} token
 * @property {(notice: string) => void} stop ends the session and calls `onEnd(notice)`
 * @property {() => void} pause closes the event stream (page hidden)
 * @property {() => void} resume reopens it
 */

/**
 * Starts a session for `token`.
 * @param {{token: string, expiresAt: number, onEnd: (notice: string) => void}} o
 *   `expiresAt` in ms (0 = only the token's own `exp`); `onEnd` runs once, with the notice
 *   to show on the login form ("" for none)
 * @returns {Session}
 */
export function startSession(o) {
  const { token } = o;
  const claims = jwtClaims(token);
  const me = String(claims.ext ?? "");
  let expiresAt = o.expiresAt;
  if (claims.exp && (!expiresAt || claims.exp * 1000 < expiresAt)) expiresAt = claims.exp * 1000;

  let ended = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let expiryTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let contactsTimer;
  /** @type {import("./lib/event_stream.js").EventStream | undefined} */
  let stream;
  /** @type {View[]} */
  let views = [];

  const api = createApi(token, () => stop(SESSION_EXPIRED));
  const errorLine = byId("action-error");
  /** @type {import("./lib/store.js").Store<SessionState>} */
  const store = createStore({
    me,
    calls: NO_CALLS,
    contacts: /** @type {readonly Contact[]} */ ([]),
    contactsByExt: /** @type {ReadonlyMap<string, Contact>} */ (new Map()),
    conn: /** @type {ConnState} */ ("connecting"),
  });

  /** @param {string} notice */
  function stop(notice) {
    if (ended) return;
    ended = true;
    clearTimeout(expiryTimer);
    clearInterval(contactsTimer);
    stream?.close();
    api.close();
    for (const v of views.reverse()) v.stop();
    views = [];
    hide(errorLine);
    o.onEnd(notice);
  }

  async function loadContacts() {
    const body = await api.contacts();
    if (ended) return;
    const list = Array.isArray(body?.contacts) ? body.contacts : [];
    store.update((s) => ({ ...s, contacts: list, contactsByExt: indexByExt(list) }));
  }

  /** @param {string} text */
  const showError = (text) => showText(errorLine, text);
  /** @param {unknown} err */
  const message = (err) => (err instanceof Error ? err.message : String(err));

  /** @type {ViewContext} */
  const ctx = {
    store,
    api,
    async placeCall(to, name) {
      to = to.trim();
      if (!to) return false;
      hide(errorLine);
      try {
        const res = await api.call(to);
        const callId = Number(res?.call?.callId);
        if (ended) return false;
        store.update((s) => {
          const calls = addPlacedCall(s.calls, { callId, to, name, at: Date.now() });
          return calls === s.calls ? s : { ...s, calls };
        });
        return true;
      } catch (err) {
        if (!ended) showError(`Call failed: ${message(err)}`);
        return false;
      }
    },
    showError(text) {
      if (!ended) showError(text);
    },
    clearError: () => hide(errorLine),
    logout: () => stop(""),
  };

  // setTimeout's limit is ~24.8 days; tokens live far less.
  if (expiresAt) {
    const ms = Math.max(0, Math.min(expiresAt - Date.now(), 2 ** 31 - 1));
    expiryTimer = setTimeout(() => stop(SESSION_EXPIRED), ms);
  }
  views = VIEWS.map((view) => view(ctx));

  const openStream = () =>
    openEventStream({
      token,
      events: CALL_EVENTS,
      onEvent(name, data, at) {
        if (!data || typeof data !== "object") return;
        const event = { name, data: /** @type {Record<string, unknown>} */ (data), at };
        store.update((s) => {
          const calls = applyCallEvent(s.calls, event, s.me);
          return calls === s.calls ? s : { ...s, calls };
        });
      },
      onState: (conn) => store.update((s) => (s.conn === conn ? s : { ...s, conn })),
      // A 401 here ends the session (createApi's callback); other errors change nothing.
      probe: loadContacts,
      lastEventId,
      saveLastEventId,
    });

  loadContacts()
    .catch((err) => {
      if (!ended && !(err instanceof ApiError && err.status === 401)) showError(message(err));
    })
    .finally(() => {
      if (ended) return;
      stream = openStream();
      contactsTimer = setInterval(() => loadContacts().catch(() => {}), CONTACTS_REFRESH_MS);
    });

  return {
    token,
    stop,
    pause: () => stream?.close(),
    resume: () => {
      if (!ended) stream?.reopen();
    },
  };
}
