/**
 * The call log and voicemail as both APIs serve them (the Proxy API under `/mx/{name}/…`,
 * the Flex API under `/api/…`): the JSON of the records in the seed's field order with its
 * omitempty rules (mx-protocol §6.3), and the request parameters that select and change
 * them (`timestamp`, a voicemail id, a voicemail patch).
 *
 * @example
 * ```ts
 * const ts = parseTimestamp(c.req.query("timestamp"));
 * const log = await user.callLog(ts);
 * return jsonResponse({ callog: log.map(callLogJson) });
 * ```
 *
 * @module
 */
import type { CallLogRecord, Voicemail } from "../mx/mod.ts";
import { boolField, type Fields, stringField } from "./body.ts";
import { HttpError } from "./errors.ts";

/**
 * Call-log item in the seed's field order with its omitempty rules (mx-protocol §6.3).
 *
 * @example
 * ```ts
 * callLogJson(record); // { direction: "outgoing", recordId: 375, gcid: "63022-00-0000D-177", … }
 * ```
 */
export function callLogJson(r: CallLogRecord): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (r.missed) o.missed = true;
  o.direction = r.direction;
  o.recordId = r.recordId;
  o.gcid = r.gcid;
  if (r.connect) o.connect = r.connect;
  if (r.disconnect) o.disconnect = r.disconnect;
  o.callingPartyNo = r.callingPartyNo;
  o.originalCalledPartyNo = r.originalCalledPartyNo;
  if (r.firstName) o.firstName = r.firstName;
  if (r.lastName) o.lastName = r.lastName;
  if (r.ext) o.ext = r.ext;
  if (r.serviceName) o.serviceName = r.serviceName;
  if (r.serviceExtension) o.serviceExtension = r.serviceExtension;
  if (r.callType) o.callType = r.callType;
  if (r.legType) o.legType = r.legType;
  if (r.selfLegType) o.selfLegType = r.selfLegType;
  if (r.monitorType) o.monitorType = r.monitorType;
  return o;
}

/**
 * Voicemail list item (mx-protocol §6.3).
 *
 * @example
 * ```ts
 * voicemailJson(mail); // { from: "3095", to: "3099", ownerType: "user", id: "80", received: … }
 * ```
 */
export function voicemailJson(v: Voicemail): Record<string, unknown> {
  const o: Record<string, unknown> = { from: v.from };
  if (v.fromName) o.fromName = v.fromName;
  if (v.callerName) o.callerName = v.callerName;
  o.to = v.to;
  o.ownerType = v.ownerType;
  o.id = v.id;
  o.received = v.received;
  if (v.duration) o.duration = v.duration;
  if (v.read) o.read = true;
  if (v.note) o.note = v.note;
  return o;
}

/** RFC 3339 date-time (seconds and fraction optional): year, month, day, hour. */
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Parses the call-log `timestamp` query: Unix seconds or RFC 3339; absent = all (-1).
 * @throws {HttpError} 400 "bad timestamp format"
 *
 * @example
 * ```ts
 * parseTimestamp("2017-07-28T14:31:47Z"); // 1501252307
 * ```
 */
export function parseTimestamp(q: string | undefined): number {
  if (q === undefined || q === "") return -1;
  if (/^-?\d{1,12}$/.test(q)) return Number(q);
  const m = RFC3339_RE.exec(q);
  // Date.parse rolls impossible dates over (February 30 is March 2, 24:00 the next day); RFC
  // 3339 (and Go's time.Parse in the originals) refuse them.
  if (m && Number(m[4]) < 24 && Number(m[3]) <= daysInMonth(Number(m[1]), Number(m[2]))) {
    const ms = Date.parse(q);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new HttpError(400, "bad timestamp format");
}

/** Days in `month` (1–12) of `year`; 0 for another month number. */
function daysInMonth(year: number, month: number): number {
  return month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
}

/**
 * A voicemail id from the path.
 * @throws {HttpError} 400 "bad voicemail id"
 *
 * @example
 * ```ts
 * mailIdParam(c.req.param("id")); // "80"
 * ```
 */
export function mailIdParam(raw: string | undefined): string {
  const id = raw ?? "";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new HttpError(400, "bad voicemail id");
  return id;
}

/**
 * The change a voicemail PATCH asks for: `note` and/or the read flag, spelled `readed` (the
 * seed) or `read`.
 * @throws {HttpError} 400 "bad request" when neither is given
 *
 * @example
 * ```ts
 * voicemailPatch({ note: "call back", readed: true }); // { note: "call back", read: true }
 * ```
 */
export function voicemailPatch(f: Fields): { note?: string; read?: boolean } {
  const note = f.note === undefined ? undefined : String(stringField(f, "note") ?? "");
  const read = boolField(f, "readed") ?? boolField(f, "read");
  if (note === undefined && read === undefined) throw new HttpError(400, "bad request");
  return { note, read };
}
