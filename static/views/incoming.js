// @ts-check
/**
 * The incoming-call strip above the tabs: while the calls view is off screen (a phone
 * showing another tab), each call ringing here is shown with Answer, Decline and a link to
 * the calls view, so it can be taken from any view. On a wide screen, or on the Calls tab,
 * the calls list itself shows the ringing call and the strip stays hidden.
 *
 * Test hooks: `#incoming`, `[data-testid=incoming-<callId>]`, buttons
 * `[data-action=answer|decline|show]`.
 *
 * @module
 */
import { CALL_ACTION_LABELS } from "../lib/calls.js";
import { nameOf } from "../lib/contacts.js";
import { actionButton, byId, setText } from "../lib/dom.js";
import { isShown } from "../lib/tabs.js";

/** @typedef {import("../session.js").SessionState} SessionState */

/** @type {import("../session.js").ViewFactory} */
export function incomingView(ctx) {
  const strip = byId("incoming");
  const list = byId("incoming-list");
  const wiring = new AbortController();
  /** Items by call id, with the text they were built for. @type {Map<number, HTMLElement>} */
  const items = new Map();

  /** @param {SessionState} s */
  const render = (s) => {
    const ringing = [...s.calls.values()].filter((c) => c.state === "ringing");
    const show = ringing.length > 0 && !isShown("calls", s);
    const keep = new Set(ringing.map((c) => c.id));
    for (const [id, el] of items) {
      if (keep.has(id) && show) continue;
      // A keyboard user whose call stopped ringing lands on the tab they were on.
      if (el.contains(document.activeElement)) byId(`tab-${s.tab}`).focus();
      el.remove();
      items.delete(id);
    }
    if (!show) {
      strip.hidden = true;
      return;
    }
    for (const c of ringing) {
      const name = nameOf(s.contactsByExt, c.remote) || c.remoteName;
      const who = name || c.remote || "Unknown caller";
      let el = items.get(c.id);
      if (!el) {
        el = document.createElement("li");
        el.className = "incoming-call";
        el.dataset.testid = `incoming-${c.id}`;
        el.dataset.callId = String(c.id);
        const text = document.createElement("span");
        text.className = "incoming-text";
        const actions = document.createElement("span");
        actions.className = "incoming-actions";
        el.append(text, actions);
        list.append(el);
        items.set(c.id, el);
      }
      if (el.dataset.who !== who) {
        el.dataset.who = who;
        setText(el, ".incoming-text", `Incoming call from ${who}${name ? ` (${c.remote})` : ""}`);
        const actions = /** @type {HTMLElement} */ (el.querySelector(".incoming-actions"));
        actions.replaceChildren(
          actionButton("answer", CALL_ACTION_LABELS.answer, `Answer call ${who}`),
          actionButton("decline", CALL_ACTION_LABELS.decline, `Decline call ${who}`),
          actionButton("show", "Calls", "Show the calls"),
        );
      }
    }
    strip.hidden = false;
  };

  list.addEventListener("click", async (e) => {
    const b = e.target instanceof Element ? e.target.closest("button[data-action]") : null;
    const li = b?.closest("li[data-call-id]");
    if (!(b instanceof HTMLButtonElement) || !(li instanceof HTMLElement)) return;
    const action = b.dataset.action;
    if (action === "show") {
      ctx.showTab("calls");
      return;
    }
    if (action !== "answer" && action !== "decline") return;
    b.disabled = true;
    try {
      // Answering brings the call on screen, with its Hold and Transfer buttons.
      const id = Number(li.dataset.callId);
      if (await ctx.callAction(action, id) && action === "answer") {
        ctx.showTab("calls");
        const next = document.querySelector(`#calls [data-call-id="${id}"] button`);
        if (next instanceof HTMLElement) next.focus();
      }
    } finally {
      b.disabled = false;
    }
  }, { signal: wiring.signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (
      s.calls !== before.calls || s.tab !== before.tab || s.wide !== before.wide ||
      s.contactsByExt !== before.contactsByExt
    ) render(s);
  });
  render(ctx.store.get());

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      list.replaceChildren();
      items.clear();
      strip.hidden = true;
    },
  };
}
