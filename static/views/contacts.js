// @ts-check
/**
 * The Contacts view: the address book with presence kept live by the event stream (no
 * polling), a legend of the presence colours, a search box, and click-to-call buttons
 * (extension, and mobile when the contact has one). Items are keyed by JID and rebuilt
 * only when their contact changed, so a presence change touches one row.
 *
 * Test hooks: `#contacts`, `[data-testid=contact-<ext>]` with `data-presence`, buttons
 * `[data-action=call|call-cell]`, `#presence-legend`.
 *
 * @module
 */
import { fullName, matchesQuery } from "../lib/contacts.js";
import { actionButton, byId, cloneTemplate, part, setText } from "../lib/dom.js";
import { PRESENCE_LEGEND, presenceClass, presenceLabel } from "../lib/presence.js";

/** @typedef {import("../lib/api.js").Contact} Contact */

/** @type {import("../session.js").ViewFactory} */
export function contactsView(ctx) {
  const list = byId("contacts");
  const empty = byId("contacts-empty");
  const count = byId("contacts-count");
  const search = byId("contact-search", HTMLInputElement);
  const legend = byId("presence-legend");
  const wiring = new AbortController();
  /** The contact each list item shows. @type {WeakMap<Element, Contact>} */
  const contactOf = new WeakMap();
  /** Items by JID, for reuse while their contact is unchanged. @type {Map<string, HTMLElement>} */
  const items = new Map();

  legend.replaceChildren(...PRESENCE_LEGEND.map(({ cls, label }) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = `dot ${cls}`;
    dot.setAttribute("aria-hidden", "true");
    li.append(dot, label);
    return li;
  }));

  const render = () => {
    const { contacts, me } = ctx.store.get();
    const q = search.value.trim();
    const shown = q ? contacts.filter((c) => matchesQuery(c, q)) : contacts;
    /** @type {HTMLElement[]} */
    const els = [];
    /** @type {Set<string>} */
    const seen = new Set();
    for (const c of shown) {
      let li = items.get(c.jid);
      if (!li || contactOf.get(li) !== c) {
        li = item(c, c.ext === me);
        items.set(c.jid, li);
      }
      seen.add(c.jid);
      els.push(li);
    }
    for (const jid of items.keys()) if (!seen.has(jid)) items.delete(jid);
    const focused = document.activeElement;
    const current = list.children;
    if (
      current.length === els.length && els.every((el, i) => current[i] === el || !el.isConnected)
    ) {
      // Same rows in the same order: swap only the changed ones (one per presence change).
      els.forEach((el, i) => {
        if (current[i] !== el) current[i].replaceWith(el);
      });
    } else {
      list.replaceChildren(...els);
    }
    // A keyboard user on a row that was rebuilt stays on the same button of its new row.
    if (focused instanceof HTMLElement && !focused.isConnected) {
      const row = focused.closest("li");
      const jid = row ? contactOf.get(row)?.jid : undefined;
      const again = jid ? items.get(jid) : undefined;
      const b = again?.querySelector(`[data-action="${focused.dataset.action}"]`);
      if (b instanceof HTMLElement) b.focus();
    }
    empty.hidden = shown.length > 0 || contacts.length === 0;
    count.textContent = q ? `${shown.length} / ${contacts.length}` : `${contacts.length}`;
  };

  /**
   * @param {Contact} c
   * @param {boolean} self
   */
  const item = (c, self) => {
    const li = cloneTemplate("contact-template");
    li.dataset.testid = `contact-${c.ext}`;
    li.dataset.ext = c.ext;
    li.dataset.presence = c.status ?? "";
    contactOf.set(li, c);
    const status = presenceLabel(c.status);
    const dot = part(li, ".dot");
    dot.classList.add(presenceClass(c.status));
    dot.title = status;
    dot.setAttribute("aria-label", status);
    const name = fullName(c);
    setText(li, ".contact-name", name + (self ? " (you)" : ""));
    const meta = [`Ext ${c.ext}`];
    if (c.cellPhone) meta.push(c.cellPhone);
    if (presenceClass(c.status) !== "off") meta.push(status);
    if (c.note) meta.push(c.note);
    setText(li, ".contact-meta", meta.join(" · "));
    if (!self) {
      const actions = part(li, ".contact-actions");
      actions.append(actionButton("call", "Call", `Call ${name} (${c.ext})`));
      if (c.cellPhone) {
        const cell = actionButton("call-cell", "Mobile", `Call ${name} on mobile ${c.cellPhone}`);
        cell.title = `Call ${c.cellPhone}`;
        actions.append(cell);
      }
    }
    return li;
  };

  list.addEventListener("click", (e) => {
    const b = e.target instanceof Element ? e.target.closest("button[data-action]") : null;
    const c = b && contactOf.get(b.closest("li") ?? b);
    if (!(b instanceof HTMLElement) || !c) return;
    if (b.dataset.action === "call") ctx.placeCall(c.ext, fullName(c));
    else if (b.dataset.action === "call-cell" && c.cellPhone) {
      ctx.placeCall(c.cellPhone, fullName(c));
    }
  }, { signal: wiring.signal });
  search.addEventListener("input", render, { signal: wiring.signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (s.contacts !== before.contacts || s.me !== before.me) render();
  });
  render();

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      search.value = "";
      list.replaceChildren();
      items.clear();
      legend.replaceChildren();
      count.textContent = "";
      empty.hidden = true;
    },
  };
}
