// @ts-check
/**
 * The Voicemail view: the user's messages (`GET /api/voicemail`), newest first, unread
 * ones marked. Each plays in the page (an `<audio>` element streaming
 * `/api/voicemail/{id}?access_token=…`; playing marks it read), can be marked read or
 * unread, annotated, deleted (after a confirmation in place) and called back. The list is
 * read when the session starts (for the unread badge), each time the view comes on screen,
 * and on "Refresh"; items are updated in place, so a message keeps playing while others
 * change.
 *
 * Test hooks: `#voicemails`, `[data-testid=vm-<id>]` with `data-read`, `.vm-audio`, buttons
 * `[data-action=play|read|unread|note|callback|delete|delete-confirm|delete-cancel|
 * note-save|note-cancel]`, `#voicemail-status`, `#voicemail-refresh`.
 *
 * @module
 */
import { nameOf } from "../lib/contacts.js";
import { actionButton, byId, cloneTemplate, part, setText } from "../lib/dom.js";
import { clock, when } from "../lib/format.js";
import { isShown } from "../lib/tabs.js";
import {
  callerOf,
  sortVoicemails,
  unreadCount,
  withoutVoicemail,
  withVoicemailChange,
} from "../lib/voicemail.js";

/** @typedef {import("../lib/voicemail.js").Voicemail} Voicemail */
/** @typedef {import("../session.js").SessionState} SessionState */

/**
 * @typedef {object} Item a message in the list
 * @property {HTMLElement} el
 * @property {Voicemail} vm as last rendered
 * @property {string} who
 * @property {HTMLAudioElement} audio
 */

/** @type {import("../session.js").ViewFactory} */
export function voicemailView(ctx) {
  const list = byId("voicemails");
  const empty = byId("voicemail-empty");
  const count = byId("voicemail-count");
  const status = byId("voicemail-status");
  const refresh = byId("voicemail-refresh", HTMLButtonElement);
  const heading = byId("voicemail-title");
  const wiring = new AbortController();
  const signal = wiring.signal;
  /** @type {Map<string, Item>} */
  const items = new Map();
  let loading = false;
  let stopped = false;

  /** @param {(list: readonly Voicemail[]) => readonly Voicemail[]} change */
  const updateList = (change) =>
    ctx.store.update((s) => {
      if (!s.voicemails) return s;
      const voicemails = change(s.voicemails);
      return voicemails === s.voicemails ? s : { ...s, voicemails };
    });

  /** @param {string} text */
  const say = (text) => {
    status.textContent = text;
  };

  /**
   * @param {string} what
   * @param {unknown} err
   */
  const failed = (what, err) => {
    const text = ctx.errorMessage(err);
    if (text && !stopped) say(`${what} failed: ${text}`);
  };

  const load = async () => {
    if (loading) return;
    loading = true;
    refresh.disabled = true;
    if (!ctx.store.get().voicemails) say("Loading…");
    try {
      const body = await ctx.api.voicemails();
      if (stopped) return;
      const voicemails = sortVoicemails(Array.isArray(body?.voicemails) ? body.voicemails : []);
      say("");
      ctx.store.update((s) => ({ ...s, voicemails }));
    } catch (err) {
      failed("Reading the voicemail", err);
    } finally {
      loading = false;
      refresh.disabled = false;
    }
  };

  /** @param {SessionState} s */
  const render = (s) => {
    const voicemails = s.voicemails ?? [];
    const keep = new Set(voicemails.map((v) => v.id));
    for (const [id, it] of items) {
      if (keep.has(id)) continue;
      it.audio.pause();
      it.audio.removeAttribute("src");
      it.el.remove();
      items.delete(id);
    }
    let prev = /** @type {Element | null} */ (null);
    for (const vm of voicemails) {
      let it = items.get(vm.id);
      if (!it) {
        it = create(vm);
        items.set(vm.id, it);
      }
      update(it, vm, s);
      // In list order, moving only what is out of place.
      const want = prev ? prev.nextElementSibling : list.firstElementChild;
      if (want !== it.el) list.insertBefore(it.el, want);
      prev = it.el;
    }
    empty.hidden = !s.voicemails || voicemails.length > 0;
    const unread = unreadCount(voicemails);
    count.textContent = s.voicemails ? (unread ? `${unread} new` : "") : "";
  };

  /** @param {Voicemail} vm */
  const create = (vm) => {
    const el = cloneTemplate("voicemail-template");
    el.dataset.testid = `vm-${vm.id}`;
    el.dataset.id = vm.id;
    const audio = /** @type {HTMLAudioElement} */ (part(el, ".vm-audio"));
    /** @type {Item} */
    const it = { el, vm, who: "", audio };
    audio.addEventListener("play", () => setPlayLabel(it), { signal });
    audio.addEventListener("pause", () => setPlayLabel(it), { signal });
    audio.addEventListener("playing", () => {
      if (!it.vm.read) setRead(it, true);
    }, { signal });
    audio.addEventListener("error", () => {
      if (audio.getAttribute("src")) say(`Could not play the message from ${it.who}.`);
    }, { signal });
    return it;
  };

  /** @param {Item} it */
  const setPlayLabel = (it) => {
    const b = it.el.querySelector('[data-action="play"]');
    if (!(b instanceof HTMLElement)) return;
    const playing = !it.audio.paused;
    b.textContent = playing ? "Pause" : "Play";
    b.setAttribute("aria-label", `${playing ? "Pause" : "Play"} the message from ${it.who}`);
  };

  /**
   * @param {Item} it
   * @param {Voicemail} vm
   * @param {SessionState} s
   */
  const update = (it, vm, s) => {
    const { number, name: ownName } = callerOf(vm);
    const name = nameOf(s.contactsByExt, number) || ownName;
    const who = name || number || "Unknown caller";
    const changed = it.vm !== vm || it.who !== who || !it.el.dataset.read;
    if (!changed) return;
    it.vm = vm;
    it.who = who;
    const { el } = it;
    el.dataset.read = String(!!vm.read);
    setText(el, ".vm-name", who);
    const meta = [];
    if (name && number) meta.push(number);
    if (vm.received) meta.push(when(vm.received * 1000));
    if (vm.duration) meta.push(clock(vm.duration * 1000));
    setText(el, ".vm-meta", meta.join(" · "));
    part(el, ".vm-new").hidden = !!vm.read;
    setText(el, ".vm-note", vm.note ?? "");
    const actions = part(el, ".vm-actions");
    const focused = document.activeElement;
    // The action of the button that had the focus, to give it to its successor.
    const hadFocus = focused instanceof HTMLElement && actions.contains(focused)
      ? focused.dataset.action
      : "";
    actions.replaceChildren(
      actionButton("play", "Play", `Play the message from ${who}`),
      vm.read
        ? actionButton("unread", "Mark unread", `Mark the message from ${who} unread`)
        : actionButton("read", "Mark read", `Mark the message from ${who} read`),
      actionButton("note", "Note", `Note on the message from ${who}`),
      ...(number ? [actionButton("callback", "Call back", `Call back ${who}`)] : []),
      actionButton("delete", "Delete", `Delete the message from ${who}`),
    );
    setPlayLabel(it);
    if (hadFocus) {
      const again = hadFocus === "read" ? "unread" : hadFocus === "unread" ? "read" : hadFocus;
      const b = actions.querySelector(`[data-action="${again}"]`);
      if (b instanceof HTMLElement) b.focus();
    }
  };

  /**
   * @param {Item} it
   * @param {boolean} read
   */
  const setRead = async (it, read) => {
    const id = it.vm.id;
    try {
      await ctx.api.updateVoicemail(id, { read });
      updateList((l) => withVoicemailChange(l, id, { read }));
    } catch (err) {
      failed(read ? "Marking it read" : "Marking it unread", err);
    }
  };

  /** @param {Item} it */
  const play = (it) => {
    const { audio } = it;
    if (!audio.paused) {
      audio.pause();
      return;
    }
    if (!audio.getAttribute("src")) audio.src = ctx.api.voicemailUrl(it.vm.id);
    audio.hidden = false;
    say("");
    audio.play().catch(() => {
      // Reported by the "error" event when the audio cannot be loaded.
    });
  };

  /**
   * @param {Item} it
   * @param {boolean} open
   */
  const noteForm = (it, open) => {
    const form = /** @type {HTMLFormElement} */ (part(it.el, ".vm-note-form"));
    const input = /** @type {HTMLInputElement} */ (part(form, ".vm-note-input"));
    form.hidden = !open;
    if (open) {
      input.value = it.vm.note ?? "";
      input.focus();
    } else {
      /** @type {HTMLElement | null} */ (it.el.querySelector('[data-action="note"]'))?.focus();
    }
  };

  /** @param {Item} it */
  const saveNote = async (it) => {
    const input = /** @type {HTMLInputElement} */ (part(it.el, ".vm-note-input"));
    const note = input.value.trim();
    const id = it.vm.id;
    try {
      await ctx.api.updateVoicemail(id, { note });
      updateList((l) => withVoicemailChange(l, id, { note }));
      noteForm(it, false);
    } catch (err) {
      failed("Saving the note", err);
    }
  };

  /**
   * @param {Item} it
   * @param {boolean} open
   */
  const confirmDelete = (it, open) => {
    const box = part(it.el, ".vm-confirm");
    box.hidden = !open;
    const target = open ? '[data-action="delete-cancel"]' : '[data-action="delete"]';
    /** @type {HTMLElement | null} */ (it.el.querySelector(target))?.focus();
  };

  /** @param {Item} it */
  const remove = async (it) => {
    const id = it.vm.id;
    // Where the focus goes once the message is gone: the next one, else the heading.
    const next = it.el.nextElementSibling ?? it.el.previousElementSibling;
    try {
      await ctx.api.deleteVoicemail(id);
      updateList((l) => withoutVoicemail(l, id));
      say(`The message from ${it.who} was deleted.`);
      const b = next?.querySelector('[data-action="play"]');
      if (b instanceof HTMLElement) b.focus();
      else heading.focus();
    } catch (err) {
      failed("Deleting the message", err);
    }
  };

  /** @param {Element | null} target */
  const itemOf = (target) => {
    const li = target?.closest("li[data-id]");
    return li instanceof HTMLElement ? items.get(li.dataset.id ?? "") : undefined;
  };

  list.addEventListener("click", async (e) => {
    const b = e.target instanceof Element ? e.target.closest("button[data-action]") : null;
    const it = itemOf(b);
    if (!(b instanceof HTMLButtonElement) || !it) return;
    switch (b.dataset.action) {
      case "play":
        return play(it);
      case "read":
      case "unread":
        b.disabled = true;
        await setRead(it, b.dataset.action === "read");
        b.disabled = false;
        return;
      case "note":
        return noteForm(it, true);
      case "note-cancel":
        return noteForm(it, false);
      case "callback":
        await ctx.placeCall(it.vm.from, callerOf(it.vm).name || undefined);
        return;
      case "delete":
        return confirmDelete(it, true);
      case "delete-cancel":
        return confirmDelete(it, false);
      case "delete-confirm":
        b.disabled = true;
        await remove(it);
        b.disabled = false;
        return;
    }
  }, { signal });
  list.addEventListener("submit", (e) => {
    e.preventDefault();
    const it = itemOf(e.target instanceof Element ? e.target : null);
    if (it) saveNote(it);
  }, { signal });
  list.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || !(e.target instanceof Element)) return;
    const it = itemOf(e.target);
    if (!it) return;
    if (e.target.closest(".vm-note-form")) noteForm(it, false);
    else if (e.target.closest(".vm-confirm")) confirmDelete(it, false);
  }, { signal });
  refresh.addEventListener("click", load, { signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (isShown("voicemail", s) && !isShown("voicemail", before)) load();
    if (s.voicemails !== before.voicemails || s.contactsByExt !== before.contactsByExt) {
      render(s);
    }
  });
  heading.tabIndex = -1;
  load();

  return {
    stop() {
      stopped = true;
      unsubscribe();
      wiring.abort();
      for (const it of items.values()) {
        it.audio.pause();
        it.audio.removeAttribute("src");
      }
      items.clear();
      list.replaceChildren();
      empty.hidden = true;
      count.textContent = "";
      say("");
    },
  };
}
