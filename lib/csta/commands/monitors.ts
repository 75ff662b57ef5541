/**
 * Device monitors (mx-protocol §3.1): `MonitorStart` on an extension makes the MX send that
 * device's call events, tagged with the returned `monitorCrossRefID`, until `MonitorStop`.
 * A user session must also monitor its own extension before any mail command (§7.10).
 *
 * @example
 * ```ts
 * const ref = await startMonitor(conn, "3095");
 * await stopMonitor(conn, ref);
 * ```
 *
 * @module
 */
import { el, textAt, type XmlElement } from "../xml.ts";
import { ProtocolError } from "../errors.ts";
import type { CstaConnection } from "../connection.ts";
import { CSTA_ED4_NS, toInt } from "./_util.ts";
import { throwIfErrorReply } from "./error_reply.ts";

/**
 * Starts monitoring an extension (not a JID). `namespace` adds the ECMA-323 ed4 `xmlns`
 * as mxproxy did; the MX accepts both forms.
 *
 * @example
 * ```ts
 * monitorStart("3095");
 * // <MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>
 * ```
 */
export function monitorStart(ext: string, opts: { namespace?: boolean } = {}): string {
  return el(
    "MonitorStart",
    { xmlns: opts.namespace ? CSTA_ED4_NS : undefined },
    el("monitorObject", {}, el("deviceObject", {}, ext)),
  ).xml;
}

/**
 * The `monitorCrossRefID` of a `MonitorStartResponse`.
 * @throws {RefusedError} for `CSTAErrorCode`
 * @throws {ProtocolError} when the reply has no monitor id
 *
 * @example
 * ```ts
 * parseMonitorStart(parseXml("<MonitorStartResponse><monitorCrossRefID>7</monitorCrossRefID></MonitorStartResponse>")); // 7
 * ```
 */
export function parseMonitorStart(e: XmlElement): number {
  throwIfErrorReply(e);
  const id = textAt(e, "monitorCrossRefID");
  if (id === "") throw new ProtocolError(`unknown monitor start response ${e.name}`);
  return toInt(id);
}

/**
 * Stops a monitor by its `monitorCrossRefID`.
 *
 * @example
 * ```ts
 * monitorStop(7); // <MonitorStop><monitorCrossRefID>7</monitorCrossRefID></MonitorStop>
 * ```
 */
export function monitorStop(id: number, opts: { namespace?: boolean } = {}): string {
  return el(
    "MonitorStop",
    { xmlns: opts.namespace ? CSTA_ED4_NS : undefined },
    el("monitorCrossRefID", {}, id),
  ).xml;
}

/**
 * Starts a monitor and returns its `monitorCrossRefID`.
 * @throws {RefusedError} when the MX refuses the extension
 *
 * @example
 * ```ts
 * const ref = await startMonitor(conn, "3095");
 * ```
 */
export async function startMonitor(
  conn: CstaConnection,
  ext: string,
  opts?: { namespace?: boolean },
): Promise<number> {
  return parseMonitorStart(await conn.request(monitorStart(ext, opts)));
}

/**
 * Stops a monitor.
 *
 * @example
 * ```ts
 * await stopMonitor(conn, ref);
 * ```
 */
export async function stopMonitor(conn: CstaConnection, id: number): Promise<void> {
  await conn.request(monitorStop(id));
}
