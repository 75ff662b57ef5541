// @ts-check
/**
 * The right side of the top bar while signed in: connection state (`#conn-status` with
 * `data-state` connecting | live | reconnecting | offline), the user's extension and the
 * log-out button.
 *
 * @module
 */
import { byId } from "../lib/dom.js";

/** @type {Record<import("../session.js").ConnState | "offline", string>} */
const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/** @type {import("../session.js").ViewFactory} */
export function sessionBarView(ctx) {
  const bar = byId("session-info");
  const status = byId("conn-status");
  const me = byId("me");
  const logout = byId("logout-button", HTMLButtonElement);
  const wiring = new AbortController();

  /** @param {keyof LABELS} state */
  const setConn = (state) => {
    status.dataset.state = state;
    status.textContent = LABELS[state];
  };
  /** @param {import("../session.js").SessionState} s */
  const render = (s) => {
    me.textContent = s.me ? `Ext ${s.me}` : "";
    setConn(s.conn);
  };

  logout.addEventListener("click", () => ctx.logout(), { signal: wiring.signal });
  const unsubscribe = ctx.store.subscribe((s, before) => {
    if (s.conn !== before.conn || s.me !== before.me) render(s);
  });
  render(ctx.store.get());
  bar.hidden = false;

  return {
    stop() {
      unsubscribe();
      wiring.abort();
      setConn("offline");
      me.textContent = "";
      bar.hidden = true;
    },
  };
}
