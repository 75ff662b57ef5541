/**
 * The call log (mx-protocol §3.5, §7.8): one request, answered by `callloginfo` blocks of 21
 * records (matched by name), a shorter block being the last and nothing at all for an empty
 * log.
 *
 * @example
 * ```ts
 * const records = await fetchCallLog(conn, -1); // everything, sorted by recordId
 * ```
 *
 * @module
 */
import { el, type XmlElement } from "../xml.ts";
import type { CstaConnection } from "../connection.ts";
import type { CallLogRecord } from "../types.ts";
import { attr, toBool, toInt } from "./_util.ts";
import { throwIfErrorReply } from "./error_reply.ts";

/** Call-log block size used by the MX (mx-protocol §3.5). */
export const CALLLOG_BLOCK = 21;

/**
 * Requests the call log from `timestamp` (Unix seconds, -1 = everything); answered by
 * `callloginfo` blocks of 21 records.
 *
 * @example
 * ```ts
 * callLogRequest(-1); // <iq type="get" id="calllog" timestamp="-1"></iq>
 * ```
 */
export function callLogRequest(timestamp: number): string {
  return el("iq", { type: "get", id: "calllog", timestamp }).xml;
}

/**
 * Reads one `callloginfo` block.
 * @throws {RefusedError} for `CSTAErrorCode`
 *
 * @example
 * ```ts
 * parseCallLog(parseXml('<callloginfo><callinfo missed="true"/></callloginfo>'))[0].missed; // true
 * ```
 */
export function parseCallLog(e: XmlElement): CallLogRecord[] {
  throwIfErrorReply(e);
  const out: CallLogRecord[] = [];
  for (const c of e.children) if (c.name === "callinfo") out.push(parseCallInfo(c));
  return out;
}

function parseCallInfo(e: XmlElement): CallLogRecord {
  const r: CallLogRecord = {
    missed: toBool(e.attrs.missed),
    direction: attr(e, "direction"),
    recordId: 0,
    gcid: "",
    connect: 0,
    disconnect: 0,
    callingPartyNo: "",
    originalCalledPartyNo: "",
    firstName: "",
    lastName: "",
    ext: "",
    serviceName: "",
    serviceExtension: "",
    callType: 0,
    legType: 0,
    selfLegType: 0,
    monitorType: 0,
  };
  for (const c of e.children) {
    const t = c.text.trim();
    switch (c.name) {
      case "record_id":
      case "recordId":
        r.recordId = toInt(t);
        break;
      case "gcid":
        r.gcid = t;
        break;
      case "connectTimestamp":
        r.connect = toInt(t);
        break;
      case "disconnectTimestamp":
        r.disconnect = toInt(t);
        break;
      case "callingPartyNo":
        r.callingPartyNo = t;
        break;
      case "originalCalledPartyNo":
        r.originalCalledPartyNo = t;
        break;
      case "firstName":
        r.firstName = t;
        break;
      case "lastName":
        r.lastName = t;
        break;
      case "extension":
        r.ext = t;
        break;
      case "serviceName":
        r.serviceName = t;
        break;
      case "serviceExtension":
        r.serviceExtension = t;
        break;
      case "callType":
        r.callType = toInt(t);
        break;
      case "legType":
        r.legType = toInt(t);
        break;
      case "selfLegType":
        r.selfLegType = toInt(t);
        break;
      case "monitorType":
        r.monitorType = toInt(t);
        break;
    }
  }
  return r;
}

/**
 * Reads the call log from `timestamp` (Unix seconds, -1 = all). The MX sends blocks of 21
 * records, a shorter block being the last, and nothing at all for an empty log, so a timeout
 * ends the log rather than failing it. Blocks follow each other at once, so after a full
 * block the wait is short (`nextBlockTimeoutMs`): a log of exactly 21·n records then costs
 * 0.3 s extra instead of 2 s. Records are returned sorted by `recordId`.
 *
 * @example
 * ```ts
 * const since = await fetchCallLog(conn, 1501101426);
 * ```
 */
export async function fetchCallLog(
  conn: CstaConnection,
  timestamp = -1,
  blockTimeoutMs = 2_000,
  nextBlockTimeoutMs = 300,
): Promise<CallLogRecord[]> {
  const records: CallLogRecord[] = [];
  const done = conn.collectByName(
    ["callloginfo"],
    (e) => {
      const block = parseCallLog(e);
      records.push(...block);
      return block.length < CALLLOG_BLOCK;
    },
    blockTimeoutMs,
    nextBlockTimeoutMs,
  );
  conn.send(callLogRequest(timestamp));
  await done;
  return records.sort((a, b) => a.recordId - b.recordId);
}
