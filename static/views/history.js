// @ts-check
/**
 * The History view: the user's calls of the last {@link HISTORY_DAYS} days from the MX's
 * call log (`GET /api/calllog`), newest first, each with its direction, a missed mark, when
 * and how long, and a "Call back" button. Read when the view first comes on screen, again
 * when it comes back after a call of the user ended, and on "Refresh"; never polled.
 *
 * Test hooks: `#history`, `[data-testid=history-<recordId>]` with `data-direction`,
 * `data-missed`, `data-peer`, buttons `[data-action=callback]`, `#history-refresh`,
 * `#history-status`.
 *
 * @module
 */
import { historyEntries } from "../lib/calllog.js";
import { isEnded } from "../lib/calls.js";
import { nameOf } from "../lib/contacts.js";
import { actionButton, byId, cloneTemplate, part, setText } from "../lib/dom.js";
import { clock, when } from "../lib/format.js";
import { isShown } from "../lib/tabs.js";

/** @typedef {import("../lib/calllog.js").HistoryEntry} HistoryEntry */
/** @typedef {import("../session.js").SessionState} SessionState */

/** How far back the view reads the call log (days). */
export const HISTORY_DAYS = 30;

/** @type {import("../session.js").ViewFactory} */
export function historyView(ctx) {
  const list = byId("history");
  const empty = byId("history-empty");
  const status = byId("history-status");
  const refresh = byId("history-refresh", HTMLButtonElement);
  const wiring = new AbortController();
  /** @type {HistoryEntry[] | undefined} */
  let entries;
  /** A call ended since the last read: read again when next on screen. */
  let stale = true;
  let loading = false;
  let stopped = false;
  /** @type {WeakMap<Element, HistoryEntry>} */
  const entryOf = new WeakMap();

  const load = async () => {
    if (loading) return;
    loading = true;
    stale = false;
    refresh.disabled = true;
    status.textContent = entries ? "" : "Loading…";
    try {
      const since = Date.now() / 1000 - HISTORY_DAYS * 86_400;
      const body = await ctx.api.callLog(since);
      if (stopped) return;
      entries = historyEntries(Array.isArray(body?.calllog) ? body.calllog : []);
      status.textContent = "";
      render();
    } catch (err) {
      if (stopped) return;
      stale = true;
      const text = ctx.errorMessage(err);
      status.textContent = text ? `Could not read the history: ${text}` : "";
    } finally {
      loading = false;
      refresh.disabled = false;
    }
  };

  /** The address-book names the entries show, to skip re-rendering when none changed. */
  let namesKey = "";
  /** @param {ReadonlyMap<string, import("../lib/api.js").Contact>} byExt */
  const names = (byExt) =>
    (entries ?? []).map((e) => (e.name ? "" : nameOf(byExt, e.peer))).join("\n");

  const render = () => {
    if (!entries) return;
    const { contactsByExt } = ctx.store.get();
    const now = Date.now();
    namesKey = names(contactsByExt);
    list.replaceChildren(...entries.map((e) => item(e, contactsByExt, now)));
    empty.hidden = entries.length > 0;
  };

  /**
   * @param {HistoryEntry} e
   * @param {ReadonlyMap<string, import("../lib/api.js").Contact>} byExt
   * @param {number} now
   */
  const item = (e, byExt, now) => {
    const li = cloneTemplate("history-template");
    li.dataset.testid = `history-${e.id}`;
    li.dataset.direction = e.direction;
    li.dataset.missed = String(e.missed);
    li.dataset.peer = e.peer;
    entryOf.set(li, e);
    const name = e.name || nameOf(byExt, e.peer);
    const who = name || e.peer || "Unknown";
    const kind = e.missed ? "Missed" : e.direction === "in" ? "Incoming" : "Outgoing";
    part(li, ".hist-dir").textContent = e.missed ? "✕" : e.direction === "in" ? "↙" : "↗";
    setText(li, ".hist-name", who);
    const meta = [kind];
    if (name && e.peer) meta.push(e.peer);
    if (e.at) meta.push(when(e.at, now));
    if (e.seconds) meta.push(clock(e.seconds * 1000));
    if (e.service) meta.push(e.service);
    setText(li, ".hist-meta", meta.join(" · "));
    if (e.peer && e.peer !== ctx.store.get().me) {
      part(li, ".hist-actions").append(
        actionButton("callback", "Call back", `Call back ${who}${name ? ` (${e.peer})` : ""}`),
      );
    }
    return li;
  };

  list.addEventListener("click", async (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest("button[data-action]") : null;
    const e = b && entryOf.get(b.closest("li") ?? b);
    if (!(b instanceof HTMLButtonElement) || !e || b.dataset.action !== "callback") return;
    b.disabled = true;
    try {
      await ctx.placeCall(e.peer, e.name || undefined);
    } finally {
      b.disabled = false;
    }
  }, { signal: wiring.signal });
  refresh.addEventListener("click", load, { signal: wiring.signal });

  /**
   * Whether a call ended between `before` and `s`.
   * @param {SessionState} s
   * @param {SessionState} before
   */
  const callEnded = (s, before) => {
    for (const c of s.calls.values()) {
      if (isEnded(c) && !isEnded(before.calls.get(c.id) ?? c)) return true;
    }
    return false;
  };

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (s.calls !== before.calls && !stale && callEnded(s, before)) stale = true;
    const shown = isShown("history", s);
    if (shown && stale && (!isShown("history", before) || s.calls !== before.calls)) load();
    // Presence changes replace the index often; the list only cares about names.
    else if (shown && s.contactsByExt !== before.contactsByExt) {
      if (names(s.contactsByExt) !== namesKey) render();
    }
  });
  if (isShown("history", ctx.store.get())) load();

  return {
    stop() {
      stopped = true;
      unsubscribe();
      wiring.abort();
      list.replaceChildren();
      empty.hidden = true;
      status.textContent = "";
    },
  };
}
