/**
 * Call monitors of the simulated MX (mx-protocol §3.1): `MonitorStart` / `MonitorStop` on a
 * session, the index of every session's monitors by extension, and the fan-out of one call
 * event to every monitor of the extensions it concerns.
 *
 * @module
 */
import { intAt, textAt, type XmlElement } from "../csta/xml.ts";
import type { SimMonitor, SimSession } from "./session.ts";
import type { UserDirectory } from "./users.ts";

/**
 * Every monitor of every session, by monitored extension.
 *
 * @example
 * ```ts
 * const monitors = new MonitorRegistry(users);
 * monitors.start(session, 2, parseXml(
 *   "<MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>",
 * ));
 * monitors.fanout("HeldEvent", ["3095"], (ext) => `<heldConnection>…${ext}…</heldConnection>`);
 * ```
 */
export class MonitorRegistry {
  #byExt = new Map<string, Set<SimMonitor>>();
  #users: UserDirectory;

  /** @param users the directory that tells which extensions exist */
  constructor(users: UserDirectory) {
    this.#users = users;
  }

  /** Active monitors over all sessions. */
  get size(): number {
    let n = 0;
    for (const set of this.#byExt.values()) n += set.size;
    return n;
  }

  /** Active monitors on one extension (one per session watching it). */
  count(ext: string): number {
    return this.#byExt.get(ext)?.size ?? 0;
  }

  /** Handles `MonitorStart`: answers the `monitorCrossRefID` or a CSTA error. */
  start(s: SimSession, id: number, el: XmlElement): void {
    const ext = textAt(el, "monitorObject", "deviceObject");
    if (!this.#users.byExt(ext)) return s.error(id, "invalid device id");
    // A User session may only watch its own extension (mx-protocol §3.1).
    if (!s.server && ext !== s.user?.ext) return s.error(id, "URM Denied");
    // A repeated MonitorStart for the same extension returns the existing monitor, so a
    // session never receives each event twice (the MX's behaviour is unknown, §7.12).
    let m = s.monitorOf(ext);
    if (!m) {
      m = s.addMonitor(ext);
      let set = this.#byExt.get(ext);
      if (!set) this.#byExt.set(ext, set = new Set());
      set.add(m);
    }
    s.send(
      id,
      `<MonitorStartResponse><monitorCrossRefID>${m.ref}</monitorCrossRefID>` +
        `<actualMonitorMediaClass><voice>true</voice></actualMonitorMediaClass>` +
        `</MonitorStartResponse>`,
    );
  }

  /** Handles `MonitorStop`. */
  stop(s: SimSession, id: number, el: XmlElement): void {
    const m = s.monitors.get(intAt(el, "monitorCrossRefID"));
    if (!m) return s.error(id, "invalid monitor id");
    s.removeMonitor(m);
    this.#forget(m);
    s.send(id, "<MonitorStopResponse></MonitorStopResponse>");
  }

  /** Forgets every monitor of a session that ended. */
  release(s: SimSession): void {
    for (const m of [...s.monitors.values()]) {
      this.#forget(m);
      s.removeMonitor(m);
    }
  }

  /** Sends one event to every monitor of every listed extension. */
  fanout(name: string, exts: readonly string[], body: (ext: string) => string): void {
    for (const ext of exts) {
      const set = this.#byExt.get(ext);
      if (!set?.size) continue;
      const inner = body(ext);
      for (const m of set) {
        m.session.event(
          `<${name}><monitorCrossRefID>${m.ref}</monitorCrossRefID>${inner}</${name}>`,
        );
      }
    }
  }

  #forget(m: SimMonitor): void {
    const set = this.#byExt.get(m.ext);
    if (!set) return;
    set.delete(m);
    if (!set.size) this.#byExt.delete(m.ext);
  }
}
