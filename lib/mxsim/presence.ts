/**
 * Presence of the simulated MX's users (mx-protocol §2.3, §3.11, §4.7): the `presence`
 * command (a user session sets its own user's status and note), changes on demand (the
 * simulator's API), and, when enabled, changes on calls: a user with a connected or held call
 * shows `OnThePhone` (the status the gateway passes through like any other), and gets the
 * status from before back when the last call ends.
 *
 * Every change is announced as `<presence from="<jid>" status="…" mxStatus="…">` with a
 * `<presenceNote>` child to every Server session, and as `from="0"` to the user's own
 * sessions (as the MX does right after a login); the address book shows the new state.
 *
 * @module
 */
import { escapeXml, textAt, type XmlElement } from "../csta/xml.ts";
import type { SimSession } from "./session.ts";
import type { SimUser, UserDirectory } from "./users.ts";

/** The status a user shows while on a call (when presence on calls is enabled). */
export const ON_THE_PHONE = "OnThePhone";

/** `mxStatus` flags announced (values seen in mx-http-proxy's description). */
const MX_IDLE = "USER_ACCEPTS_IM";
const MX_ON_CALL = "USER_ON_CALL_NO_MORE_LINES";

/** The `presence` announcement of `u` as session `to` sees it. */
function presenceXml(u: SimUser, from: string, onCall: boolean): string {
  return `<presence from="${escapeXml(from)}" status="${escapeXml(u.presence ?? "LoggedOut")}"` +
    ` mxStatus="${onCall ? MX_ON_CALL : MX_IDLE}">` +
    `<presenceNote>${escapeXml(u.presenceNote ?? "")}</presenceNote></presence>`;
}

/**
 * Who shows what, and the announcements of every change.
 *
 * @example
 * ```ts
 * const board = new PresenceBoard(users, () => sessions, (ext) => inCall(ext));
 * board.set("43884851147406145", "Away", "back at 3"); // announced to every Server session
 * ```
 */
export class PresenceBoard {
  #users: UserDirectory;
  #sessions: () => Iterable<SimSession>;
  #inCall: (ext: string) => boolean;
  /** Users shown `OnThePhone` by a call, with the status to restore (by JID). */
  #onCall = new Map<string, string>();
  #touched = new Set<string>();
  #scheduled = false;
  /** Whether calls change presence. */
  onCalls: boolean;

  /**
   * @param users the directory holding each user's presence
   * @param sessions the open sessions (announcements go to them)
   * @param inCall whether an extension has a connected or held call now
   * @param onCalls whether calls change presence
   */
  constructor(
    users: UserDirectory,
    sessions: () => Iterable<SimSession>,
    inCall: (ext: string) => boolean,
    onCalls = false,
  ) {
    this.#users = users;
    this.#sessions = sessions;
    this.#inCall = inCall;
    this.onCalls = onCalls;
  }

  /**
   * Sets a user's presence and announces it (also when unchanged: the MX confirms every
   * command). An explicit change during a call wins: the call's end does not undo it.
   * @returns false for an unknown JID
   */
  set(jid: string, status: string, note = ""): boolean {
    const u = this.#users.setPresence(jid, status, note);
    if (!u) return false;
    this.#onCall.delete(jid);
    this.#announce(u);
    return true;
  }

  /**
   * Call events of these extensions went out: once the current step has finished (a
   * microtask later, when the call engine's state is final), each one's presence follows
   * whether it is in a call.
   */
  touch(exts: readonly string[]): void {
    if (!this.onCalls) return;
    for (const e of exts) this.#touched.add(e);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const exts = [...this.#touched];
      this.#touched.clear();
      for (const ext of exts) this.#follow(ext);
    });
  }

  #follow(ext: string): void {
    const u = this.#users.byExt(ext);
    if (!u) return;
    const busy = this.#inCall(ext);
    const shown = this.#onCall.has(u.jid);
    if (busy && !shown) {
      this.#onCall.set(u.jid, u.presence ?? "LoggedOut");
      this.#users.setPresence(u.jid, ON_THE_PHONE, u.presenceNote ?? "");
      this.#announce(u);
    } else if (!busy && shown) {
      const before = this.#onCall.get(u.jid)!;
      this.#onCall.delete(u.jid);
      this.#users.setPresence(u.jid, before, u.presenceNote ?? "");
      this.#announce(u);
    }
  }

  #announce(u: SimUser): void {
    const onCall = this.#onCall.has(u.jid);
    let serverXml: string | undefined;
    for (const s of this.#sessions()) {
      if (s.closed || !s.loggedIn) continue;
      if (s.server) s.event(serverXml ??= presenceXml(u, u.jid, onCall));
      else if (s.user?.jid === u.jid) s.event(presenceXml(u, "0", onCall));
    }
  }
}

/**
 * Handles the `presence` command of a User session: sets the session user's `status` and
 * `presenceNote`. No reply (the announcement confirms it); a CSTA error for a Server session
 * or a missing status.
 *
 * @example
 * ```ts
 * handlePresence(board, session, 7, parseXml('<presence status="Away"><presenceNote/></presence>'));
 * ```
 */
export function handlePresence(
  board: PresenceBoard,
  s: SimSession,
  id: number,
  el: XmlElement,
): void {
  const status = el.attrs.status?.trim() ?? "";
  if (s.server || !s.user) return s.error(id, "URM Denied");
  if (!status) return s.error(id, "invalid presence status");
  board.set(s.user.jid, status, textAt(el, "presenceNote"));
}
