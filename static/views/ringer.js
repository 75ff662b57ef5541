// @ts-check
/**
 * How an incoming call gets attention while it rings here: a short WebAudio ring every
 * {@link RING_EVERY_MS} (`lib/tone.js`), the tab title flashing the caller, a desktop
 * notification when the user allowed them, and a screen-reader announcement (an
 * `aria-live="assertive"` region). All of it stops when no call rings any more.
 *
 * Browsers allow sound only after a user gesture and ask for notification permission only
 * from one: the audio is unlocked on the first click or key press of the session (signing
 * in is one), and the "Enable notifications" button in the top bar asks for the permission
 * (it is shown while the browser has not been asked yet). After a page reload without a
 * gesture a ringing call flashes and notifies but may stay silent.
 *
 * Test hooks: `#announcer`, `#notify-button`, `document.title`.
 *
 * @module
 */
import { nameOf } from "../lib/contacts.js";
import { byId } from "../lib/dom.js";
import { playRing } from "../lib/tone.js";

/** @typedef {import("../session.js").SessionState} SessionState */

/** A ring starts this often while a call rings (ms). */
export const RING_EVERY_MS = 3000;

/** The title changes this often while a call rings (ms). */
export const TITLE_FLASH_MS = 1000;

/** Whether this browser has desktop notifications at all. */
const canNotify = () => typeof Notification === "function";

/** @type {import("../session.js").ViewFactory} */
export function ringerView(ctx) {
  const announcer = byId("announcer");
  const notifyButton = byId("notify-button", HTMLButtonElement);
  const baseTitle = document.title;
  const wiring = new AbortController();
  const signal = wiring.signal;
  /** @type {AudioContext | undefined} */
  let audio;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let ringTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let flashTimer;
  let flashOn = false;
  let flashText = "";
  /** Calls ringing now, with their notification when one was shown. */
  /** @type {Map<number, Notification | undefined>} */
  const ringing = new Map();

  /** The audio context, created (or resumed) on demand; undefined without WebAudio. */
  const audioContext = () => {
    try {
      audio ??= new AudioContext();
    } catch {
      return undefined;
    }
    if (audio.state === "suspended") audio.resume().catch(() => {});
    return audio;
  };
  const unlockAudio = () => void audioContext();
  document.addEventListener("pointerdown", unlockAudio, { signal, once: true });
  document.addEventListener("keydown", unlockAudio, { signal, once: true });

  const ring = () => {
    const a = audioContext();
    if (a) playRing(a);
  };

  const flash = () => {
    flashOn = !flashOn;
    document.title = flashOn ? flashText : baseTitle;
  };

  const showNotifyButton = () => {
    notifyButton.hidden = !canNotify() || Notification.permission !== "default";
  };

  /**
   * @param {number} id
   * @param {string} who
   * @returns {Notification | undefined}
   */
  const notify = (id, who) => {
    if (!canNotify() || Notification.permission !== "granted") return undefined;
    try {
      const n = new Notification("Incoming call", {
        body: who,
        tag: `mxflex-call-${id}`,
        icon: "/favicon.svg",
        requireInteraction: true,
      });
      n.onclick = () => {
        globalThis.focus();
        ctx.showTab("calls");
        n.close();
      };
      return n;
    } catch {
      // Some browsers (Android) allow notifications from service workers only.
      return undefined;
    }
  };

  /** @param {SessionState} s */
  const render = (s) => {
    /** @type {string[]} */
    const callers = [];
    const now = new Set();
    for (const c of s.calls.values()) {
      if (c.state !== "ringing") continue;
      now.add(c.id);
      const name = nameOf(s.contactsByExt, c.remote) || c.remoteName;
      const who = name ? `${name} (${c.remote})` : c.remote || "Unknown caller";
      callers.push(who);
      if (!ringing.has(c.id)) {
        ringing.set(c.id, notify(c.id, who));
        announcer.textContent = `Incoming call from ${who}`;
      }
    }
    for (const [id, n] of ringing) {
      if (now.has(id)) continue;
      n?.close();
      ringing.delete(id);
    }
    if (ringing.size === 0) {
      silence();
      return;
    }
    flashText = `☎ ${callers.join(", ")} calling`;
    if (ringTimer === undefined) {
      ring();
      ringTimer = setInterval(ring, RING_EVERY_MS);
    }
    if (flashTimer === undefined) {
      flashOn = false;
      flash();
      flashTimer = setInterval(flash, TITLE_FLASH_MS);
    }
  };

  const silence = () => {
    clearInterval(ringTimer);
    clearInterval(flashTimer);
    ringTimer = flashTimer = undefined;
    document.title = baseTitle;
  };

  notifyButton.addEventListener("click", async () => {
    if (!canNotify()) return;
    try {
      await Notification.requestPermission();
    } finally {
      showNotifyButton();
    }
  }, { signal });

  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (s.calls !== before.calls || s.contactsByExt !== before.contactsByExt) render(s);
  });
  showNotifyButton();
  render(ctx.store.get());

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      silence();
      for (const n of ringing.values()) n?.close();
      ringing.clear();
      announcer.textContent = "";
      notifyButton.hidden = true;
      audio?.close().catch(() => {});
    },
  };
}
