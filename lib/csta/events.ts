/**
 * Typed decoders for unsolicited MX messages (mx-protocol §4): call events for SSE and
 * pushes, address-book changes, presence changes, new voicemail, server logout.
 *
 * Call events become a {@link CallEvent} whose `data` is exactly the JSON object the Flex
 * API streams (key order and omitempty rules of the original, seeds/mxflex-api.md), so the
 * SSE layer only has to `JSON.stringify` it. {@link decodeCallEvent} runs for every event on
 * every server session (100k+/s in the benchmarks), so it walks the children once with a
 * `switch` into locals: no regexes, no per-field child lookups.
 *
 * JSON shapes (`o` = omitted when empty/zero; `flags` = `callTypeFlags` (o), `cmdsAllowed` (o);
 * `cads` (o) = array of `{name, type, value (o)}`; every other field always present):
 *
 * | event (SSE name) | connection element | fields, in order |
 * |---|---|---|
 * | OriginatedEvent | originatedConnection | callId, deviceId, callingDevice, calledDevice, cause, flags |
 * | DivertedEvent | connection | callId, deviceId, divertingDevice, newDestination, lastRedirectionDevice (o), cause, flags |
 * | DeliveredEvent | connection | callId, deviceId, globalCallId, alertingDevice, callingDevice, calledDevice, lastRedirectionDevice (o), localConnectionInfo, cause, flags, cads |
 * | EstablishedEvent | establishedConnection | callId, deviceId, globalCallId, answeringDevice, answeringDisplayName, callingDevice, calledDevice, lastRedirectionDevice (o), callingDisplayName, cause, flags, cads |
 * | ConnectionClearedEvent | droppedConnection | callId, deviceId, releasingDevice, cause |
 * | HeldEvent | heldConnection | callId, deviceId, globalCallId (o), holdingDevice, localConnectionInfo, cause, flags, cads |
 * | RetrievedEvent | retrievedConnection | callId, deviceId, globalCallId (o), retrievingDevice, localConnectionInfo, cause, flags, cads |
 * | TransferredEvent (wire: TransferedEvent) | primaryOldCall | callId, deviceId, globalCallId (o), transferringDevice, transferredToDevice, localConnectionInfo, cause, flags, cads |
 * | FailedEvent | failedConnection | callId, deviceId, globalCallId (o), callingDevice, calledDevice, localConnectionInfo, cause, flags, cads |
 * | NetworkReachedEvent | outboundConnection | callId, deviceId, globalCallId (o), networkInterfaceUsed, callingDevice, calledDevice, localConnectionInfo, cause, flags, cads |
 * | ServiceInitiatedEvent | initiatedConnection | callId, deviceId, globalCallId (o), initiatingDevice, localConnectionInfo, cause, flags, cads |
 * | RecordingStateEvent | connection, or flat callID/deviceID | callId, deviceId, recIsAvailable, recIsActive (booleans) |
 *
 * The first five are the seed's contract; the rest follow the same pattern (mx-protocol
 * §4.7). Any of the connection element names is accepted for any event.
 *
 * @module
 */
import { child, textAt, type XmlElement } from "./xml.ts";
import { parseAbEntry } from "./commands/address_book.ts";
import { toInt } from "./commands/_util.ts";
import { parseMailItem } from "./commands/mail.ts";
import type { Contact, Voicemail } from "./types.ts";

/** XML root names of the call events {@link decodeCallEvent} understands. */
export const CALL_EVENTS: ReadonlySet<string> = new Set([
  "OriginatedEvent",
  "DivertedEvent",
  "DeliveredEvent",
  "EstablishedEvent",
  "ConnectionClearedEvent",
  "HeldEvent",
  "RetrievedEvent",
  // The MX spells it with one "r"; the correct spelling is accepted too (mx-http-proxy did).
  "TransferedEvent",
  "TransferredEvent",
  "FailedEvent",
  "NetworkReachedEvent",
  "ServiceInitiatedEvent",
  "RecordingStateEvent",
]);

/** A decoded call event. */
export interface CallEvent {
  /** SSE event name: the XML root name, except `TransferedEvent` → `TransferredEvent`. */
  name: string;
  /** Which monitor produced it: the only routing key (0 when absent). */
  monitorCrossRefId: number;
  /** Call id of the event's connection (0 when absent). */
  callId: number;
  /** The JSON object sent to clients, keys in the documented order. */
  data: Record<string, unknown>;
}

/** One `<cad>` (call-attached data) item as JSON. */
export interface Cad {
  /** `name` attribute, e.g. `__FIRST_CALL_ID__`. */
  name: string;
  /** `type` attribute, e.g. `string`. */
  type: string;
  /** Character data; omitted when empty. */
  value?: string;
}

/** A device field: `<x><deviceIdentifier>v</deviceIdentifier></x>`, or flat `<x>v</x>`. */
function device(e: XmlElement): string {
  const ch = e.children;
  for (let i = 0; i < ch.length; i++) {
    if (ch[i].name === "deviceIdentifier") return ch[i].text.trim();
  }
  return ch.length ? "" : e.text.trim();
}

function cad(e: XmlElement): Cad {
  const c: Cad = { name: e.attrs.name ?? "", type: e.attrs.type ?? "" };
  const v = e.text.trim();
  if (v) c.value = v;
  return c;
}

/**
 * Decodes a call event; `undefined` for any other message.
 *
 * @example
 * ```ts
 * const ev = decodeCallEvent(parseXml(
 *   "<ConnectionClearedEvent><monitorCrossRefID>5</monitorCrossRefID>" +
 *     "<droppedConnection><callID>39</callID><deviceID>3095</deviceID></droppedConnection>" +
 *     "<releasingDevice><deviceIdentifier>3095</deviceIdentifier></releasingDevice>" +
 *     "<cause>normal</cause></ConnectionClearedEvent>",
 * ));
 * encodeEventJson(ev!); // {"callId":39,"deviceId":"3095","releasingDevice":"3095","cause":"normal"}
 * ```
 */
export function decodeCallEvent(e: XmlElement): CallEvent | undefined {
  const xmlName = e.name;
  if (!CALL_EVENTS.has(xmlName)) return undefined;

  let monitor = 0, callId = 0, deviceId = "", gcid = "", haveConn = false;
  let flatCallId = 0, flatDeviceId = "";
  let calling = "", called = "", alerting = "", answering = "", diverting = "", newDest = "";
  let lastRedir = "", releasing = "", holding = "", retrieving = "", transferring = "";
  let transferredTo = "", initiating = "", networkIf = "";
  let answeringName = "", callingName = "", lci = "", cause = "";
  let flags = 0, cmds = 0, recAvail = false, recActive = false;
  let cads: Cad[] | undefined;

  for (const c of e.children) {
    switch (c.name) {
      case "monitorCrossRefID":
        monitor = toInt(c.text);
        break;
      case "connection":
      case "originatedConnection":
      case "establishedConnection":
      case "droppedConnection":
      case "heldConnection":
      case "retrievedConnection":
      case "failedConnection":
      case "initiatedConnection":
      case "outboundConnection":
      case "primaryOldCall":
        if (haveConn) break;
        haveConn = true;
        for (const k of c.children) {
          if (k.name === "callID") callId = toInt(k.text);
          else if (k.name === "deviceID") deviceId = k.text.trim();
          else if (k.name === "globalCallID") gcid = k.text.trim(); // > 2^53: keep as text
        }
        break;
      case "callID":
        flatCallId = toInt(c.text);
        break;
      case "deviceID":
        flatDeviceId = c.text.trim();
        break;
      case "callingDevice":
        calling = device(c);
        break;
      case "calledDevice":
        called = device(c);
        break;
      case "alertingDevice":
        alerting = device(c);
        break;
      case "answeringDevice":
        answering = device(c);
        break;
      case "divertingDevice":
        diverting = device(c);
        break;
      case "newDestination":
        newDest = device(c);
        break;
      case "lastRedirectionDevice":
        lastRedir = device(c);
        break;
      case "releasingDevice":
        releasing = device(c);
        break;
      case "holdingDevice":
        holding = device(c);
        break;
      case "retrievingDevice":
        retrieving = device(c);
        break;
      case "transferringDevice":
        transferring = device(c);
        break;
      case "transferredToDevice":
        transferredTo = device(c);
        break;
      case "initiatingDevice":
        initiating = device(c);
        break;
      case "networkInterfaceUsed":
        networkIf = device(c);
        break;
      case "answeringDisplayName":
        answeringName = c.text.trim();
        break;
      case "callingDisplayName":
        callingName = c.text.trim();
        break;
      case "localConnectionInfo":
        lci = c.text.trim();
        break;
      case "cause":
        cause = c.text.trim();
        break;
      case "callTypeFlags":
        flags = toInt(c.text);
        break;
      case "cmdsAllowed":
        cmds = toInt(c.text);
        break;
      case "RecIsAvailable":
        recAvail = c.text.trim() === "true";
        break;
      case "RecIsActive":
        recActive = c.text.trim() === "true";
        break;
      case "cad":
        (cads ??= []).push(cad(c));
        break;
    }
  }
  if (!haveConn) {
    callId = flatCallId;
    deviceId = flatDeviceId;
  }

  let name = xmlName;
  let d: Record<string, unknown>;
  switch (xmlName) {
    case "OriginatedEvent":
      d = { callId, deviceId, callingDevice: calling, calledDevice: called, cause };
      break;
    case "DivertedEvent":
      d = { callId, deviceId, divertingDevice: diverting, newDestination: newDest };
      if (lastRedir) d.lastRedirectionDevice = lastRedir;
      d.cause = cause;
      break;
    case "DeliveredEvent":
      d = {
        callId,
        deviceId,
        globalCallId: gcid,
        alertingDevice: alerting,
        callingDevice: calling,
        calledDevice: called,
      };
      if (lastRedir) d.lastRedirectionDevice = lastRedir;
      d.localConnectionInfo = lci;
      d.cause = cause;
      break;
    case "EstablishedEvent":
      d = {
        callId,
        deviceId,
        globalCallId: gcid,
        answeringDevice: answering,
        answeringDisplayName: answeringName,
        callingDevice: calling,
        calledDevice: called,
      };
      if (lastRedir) d.lastRedirectionDevice = lastRedir;
      d.callingDisplayName = callingName;
      d.cause = cause;
      break;
    case "ConnectionClearedEvent":
      // No flags and no cads in the seed shape.
      return {
        name,
        monitorCrossRefId: monitor,
        callId,
        data: { callId, deviceId, releasingDevice: releasing, cause },
      };
    case "RecordingStateEvent":
      return {
        name,
        monitorCrossRefId: monitor,
        callId,
        data: { callId, deviceId, recIsAvailable: recAvail, recIsActive: recActive },
      };
    default: {
      // The §4.7 events: same head, globalCallId only when the MX sends one.
      d = { callId, deviceId };
      if (gcid) d.globalCallId = gcid;
      switch (xmlName) {
        case "HeldEvent":
          d.holdingDevice = holding;
          break;
        case "RetrievedEvent":
          d.retrievingDevice = retrieving;
          break;
        case "TransferedEvent":
        case "TransferredEvent":
          name = "TransferredEvent";
          d.transferringDevice = transferring;
          d.transferredToDevice = transferredTo;
          break;
        case "FailedEvent":
          d.callingDevice = calling;
          d.calledDevice = called;
          break;
        case "NetworkReachedEvent":
          d.networkInterfaceUsed = networkIf;
          d.callingDevice = calling;
          d.calledDevice = called;
          break;
        case "ServiceInitiatedEvent":
          d.initiatingDevice = initiating;
          break;
      }
      d.localConnectionInfo = lci;
      d.cause = cause;
    }
  }
  if (flags) d.callTypeFlags = flags;
  if (cmds) d.cmdsAllowed = cmds;
  // OriginatedEvent and DivertedEvent never carried cads in the original JSON.
  if (cads && xmlName !== "OriginatedEvent" && xmlName !== "DivertedEvent") d.cads = cads;
  return { name, monitorCrossRefId: monitor, callId, data: d };
}

/**
 * The event as compact JSON, the SSE `data:` line of the Flex API.
 *
 * @example
 * ```ts
 * `event: ${ev.name}\ndata: ${encodeEventJson(ev)}\n\n`;
 * ```
 */
export function encodeEventJson(ev: CallEvent): string {
  return JSON.stringify(ev.data);
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/**
 * The incoming-call push payload of mx-protocol §4.8, built from a `DeliveredEvent`:
 * `lastRedirectionDevice` is always present, `callTypeFlags` only when non-zero, `cads`,
 * `cmdsAllowed` and the monitor id are left out, and `time` is when the event arrived.
 *
 * @param time Unix seconds
 * @example
 * ```ts
 * pushPayload(ev, Math.floor(Date.now() / 1000));
 * // {callId:21, deviceId:"3095", globalCallId:"2808630435142226622", …, time:1501101426}
 * ```
 */
export function pushPayload(ev: CallEvent, time: number): Record<string, unknown> {
  const d = ev.data;
  const p: Record<string, unknown> = {
    callId: typeof d.callId === "number" ? d.callId : ev.callId,
    deviceId: str(d.deviceId),
    globalCallId: str(d.globalCallId),
    alertingDevice: str(d.alertingDevice),
    callingDevice: str(d.callingDevice),
    calledDevice: str(d.calledDevice),
    lastRedirectionDevice: str(d.lastRedirectionDevice),
    localConnectionInfo: str(d.localConnectionInfo),
    cause: str(d.cause),
  };
  if (typeof d.callTypeFlags === "number" && d.callTypeFlags) p.callTypeFlags = d.callTypeFlags;
  p.time = time;
  return p;
}

/** An address-book change (mx-protocol §3.2). */
export type AbEvent =
  | { kind: "add" | "update"; contact: Contact }
  | { kind: "delete"; jid: string };

/**
 * Decodes `AbAddUserEvent` / `AbUpdateUserEvent` (contact read from the `<abentry>` child —
 * the seed version read the event root and got empty contacts) and `AbDeleteUserEvent`.
 * Returns `undefined` for other messages and for malformed ones (no entry / no JID), which
 * callers should ignore rather than apply.
 *
 * @example
 * ```ts
 * decodeAbEvent(parseXml("<AbDeleteUserEvent><userId>43884851147406145</userId></AbDeleteUserEvent>"));
 * // { kind: "delete", jid: "43884851147406145" }
 * ```
 */
export function decodeAbEvent(e: XmlElement): AbEvent | undefined {
  switch (e.name) {
    case "AbAddUserEvent":
    case "AbUpdateUserEvent": {
      const entry = child(e, "abentry");
      if (!entry) return undefined;
      const contact = parseAbEntry(entry);
      if (!contact.jid) return undefined;
      return { kind: e.name === "AbAddUserEvent" ? "add" : "update", contact };
    }
    case "AbDeleteUserEvent": {
      const jid = textAt(e, "userId") || textAt(e, "userID") || e.attrs.userId?.trim() || "";
      return jid ? { kind: "delete", jid } : undefined;
    }
    default:
      return undefined;
  }
}

/** A `presence` message (mx-protocol §2.3, §4.7): someone's presence changed. */
export interface PresenceChange {
  /** JID of the user; `"0"` means the session's own user. */
  from: string;
  /** The `status` attribute (e.g. `Available`); `undefined` when absent. */
  status?: string;
  /** The `mxStatus` attribute (e.g. `USER_ACCEPTS_IM`, flags joined by `|`), `""` when absent. */
  mxStatus: string;
  /** The `presenceNote` child (or attribute); `undefined` when absent. */
  note?: string;
}

/**
 * Decodes a `presence` message; `undefined` for other messages and for one without `from`.
 *
 * @example
 * ```ts
 * decodePresence(parseXml('<presence from="0" status="Available" mxStatus=""></presence>'));
 * // { from: "0", status: "Available", mxStatus: "", note: undefined }
 * ```
 */
export function decodePresence(e: XmlElement): PresenceChange | undefined {
  if (e.name !== "presence") return undefined;
  const from = e.attrs.from?.trim() ?? "";
  if (!/^\d{1,20}$/.test(from)) return undefined;
  const noteEl = child(e, "presenceNote");
  return {
    from,
    status: e.attrs.status?.trim(),
    mxStatus: e.attrs.mxStatus?.trim() ?? "",
    note: noteEl ? noteEl.text.trim() : e.attrs.presenceNote?.trim(),
  };
}

/** A `MailIncomingReadyEvent`: a new voicemail or recording for a monitored user. */
export interface MailIncomingEvent {
  /** The monitor that reported it. */
  monitorCrossRefId: number;
  /** The mail, in the same shape as a list item. */
  mail: Voicemail;
  /** Owner JID (attribute `ownerId`). */
  ownerId: string;
  /** `private` attribute. */
  private: boolean;
  /** `urgent` attribute. */
  urgent: boolean;
  /** Global call id of the recorded call, when given. */
  gcid: string;
  /** File extension, e.g. `wav`. */
  fileFormat: string;
}

/**
 * Decodes a `MailIncomingReadyEvent`; `undefined` for other messages.
 *
 * @example
 * ```ts
 * const ev = decodeMailEvent(parseXml(xml));
 * if (ev) console.log(ev.mail.id, ev.fileFormat);
 * ```
 */
export function decodeMailEvent(e: XmlElement): MailIncomingEvent | undefined {
  if (e.name !== "MailIncomingReadyEvent") return undefined;
  const flag = (n: string) => (e.attrs[n] ?? textAt(e, n)).trim().toLowerCase() === "true";
  return {
    monitorCrossRefId: toInt(textAt(e, "monitorCrossRefID")),
    mail: parseMailItem(e),
    ownerId: (e.attrs.ownerId ?? textAt(e, "ownerId")).trim(),
    private: flag("private"),
    urgent: flag("urgent"),
    gcid: textAt(e, "gcid"),
    fileFormat: textAt(e, "fileFormat"),
  };
}

/**
 * The `mode` of a server-initiated `<Logout mode="…"/>` (the session is over); `undefined`
 * for other messages. The mode values are undocumented, so it is returned verbatim.
 *
 * @example
 * ```ts
 * decodeLogout(parseXml('<Logout mode="1"/>')); // "1"
 * ```
 */
export function decodeLogout(e: XmlElement): string | undefined {
  return e.name === "Logout" ? (e.attrs.mode ?? "") : undefined;
}
