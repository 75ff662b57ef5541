// @ts-check
/**
 * One signed-in session: the API client for its token, the state the views show (a
 * {@link Store} of {@link SessionState}), the live event stream feeding it (calls,
 * presence, address-book changes, snapshots after a gap: `lib/live_state.js`), the
 * expiry timer, and the views. On start it reads the contacts and the user's current
 * calls (so calls survive a reload), then opens the stream; presence is never polled.
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
import { addPlacedCall, CALL_ACTION_LABELS, NO_CALLS, restoreCalls } from "./lib/calls.js";
import { byId, hide, showText } from "./lib/dom.js";
import { openEventStream } from "./lib/event_stream.js";
import { jwtClaims } from "./lib/jwt.js";
import { applyStreamEvent, STREAM_EVENTS, withCalls, withContacts } from "./lib/live_state.js";
import { lastEventId, savedTab, saveLastEventId, saveTab } from "./lib/storage.js";
import { createStore } from "./lib/store.js";
import { isTab, WIDE_DEFAULT_TAB, WIDE_MIN_PX } from "./lib/tabs.js";
import { sessionBarView } from "./views/session_bar.js";
import { tabsView } from "./views/tabs.js";
import { callsView } from "./views/calls.js";
import { incomingView } from "./views/incoming.js";
import { ringerView } from "./views/ringer.js";
import { historyView } from "./views/history.js";
import { voicemailView } from "./views/voicemail.js";
import { contactsView } from "./views/contacts.js";
import { myPresenceView } from "./views/my_presence.js";

/** @typedef {import("./lib/api.js").Contact} Contact */
/** @typedef {import("./lib/api.js").FlexApi} FlexApi */
/** @typedef {import("./lib/calls.js").Calls} Calls */
/** @typedef {import("./lib/tabs.js").Tab} Tab */
/** @typedef {import("./lib/voicemail.js").Voicemail} Voicemail */
/** @typedef {"connecting" | "live" | "reconnecting"} ConnState */

/**
 * What the views show.
 * @typedef {object} SessionState
 * @property {string} me the user's extension
 * @property {Calls} calls
 * @property {readonly Contact[]} contacts
 * @property {ReadonlyMap<string, Contact>} contactsByExt
 * @property {ConnState} conn
 * @property {readonly Voicemail[] | undefined} voicemails undefined until first read
 * @property {Tab} tab the view chosen (`lib/tabs.js`)
 * @property {boolean} wide whether the screen shows the calls beside the chosen view
 */

/**
 * What the session does with a call for {@link ViewContext.callAction} (a transfer needs
 * the picker: the calls view does it).
 * @typedef {Exclude<import("./lib/calls.js").CallAction, "transfer">} SimpleCallAction
 */

/**
 * What a view gets.
 * @typedef {object} ViewContext
 * @property {import("./lib/store.js").Store<SessionState>} store
 * @property {FlexApi} api
 * @property {(to: string, name?: string) => Promise<boolean>} placeCall calls `to` from
 *   the user's extension and brings the calls on screen; true when the MX took it
 *   (errors are shown by the session)
 * @property {(action: SimpleCallAction, callId: number) => Promise<boolean>} callAction
 *   answers, declines, holds, resumes or hangs up; true when the server took it (errors
 *   are shown by the session)
 * @property {(tab: Tab) => void} showTab brings a view on screen
 * @property {(text: string) => void} showError shows a failed action
 * @property {() => void} clearError
 * @property {(err: unknown) => string} errorMessage the text of a failure ("" for a 401:
 *   the session is ending anyway)
 * @property {() => void} logout
 */

/** @typedef {{stop: () => void}} View */
/** @typedef {(ctx: ViewContext) => View} ViewFactory */

/**
 * The views of a session, mounted in this order (the tabs first: they settle which view
 * is on screen).
 * @type {readonly ViewFactory[]}
 */
export const VIEWS = [
  sessionBarView,
  tabsView,
  callsView,
  incomingView,
  ringerView,
  historyView,
  voicemailView,
  contactsView,
  myPresenceView,
];

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
  /** @type {import("./lib/event_stream.js").EventStream | undefined} */
  let stream;
  /** @type {View[]} */
  let views = [];

  const api = createApi(token, () => stop(SESSION_EXPIRED));
  const errorLine = byId("action-error");
  const wide = globalThis.matchMedia(`(min-width: ${WIDE_MIN_PX}px)`).matches;
  const saved = savedTab();
  /** @type {Tab} */
  const tab = isTab(saved) && !(wide && saved === "calls")
    ? saved
    : (wide ? WIDE_DEFAULT_TAB : "calls");
  /** @type {import("./lib/store.js").Store<SessionState>} */
  const store = createStore({
    me,
    calls: NO_CALLS,
    contacts: /** @type {readonly Contact[]} */ ([]),
    contactsByExt: /** @type {ReadonlyMap<string, Contact>} */ (new Map()),
    conn: /** @type {ConnState} */ ("connecting"),
    voicemails: /** @type {readonly Voicemail[] | undefined} */ (undefined),
    tab,
    wide,
  });

  /** @param {string} notice */
  function stop(notice) {
    if (ended) return;
    ended = true;
    clearTimeout(expiryTimer);
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
    store.update((s) => withContacts(s, list));
  }

  async function loadCurrentCalls() {
    const body = await api.currentCalls();
    if (ended) return;
    const list = Array.isArray(body?.calls) ? body.calls : [];
    store.update((s) => withCalls(s, restoreCalls(s.calls, list, s.me, Date.now())));
  }

  /** @param {string} text */
  const showError = (text) => showText(errorLine, text);
  /** @param {unknown} err */
  const errorMessage = (err) => {
    if (err instanceof ApiError && err.status === 401) return "";
    return err instanceof Error ? err.message : String(err);
  };
  /**
   * @param {string} what
   * @param {unknown} err
   */
  const failed = (what, err) => {
    const text = errorMessage(err);
    if (!ended && text) showError(`${what} failed: ${text}`);
  };

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
        store.update((s) =>
          withCalls(s, addPlacedCall(s.calls, { callId, to, name, at: Date.now() }))
        );
        ctx.showTab("calls");
        return true;
      } catch (err) {
        failed("Call", err);
        return false;
      }
    },
    async callAction(action, callId) {
      hide(errorLine);
      try {
        if (action === "answer") await api.answer(callId);
        else if (action === "complete") await api.completeTransfer(callId);
        else if (action === "hold") await api.hold(callId);
        else if (action === "retrieve") await api.retrieve(callId);
        else await api.hangup(callId); // hangup, decline
        return true;
      } catch (err) {
        failed(CALL_ACTION_LABELS[action], err);
        return false;
      }
    },
    showTab(next) {
      store.update((s) => {
        if (s.tab === next || (next === "calls" && s.wide)) return s;
        saveTab(next);
        return { ...s, tab: next };
      });
    },
    showError(text) {
      if (!ended) showError(text);
    },
    clearError: () => hide(errorLine),
    errorMessage,
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
      events: STREAM_EVENTS,
      onEvent(name, data, at) {
        if (!data || typeof data !== "object") return;
        const event = { name, data: /** @type {Record<string, unknown>} */ (data), at };
        store.update((s) => applyStreamEvent(s, event));
      },
      onState: (conn) => store.update((s) => (s.conn === conn ? s : { ...s, conn })),
      // A 401 here ends the session (createApi's callback); other errors change nothing.
      // Reading the contacts again also catches up with changes a gap may have hidden.
      probe: loadContacts,
      lastEventId,
      saveLastEventId,
    });

  // The current calls first, then the stream: events replayed after the last id seen
  // apply on top of them (and a snapshot, after a gap, replaces them).
  Promise.allSettled([loadContacts(), loadCurrentCalls()]).then((results) => {
    if (ended) return;
    const [contacts] = results;
    if (contacts.status === "rejected") {
      const text = errorMessage(contacts.reason);
      if (text) showError(text);
    }
    stream = openStream();
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
