// @ts-check
/**
 * The user's own presence (in the Contacts view): a status menu, a note and "Set"
 * (`PUT /api/presence`). The form shows the presence the stream last reported for the
 * user's own contact, until the user starts changing it; once set, the server's `presence`
 * event updates the contacts like anyone else's change.
 *
 * Test hooks: `#presence-form`, `#presence-select`, `#presence-note`, `#presence-button`,
 * `#presence-status`.
 *
 * @module
 */
import { byId } from "../lib/dom.js";
import { PRESENCE_CHOICES, presenceLabel } from "../lib/presence.js";

/** @typedef {import("../session.js").SessionState} SessionState */

/** @type {import("../session.js").ViewFactory} */
export function myPresenceView(ctx) {
  const form = byId("presence-form", HTMLFormElement);
  const select = byId("presence-select", HTMLSelectElement);
  const note = byId("presence-note", HTMLInputElement);
  const button = byId("presence-button", HTMLButtonElement);
  const status = byId("presence-status");
  const wiring = new AbortController();
  /** The user changed the form and has not set it yet. */
  let editing = false;

  /** @param {string} value @param {string} label */
  const option = (value, label) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    return o;
  };

  /** @param {SessionState} s */
  const mine = (s) => s.contactsByExt.get(s.me);

  /** @param {SessionState} s */
  const render = (s) => {
    if (editing) return;
    const me = mine(s);
    const current = me?.status ?? "";
    const options = PRESENCE_CHOICES.map((c) => option(c.status, c.label));
    if (!PRESENCE_CHOICES.some((c) => c.status === current)) {
      // A status the menu does not offer (e.g. logged out): shown, not offered.
      const o = option(current, presenceLabel(current));
      o.disabled = true;
      options.unshift(o);
    }
    select.replaceChildren(...options);
    select.value = current;
    note.value = me?.note ?? "";
  };

  const edited = () => {
    editing = true;
    status.textContent = "";
  };
  select.addEventListener("change", edited, { signal: wiring.signal });
  note.addEventListener("input", edited, { signal: wiring.signal });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = select.value;
    if (!PRESENCE_CHOICES.some((c) => c.status === value)) {
      status.textContent = "Choose a status.";
      return;
    }
    button.disabled = true;
    status.textContent = "Setting…";
    try {
      await ctx.api.setPresence(value, note.value.trim());
      // The form already shows the new status; the stream's presence event follows.
      editing = false;
      status.textContent = `Status set: ${presenceLabel(value)}.`;
    } catch (err) {
      const text = ctx.errorMessage(err);
      status.textContent = text ? `Could not set the status: ${text}` : "";
    } finally {
      button.disabled = false;
    }
  }, { signal: wiring.signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (mine(s) !== mine(before)) render(s);
  });
  render(ctx.store.get());

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      editing = false;
      select.replaceChildren();
      note.value = "";
      status.textContent = "";
    },
  };
}
