/**
 * Per-extension call logs of the simulated MX and their wire form (mx-protocol §3.5):
 * `<callloginfo>` blocks of 21 `<callinfo>` records, a shorter block being the last, and no
 * reply at all for an empty result.
 *
 * @module
 */
import { escapeXml, type XmlElement } from "../csta/xml.ts";
import type { SimSession } from "./session.ts";

/** Records per `callloginfo` block. */
export const CALLLOG_BLOCK_SIZE = 21;

/** One call-log record with the wire's field names (all §3.5 fields). */
export interface SimCallLogRecord {
  /** `record_id`; assigned by the simulator when omitted. */
  recordId: number;
  /** Call id string, e.g. `63022-00-0000D-177`. */
  gcid: string;
  /** Missed call (attribute). */
  missed: boolean;
  /** `incoming` / `outgoing` (attribute). */
  direction: string;
  /** Unix seconds; 0 for a call never connected. */
  connectTimestamp: number;
  /** Unix seconds. */
  disconnectTimestamp: number;
  /** Calling number. */
  callingPartyNo: string;
  /** Originally dialled number. */
  originalCalledPartyNo: string;
  /** Other party's first name (internal parties). */
  firstName: string;
  /** Other party's last name. */
  lastName: string;
  /** Other party's extension. */
  extension: string;
  /** Service name (hunt group etc.). */
  serviceName: string;
  /** Service extension. */
  serviceExtension: string;
  /** Undocumented code, 1 in samples. */
  callType: number;
  /** Undocumented code. */
  legType: number;
  /** Undocumented code. */
  selfLegType: number;
  /** Undocumented code. */
  monitorType: number;
}

/**
 * Fills the defaults of a partial record (everything but the record id).
 *
 * @example
 * ```ts
 * normalizeRecord({ gcid: "63022-00-0000D-177" }).direction; // "outgoing"
 * ```
 */
export function normalizeRecord(
  r: Partial<SimCallLogRecord>,
): Omit<SimCallLogRecord, "recordId"> & {
  recordId?: number;
} {
  const now = Math.floor(Date.now() / 1000);
  return {
    recordId: r.recordId,
    gcid: r.gcid ?? "",
    missed: r.missed ?? false,
    direction: r.direction ?? "outgoing",
    connectTimestamp: r.connectTimestamp ?? 0,
    disconnectTimestamp: r.disconnectTimestamp ?? now,
    callingPartyNo: r.callingPartyNo ?? "",
    originalCalledPartyNo: r.originalCalledPartyNo ?? "",
    firstName: r.firstName ?? "",
    lastName: r.lastName ?? "",
    extension: r.extension ?? "",
    serviceName: r.serviceName ?? "",
    serviceExtension: r.serviceExtension ?? "",
    callType: r.callType ?? 1,
    legType: r.legType ?? 1,
    selfLegType: r.selfLegType ?? 1,
    monitorType: r.monitorType ?? 0,
  };
}

/**
 * Renders one `<callinfo>`.
 *
 * @example
 * ```ts
 * callInfoXml({ ...normalizeRecord({}), recordId: 1 }); // <callinfo missed="false" …
 * ```
 */
export function callInfoXml(r: SimCallLogRecord): string {
  return `<callinfo missed="${r.missed}" direction="${escapeXml(r.direction)}">` +
    `<record_id>${r.recordId}</record_id><gcid>${escapeXml(r.gcid)}</gcid>` +
    `<connectTimestamp>${r.connectTimestamp}</connectTimestamp>` +
    `<disconnectTimestamp>${r.disconnectTimestamp}</disconnectTimestamp>` +
    `<callingPartyNo>${escapeXml(r.callingPartyNo)}</callingPartyNo>` +
    `<originalCalledPartyNo>${escapeXml(r.originalCalledPartyNo)}</originalCalledPartyNo>` +
    `<firstName>${escapeXml(r.firstName)}</firstName><lastName>${
      escapeXml(r.lastName)
    }</lastName>` +
    `<extension>${escapeXml(r.extension)}</extension>` +
    `<serviceName>${escapeXml(r.serviceName)}</serviceName>` +
    `<serviceExtension>${escapeXml(r.serviceExtension)}</serviceExtension>` +
    `<callType>${r.callType}</callType><legType>${r.legType}</legType>` +
    `<selfLegType>${r.selfLegType}</selfLegType><monitorType>${r.monitorType}</monitorType>` +
    `</callinfo>`;
}

/**
 * Call logs keyed by extension; record ids are unique across the simulator.
 *
 * @example
 * ```ts
 * const log = new CallLogStore();
 * log.add("3095", { direction: "incoming", missed: true });
 * log.blocks("3095", -1).length; // 1
 * ```
 */
export class CallLogStore {
  #logs = new Map<string, SimCallLogRecord[]>();
  #nextId = 1;

  /** Appends a record and returns it with its record id. */
  add(ext: string, r: Partial<SimCallLogRecord>): SimCallLogRecord {
    const n = normalizeRecord(r);
    const rec: SimCallLogRecord = { ...n, recordId: n.recordId ?? this.#nextId++ };
    if (rec.recordId >= this.#nextId) this.#nextId = rec.recordId + 1;
    let log = this.#logs.get(ext);
    if (!log) this.#logs.set(ext, log = []);
    log.push(rec);
    return rec;
  }

  /** The records of one extension, oldest first. */
  list(ext: string): readonly SimCallLogRecord[] {
    return this.#logs.get(ext) ?? [];
  }

  /**
   * The `callloginfo` payloads answering a request: records with
   * `disconnectTimestamp >= timestamp` (all when `timestamp < 0`), ordered by record id, in
   * blocks of 21. Empty when nothing matches (the MX then sends nothing).
   */
  blocks(ext: string, timestamp: number): string[] {
    const recs = this.list(ext)
      .filter((r) => timestamp < 0 || r.disconnectTimestamp >= timestamp)
      .sort((a, b) => a.recordId - b.recordId);
    const out: string[] = [];
    for (let i = 0; i < recs.length; i += CALLLOG_BLOCK_SIZE) {
      out.push(
        "<callloginfo>" + recs.slice(i, i + CALLLOG_BLOCK_SIZE).map(callInfoXml).join("") +
          "</callloginfo>",
      );
    }
    return out;
  }
}

/**
 * Handles `<iq id="calllog" timestamp="t">` (mx-protocol §3.5): the session user's records
 * (a Server session's: the empty extension's) as `<callloginfo>` events, or nothing at all
 * for an empty result.
 *
 * @example
 * ```ts
 * handleCallLogRequest(store, session, parseXml('<iq type="get" id="calllog" timestamp="-1"/>'));
 * ```
 */
export function handleCallLogRequest(store: CallLogStore, s: SimSession, el: XmlElement): void {
  const ts = Number(el.attrs.timestamp ?? -1);
  const ext = s.server ? "" : s.user!.ext;
  for (const block of store.blocks(ext, Number.isFinite(ts) ? ts : -1)) s.event(block);
}
