// @ts-check
/**
 * The call history (`GET /api/calllog`, the MX's call-log records) as list entries: who
 * the other party was, the number to call back, when, how long, missed or not; newest
 * first.
 *
 * @example
 * ```js
 * const entries = historyEntries(body.calllog);
 * entries[0].peer; // "3044": the number "Call back" dials
 * ```
 *
 * @module
 */

/**
 * One call-log record as the server sends it (mx-protocol §3.5; optional fields omitted
 * when empty).
 * @typedef {{missed?: boolean, direction?: string, recordId?: number, gcid?: string,
 *   connect?: number, disconnect?: number, callingPartyNo?: string,
 *   originalCalledPartyNo?: string, firstName?: string, lastName?: string, ext?: string,
 *   serviceName?: string, serviceExtension?: string}} CallLogRecord
 */

/**
 * @typedef {object} HistoryEntry
 * @property {string} id the record id
 * @property {"in" | "out"} direction
 * @property {boolean} missed
 * @property {string} peer the other party's extension or number: what "Call back" dials
 * @property {string} name the other party's name as the MX recorded it ("" when none)
 * @property {string} service the hunt group or other service the call came through
 * @property {number} at when the call connected, else when it ended (ms; 0 unknown)
 * @property {number} seconds how long it was connected (0 when never)
 */

/** @param {unknown} v */
const text = (v) => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");
/** @param {unknown} v */
const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/**
 * One record as an entry; records that are not objects are undefined.
 * @param {unknown} r
 * @returns {HistoryEntry | undefined}
 */
export function historyEntry(r) {
  if (!r || typeof r !== "object") return undefined;
  const rec = /** @type {CallLogRecord} */ (r);
  const incoming = rec.direction === "incoming";
  const connect = num(rec.connect), disconnect = num(rec.disconnect);
  return {
    id: text(rec.recordId) || text(rec.gcid),
    direction: incoming ? "in" : "out",
    missed: rec.missed === true,
    peer: text(rec.ext) || text(incoming ? rec.callingPartyNo : rec.originalCalledPartyNo),
    name: [text(rec.firstName), text(rec.lastName)].filter(Boolean).join(" "),
    service: text(rec.serviceName),
    at: (connect || disconnect) * 1000,
    seconds: connect && disconnect > connect ? disconnect - connect : 0,
  };
}

/**
 * The records as entries, newest first (by time, then by record id).
 * @param {readonly unknown[]} records
 * @returns {HistoryEntry[]}
 */
export function historyEntries(records) {
  /** @type {HistoryEntry[]} */
  const out = [];
  for (const r of records) {
    const e = historyEntry(r);
    if (e) out.push(e);
  }
  return out.sort((a, b) => b.at - a.at || Number(b.id) - Number(a.id));
}
