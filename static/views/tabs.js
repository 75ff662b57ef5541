// @ts-check
/**
 * The tab bar (ARIA tabs: `role=tablist`, one `role=tab` per view, arrow keys, Home and
 * End move between them, the chosen tab alone in the Tab order) and which panels are on
 * screen (`lib/tabs.js`): one at a time on a phone, the calls always beside the chosen one
 * on a wide screen. Badges: the number of live calls (marked while one rings) and of unread
 * voicemails.
 *
 * Test hooks: `[role=tab][data-tab=calls|history|voicemail|contacts]` with
 * `aria-selected`, panels `#panel-<tab>`, `#calls-badge`, `#voicemail-badge` (with
 * `data-ringing` on the calls badge).
 *
 * @module
 */
import { isEnded } from "../lib/calls.js";
import { byId } from "../lib/dom.js";
import {
  isShown,
  isTab,
  nextTab,
  tabsOffered,
  WIDE_DEFAULT_TAB,
  WIDE_MIN_PX,
} from "../lib/tabs.js";
import { unreadCount } from "../lib/voicemail.js";

/** @typedef {import("../session.js").SessionState} SessionState */
/** @typedef {import("../lib/tabs.js").Tab} Tab */

/**
 * Sets a badge: hidden at 0, else the count, read out as "<n> <label>" (the tab's name
 * becomes e.g. "Voicemail 2 unread").
 * @param {HTMLElement} badge
 * @param {number} n
 * @param {string} label e.g. "unread"
 */
function setBadge(badge, n, label) {
  badge.hidden = n === 0;
  const key = `${n} ${label}`;
  if (badge.dataset.key === key) return;
  badge.dataset.key = key;
  const shown = document.createElement("span");
  shown.ariaHidden = "true";
  shown.textContent = String(n);
  const spoken = document.createElement("span");
  spoken.className = "sr-only";
  spoken.textContent = key;
  badge.replaceChildren(shown, spoken);
}

/** @type {import("../session.js").ViewFactory} */
export function tabsView(ctx) {
  const bar = byId("tabs");
  const tabs = /** @type {HTMLButtonElement[]} */ ([...bar.querySelectorAll("[role=tab]")]);
  const callsBadge = byId("calls-badge");
  const voicemailBadge = byId("voicemail-badge");
  const wideQuery = globalThis.matchMedia(`(min-width: ${WIDE_MIN_PX}px)`);
  const wiring = new AbortController();

  /** @param {HTMLElement} tab */
  const panelOf = (tab) => byId(tab.getAttribute("aria-controls") ?? "");

  /** @param {SessionState} s */
  const render = (s) => {
    const focused = document.activeElement;
    for (const t of tabs) {
      const name = /** @type {Tab} */ (t.dataset.tab);
      const selected = name === s.tab;
      t.hidden = !tabsOffered(s.wide).includes(name);
      t.setAttribute("aria-selected", String(selected));
      t.tabIndex = selected ? 0 : -1;
      panelOf(t).hidden = !isShown(name, s);
    }
    bar.dataset.wide = String(s.wide);
    // A keyboard user whose view was switched away (e.g. by placing a call from the
    // contacts on a phone) lands on the tab now chosen, not on the page.
    if (focused instanceof HTMLElement && focused !== document.body && !focused.checkVisibility()) {
      tabs.find((t) => t.dataset.tab === s.tab)?.focus();
    }
  };

  /** @param {SessionState} s */
  const renderBadges = (s) => {
    let live = 0, ringing = false;
    for (const c of s.calls.values()) {
      if (isEnded(c)) continue;
      live++;
      if (c.state === "ringing") ringing = true;
    }
    setBadge(callsBadge, live, live === 1 ? "call" : "calls");
    callsBadge.dataset.ringing = String(ringing);
    setBadge(voicemailBadge, s.voicemails ? unreadCount(s.voicemails) : 0, "unread");
  };

  bar.addEventListener("click", (e) => {
    const t = e.target instanceof Element ? e.target.closest("[role=tab]") : null;
    const name = t instanceof HTMLElement ? t.dataset.tab : undefined;
    if (isTab(name)) ctx.showTab(name);
  }, { signal: wiring.signal });

  bar.addEventListener("keydown", (e) => {
    const s = ctx.store.get();
    const next = nextTab(tabsOffered(s.wide), s.tab, e.key);
    if (!next) return;
    e.preventDefault();
    ctx.showTab(next);
    tabs.find((t) => t.dataset.tab === next)?.focus();
  }, { signal: wiring.signal });

  wideQuery.addEventListener("change", () => {
    ctx.store.update((s) => {
      const wide = wideQuery.matches;
      if (s.wide === wide) return s;
      return { ...s, wide, tab: wide && s.tab === "calls" ? WIDE_DEFAULT_TAB : s.tab };
    });
  }, { signal: wiring.signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (s.tab !== before.tab || s.wide !== before.wide) render(s);
    if (s.calls !== before.calls || s.voicemails !== before.voicemails) renderBadges(s);
  });
  render(ctx.store.get());
  renderBadges(ctx.store.get());

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      setBadge(callsBadge, 0, "calls");
      setBadge(voicemailBadge, 0, "unread");
    },
  };
}
