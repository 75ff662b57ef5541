/**
 * Presence (mx-protocol §2.3, §3.11): a user session sets its user's presence with
 * `<presence status="…">`. The MX sends no reply to it (mx-http-proxy sent it
 * fire-and-forget); it announces the new presence instead, to the session itself as
 * `<presence from="0" …>` (as right after login) and to other sessions with the user's JID.
 * A refusal would come as `CSTAErrorCode` with the command's invoke id.
 *
 * The note travels as a `presenceNote` child, the form the MX's own presence messages use
 * (§4.7; the set command's note is not recorded in the sources).
 *
 * @example
 * ```ts
 * await setPresence(conn, "Away", "back at 3"); // resolves once the MX confirmed it
 * ```
 *
 * @module
 */
import { el, type XmlElement } from "../xml.ts";
import { RefusedError, TimeoutError } from "../errors.ts";
import type { CstaConnection } from "../connection.ts";
import { isErrorReply, parseErrorReply } from "./error_reply.ts";

/**
 * The presence command.
 *
 * @example
 * ```ts
 * presence("Away", "back at 3");
 * // <presence status="Away"><presenceNote>back at 3</presenceNote></presence>
 * ```
 */
export function presence(status: string, note: string): string {
  return el("presence", { status }, el("presenceNote", {}, note)).xml;
}

/** Whether `msg` announces the session's own presence as `status` (and `note`). */
function confirms(msg: XmlElement, own: string, status: string, note: string): boolean {
  if (msg.name !== "presence" || msg.attrs.status?.trim() !== status) return false;
  const from = msg.attrs.from?.trim();
  if (from !== "0" && from !== own) return false;
  const n = msg.children.find((c) => c.name === "presenceNote");
  // A confirmation without a note says nothing against ours.
  return n === undefined || n.text.trim() === note.trim();
}

/**
 * Sets the session user's presence and waits until the MX announces it to the session.
 * @throws {RefusedError} when the MX answers `CSTAErrorCode`
 * @throws {TimeoutError} when no confirmation arrives in time
 * @throws {ConnectionClosedError} when the session ends meanwhile
 *
 * @example
 * ```ts
 * await setPresence(conn, "DoNotDisturb", "");
 * ```
 */
export function setPresence(
  conn: CstaConnection,
  status: string,
  note: string,
  timeoutMs = conn.requestTimeoutMs,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let id = -1;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop();
      if (err) reject(err);
      else resolve();
    };
    const own = conn.info?.jid ?? "";
    const stop = conn.onMessage((msg, invokeId) => {
      if (invokeId === id && isErrorReply(msg)) finish(new RefusedError(parseErrorReply(msg)));
      else if (confirms(msg, own, status, note)) finish();
    });
    const timer = setTimeout(() => finish(new TimeoutError()), timeoutMs);
    conn.closed.then((reason) => finish(reason));
    try {
      id = conn.send(presence(status, note));
    } catch (err) {
      finish(err as Error);
    }
  });
}
