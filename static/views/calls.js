// @ts-check
/**
 * The calls card: the dial box and the list of the user's calls with their state, the
 * other party, a running clock and the buttons of {@link callActions} (a ringing call:
 * Answer and Decline). Transfer opens the contact picker (`contact_picker.js`): blind, or
 * after talking to the new party first (the call is held and a consultation call placed;
 * "Complete transfer" on the held call connects the two). Ended
 * calls stay for {@link CLEARED_LINGER_MS}, fading, then leave the list (the state machine
 * keeps them as tombstones).
 *
 * Test hooks: `#dial-input`, `#dial-button`, `[data-testid=call-<callId>]` with
 * `data-state`, `data-history`, `data-direction`, `data-remote`, `data-call-id`, and
 * buttons `[data-action=answer|decline|hold|retrieve|complete|transfer|hangup]`.
 *
 * @module
 */
import {
  addPlacedCall,
  CALL_ACTION_LABELS,
  callActions,
  isCallAction,
  isEnded,
} from "../lib/calls.js";
import { withCalls } from "../lib/live_state.js";
import { nameOf } from "../lib/contacts.js";
import { actionButton, byId, cloneTemplate, part, setText } from "../lib/dom.js";
import { clock } from "../lib/format.js";
import { contactPicker } from "./contact_picker.js";

/** @typedef {import("../lib/calls.js").Call} Call */
/** @typedef {import("../lib/calls.js").CallAction} CallAction */
/** @typedef {import("../session.js").SessionState} SessionState */

/** How long an ended call stays visible (ms). */
export const CLEARED_LINGER_MS = 4000;

/** @type {Record<import("../lib/calls.js").CallState, string>} */
const STATE_LABELS = {
  originated: "Dialling…",
  delivered: "Ringing…",
  ringing: "Incoming call",
  established: "Connected",
  held: "On hold",
  "remote-held": "Held by other party",
  cleared: "Call ended",
  failed: "Call failed",
};

/**
 * @typedef {object} Shown a call in the list
 * @property {Readonly<Call>} call as last rendered
 * @property {HTMLElement} el
 * @property {string} [actionsKey] the buttons shown and the name they are labelled with
 * @property {ReturnType<typeof setTimeout>} [removeTimer]
 */

/** @type {import("../session.js").ViewFactory} */
export function callsView(ctx) {
  const list = byId("calls");
  const empty = byId("calls-empty");
  const dialForm = byId("dial-form", HTMLFormElement);
  const dialInput = byId("dial-input", HTMLInputElement);
  const dialButton = byId("dial-button", HTMLButtonElement);
  const wiring = new AbortController();
  const picker = contactPicker(ctx);
  /** @type {Map<number, Shown>} */
  const shown = new Map();

  /**
   * @param {SessionState} s
   * @param {boolean} all also calls that did not change (names may have)
   */
  const render = (s, all) => {
    const now = Date.now();
    for (const call of s.calls.values()) {
      const item = shown.get(call.id);
      if (item) {
        if (all || item.call !== call) renderCall(item, call, s);
      } else if (!isEnded(call) || now - call.endedAt < CLEARED_LINGER_MS) {
        renderCall(undefined, call, s);
      }
    }
    empty.hidden = shown.size > 0;
  };

  /**
   * @param {Shown | undefined} item
   * @param {Readonly<Call>} call
   * @param {SessionState} s
   */
  const renderCall = (item, call, s) => {
    if (!item) {
      const el = cloneTemplate("call-template");
      el.dataset.testid = `call-${call.id}`;
      el.dataset.callId = String(call.id);
      list.prepend(el);
      item = { call, el };
      shown.set(call.id, item);
    }
    item.call = call;
    const { el } = item;
    const name = nameOf(s.contactsByExt, call.remote) || call.remoteName;
    el.dataset.state = call.state;
    el.dataset.direction = call.direction;
    el.dataset.history = call.history.join(" ");
    el.dataset.remote = call.remote;
    setText(el, ".call-dir", call.direction === "in" ? "↙" : "↗");
    setText(el, ".call-name", name || call.remote || "Unknown");
    setText(el, ".call-number", name ? call.remote : "");
    setText(el, ".call-state", STATE_LABELS[call.state]);
    setText(el, ".call-note", call.note);
    updateClock(item);

    const want = callActions(call, s.calls);
    const who = name || call.remote;
    const actionsKey = `${want.join(",")} ${who}`;
    if (item.actionsKey !== actionsKey) {
      item.actionsKey = actionsKey;
      const box = part(el, ".call-actions");
      const hadFocus = box.contains(document.activeElement);
      box.replaceChildren(
        ...want.map((a) =>
          actionButton(a, CALL_ACTION_LABELS[a], `${CALL_ACTION_LABELS[a]} call ${who}`)
        ),
      );
      // Keyboard users keep their place: the call's next button, else the dial box.
      if (hadFocus) (box.querySelector("button") ?? dialInput).focus();
    }
    if (isEnded(call) && item.removeTimer === undefined) {
      el.classList.add("ending");
      const left = Math.max(0, call.endedAt + CLEARED_LINGER_MS - Date.now());
      item.removeTimer = setTimeout(() => {
        el.remove();
        shown.delete(call.id);
        empty.hidden = shown.size > 0;
      }, left);
    }
  };

  /** @param {Shown} item */
  const updateClock = ({ call, el }) => {
    const live = call.connectedAt && (call.state === "established" || call.state === "held" ||
      call.state === "remote-held");
    setText(el, ".call-time", live ? clock(Date.now() - call.connectedAt) : "");
  };

  /**
   * Picks whom to transfer call `id` to, then transfers it.
   * @param {number} id
   * @returns {Promise<boolean>}
   */
  const transfer = async (id) => {
    const s = ctx.store.get();
    const call = s.calls.get(id);
    const who = call ? nameOf(s.contactsByExt, call.remote) || call.remoteName || call.remote : "";
    const choice = await picker.pick(who ? `Transfer the call with ${who} to:` : "Transfer to:");
    if (!choice) return false;
    ctx.clearError();
    try {
      const res = await ctx.api.transfer(id, choice.to, choice.consult);
      const callId = Number(res?.call?.callId);
      if (choice.consult) {
        // The consultation call shows at once; "Complete transfer" appears on the held one.
        ctx.store.update((s) =>
          withCalls(s, addPlacedCall(s.calls, { ...choice, callId, at: Date.now() }))
        );
      }
      return true;
    } catch (err) {
      const text = ctx.errorMessage(err);
      if (text) ctx.showError(`Transfer to ${choice.name} failed: ${text}`);
      return false;
    }
  };

  list.addEventListener("click", async (e) => {
    const b = e.target instanceof Element ? e.target.closest("button[data-action]") : null;
    const li = b?.closest("li[data-call-id]");
    if (!(b instanceof HTMLButtonElement) || !(li instanceof HTMLElement)) return;
    const action = b.dataset.action;
    if (!isCallAction(action)) return;
    const id = Number(li.dataset.callId);
    // The picker gives the focus back to this button: it stays enabled meanwhile.
    if (action === "transfer") {
      await transfer(id);
      return;
    }
    b.disabled = true;
    try {
      await ctx.callAction(action, id);
    } finally {
      b.disabled = false;
    }
  }, { signal: wiring.signal });

  dialForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    dialButton.disabled = true;
    try {
      if (await ctx.placeCall(dialInput.value)) dialInput.value = "";
    } finally {
      dialButton.disabled = false;
    }
  }, { signal: wiring.signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    const names = s.contactsByExt !== before.contactsByExt;
    // Every call when the calls change: a held call's buttons depend on the others.
    if (s.calls !== before.calls || names) render(s, true);
  });
  const clockTimer = setInterval(() => {
    for (const item of shown.values()) updateClock(item);
  }, 1000);
  render(ctx.store.get(), true);

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      picker.stop();
      clearInterval(clockTimer);
      for (const item of shown.values()) clearTimeout(item.removeTimer);
      shown.clear();
      list.replaceChildren();
      empty.hidden = false;
      dialInput.value = "";
    },
  };
}
