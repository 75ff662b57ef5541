// @ts-check
/**
 * The "transfer to" dialog: a modal `<dialog>` with a search field over the contacts
 * (with their presence) and, when the text is a number, that number as the first choice,
 * and a "talk to them first" box (consultation transfer).
 * Enter takes the first choice, the arrow keys move through the list, Escape or Cancel
 * closes it; the focus goes to the search field on opening and back where it was on
 * closing.
 *
 * Test hooks: `#transfer-dialog`, `#transfer-search`, `#transfer-results` buttons with
 * `data-to`, `#transfer-consult`, `#transfer-cancel`.
 *
 * @example
 * ```js
 * const picker = contactPicker(ctx);
 * const choice = await picker.pick("Transfer Peter Hyde (3044)");
 * if (choice) await ctx.api.transfer(callId, choice.to);
 * ```
 *
 * @module
 */
import { fullName, matchesQuery } from "../lib/contacts.js";
import { byId, cloneTemplate, part, setText } from "../lib/dom.js";
import { presenceClass, presenceLabel } from "../lib/presence.js";

/**
 * The choice: whom to transfer to, and whether to talk to them first.
 * @typedef {{to: string, name: string, consult: boolean}} Pick
 */

/** @typedef {{to: string, name: string, meta: string, presence: string | undefined}} Choice */

/** At most this many contacts are listed (the search narrows them). */
const MAX_CHOICES = 50;

/** Text that is a phone number or extension: digits with the usual punctuation. */
const NUMBER = /^\+?[\d*#][\d\s().*#-]*$/;

/**
 * @param {import("../session.js").ViewContext} ctx
 * @returns {{pick: (subject: string) => Promise<Pick | undefined>, stop: () => void}}
 */
export function contactPicker(ctx) {
  const dialog = byId("transfer-dialog", HTMLDialogElement);
  const search = byId("transfer-search", HTMLInputElement);
  const results = byId("transfer-results");
  const empty = byId("transfer-empty");
  const subject = byId("transfer-subject");
  const cancel = byId("transfer-cancel", HTMLButtonElement);
  const consult = byId("transfer-consult", HTMLInputElement);
  const wiring = new AbortController();
  const signal = wiring.signal;
  /** @type {((p: Pick | undefined) => void) | undefined} */
  let resolve;
  /** @type {Pick | undefined} */
  let chosen;
  /** @type {Element | null} */
  let opener = null;
  /** @type {WeakMap<Element, {to: string, name: string}>} */
  const pickOf = new WeakMap();

  /** @returns {Choice[]} */
  const choices = () => {
    const { contacts, me } = ctx.store.get();
    const q = search.value.trim();
    /** @type {Choice[]} */
    const out = [];
    if (NUMBER.test(q)) {
      const to = q.replace(/[\s().-]/g, "");
      if (!contacts.some((c) => c.ext === to)) {
        out.push({ to, name: to, meta: "Number", presence: undefined });
      }
    }
    for (const c of contacts) {
      if (out.length >= MAX_CHOICES) break;
      if (c.ext === me || !matchesQuery(c, q)) continue;
      const meta = [`Ext ${c.ext}`, presenceLabel(c.status)];
      if (c.note) meta.push(c.note);
      out.push({ to: c.ext, name: fullName(c), meta: meta.join(" · "), presence: c.status });
    }
    return out;
  };

  const render = () => {
    const list = choices();
    results.replaceChildren(...list.map((ch) => {
      const li = cloneTemplate("pick-template");
      const b = part(li, "button");
      b.dataset.to = ch.to;
      pickOf.set(b, { to: ch.to, name: ch.name });
      const dot = part(li, ".dot");
      if (ch.presence === undefined) dot.hidden = true;
      else dot.classList.add(presenceClass(ch.presence));
      setText(li, ".pick-name", ch.name);
      setText(li, ".pick-meta", ch.meta);
      b.setAttribute("aria-label", `Transfer to ${ch.name}, ${ch.meta}`);
      return li;
    }));
    empty.hidden = list.length > 0;
  };

  const buttons =
    () => /** @type {HTMLButtonElement[]} */ ([...results.querySelectorAll("button")]);

  /**
   * Ends the current opening: the promise of {@link pick} gets the choice, the list is
   * emptied and the focus goes back. Runs once per opening, whichever comes first: a
   * choice, Cancel, or the dialog's own closing (Escape).
   */
  const settle = () => {
    const r = resolve;
    if (!r) return;
    resolve = undefined;
    results.replaceChildren();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    opener = null;
    r(chosen);
  };

  /** @param {{to: string, name: string} | undefined} p */
  const finish = (p) => {
    chosen = p && { ...p, consult: consult.checked };
    if (dialog.open) dialog.close();
    settle();
  };

  search.addEventListener("input", render, { signal });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const first = buttons()[0];
      if (first) finish(pickOf.get(first));
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      buttons()[0]?.focus();
    }
  }, { signal });
  results.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const all = buttons();
    const i = all.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (i < 0) return;
    e.preventDefault();
    if (e.key === "ArrowDown") all[Math.min(i + 1, all.length - 1)].focus();
    else if (i === 0) search.focus();
    else all[i - 1].focus();
  }, { signal });
  results.addEventListener("click", (e) => {
    const b = e.target instanceof Element ? e.target.closest("button") : null;
    if (b) finish(pickOf.get(b));
  }, { signal });
  cancel.addEventListener("click", () => finish(undefined), { signal });
  // Escape closes a modal dialog by itself ("cancel", then "close"). The "close" event is
  // queued: when it arrives the dialog may be open again for a new choice, not its business.
  dialog.addEventListener("close", () => {
    if (!dialog.open) settle();
  }, { signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (dialog.open && s.contacts !== before.contacts) render();
  });

  return {
    pick(text) {
      if (dialog.open) return Promise.resolve(undefined);
      // Closed, but its "close" event not delivered yet: that opening ends now.
      settle();
      opener = document.activeElement;
      chosen = undefined;
      subject.textContent = text;
      search.value = "";
      consult.checked = false;
      render();
      dialog.showModal();
      search.focus();
      return new Promise((r) => (resolve = r));
    },
    stop() {
      unsubscribe();
      wiring.abort();
      chosen = undefined;
      if (dialog.open) dialog.close();
      settle();
    },
  };
}
