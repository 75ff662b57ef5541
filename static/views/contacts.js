// @ts-check
/**
 * The contacts card: the address book with presence, a search box, and click-to-call
 * buttons (extension, and mobile when the contact has one).
 *
 * Test hooks: `#contacts`, `[data-testid=contact-<ext>]` with `data-presence`, buttons
 * `[data-action=call|call-cell]`.
 *
 * @module
 */
import { fullName, matchesQuery, presenceClass } from "../lib/contacts.js";
import { actionButton, byId, cloneTemplate, part, setText } from "../lib/dom.js";

/** @typedef {import("../lib/api.js").Contact} Contact */

/** @type {import("../session.js").ViewFactory} */
export function contactsView(ctx) {
  const list = byId("contacts");
  const empty = byId("contacts-empty");
  const count = byId("contacts-count");
  const search = byId("contact-search", HTMLInputElement);
  const wiring = new AbortController();
  /** The contact each list item shows. @type {WeakMap<Element, Contact>} */
  const contactOf = new WeakMap();

  const render = () => {
    const { contacts, me } = ctx.store.get();
    const q = search.value.trim();
    const shown = q ? contacts.filter((c) => matchesQuery(c, q)) : contacts;
    list.replaceChildren(...shown.map((c) => item(c, c.ext === me)));
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
    const dot = part(li, ".dot");
    dot.classList.add(presenceClass(c.status));
    dot.title = c.status ?? "Unknown";
    const name = fullName(c);
    setText(li, ".contact-name", name + (self ? " (you)" : ""));
    const meta = [`Ext ${c.ext}`];
    if (c.cellPhone) meta.push(c.cellPhone);
    if (c.note) meta.push(c.note);
    else if (c.status && presenceClass(c.status) !== "off") meta.push(c.status);
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
      count.textContent = "";
      empty.hidden = true;
    },
  };
}
