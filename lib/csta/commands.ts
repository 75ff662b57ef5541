/**
 * Typed CSTA commands and reply parsers (mx-protocol §2–§3).
 *
 * Builders return the XML payload only (no frame header, no XML declaration), escaped like
 * the Go encoders so the bytes match what the original services sent. Parsers take the
 * element tree from `xml.ts` (names are already namespace-free) and return plain data; they
 * accept pretty-printed input because every text value is trimmed.
 *
 * Pure functions only: sending, invoke ids and waiting belong to `connection.ts`.
 *
 * @example
 * ```ts
 * monitorStart("3095");
 * // <MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>
 * ```
 *
 * @module
 */
import { el, intAt, textAt, type Xml, type XmlElement } from "./xml.ts";
import type {
  CallLogRecord,
  Contact,
  LoginInfo,
  MailChunk,
  MakeCallResult,
  Voicemail,
} from "./types.ts";

/** Namespace mxproxy (seed 2) put on `MonitorStart`, `MonitorStop` and `MakeCall`. */
export const CSTA_ED4_NS = "http://www.ecma-international.org/standards/ecma-323/csta/ed4";

// ---------------------------------------------------------------------------------------
// Errors

/** The MX answered a command with `CSTAErrorCode`; the message is its character data. */
export class CstaError extends Error {
  /** @param message the error text from the MX, e.g. "URM Denied" */
  constructor(message: string) {
    super(message);
    this.name = "CstaError";
  }
}

/** The MX answered with something this client does not understand. */
export class ProtocolError extends Error {
  /** @param message what was unexpected */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** The MX refused a login (`loginFailed`, mx-protocol §2.4). */
export class LoginFailedError extends Error {
  /**
   * @param code the `Code` attribute (no list of codes is known)
   * @param apiVersion the server's `apiversion`
   * @param sn the MX serial number
   * @param message the element text (the reason)
   */
  constructor(
    readonly code: number,
    readonly apiVersion: number,
    readonly sn: string,
    message: string,
  ) {
    super(message);
    this.name = "LoginFailedError";
  }
}

/**
 * Whether a failed hashed login should be repeated once with the plain password: the rule
 * the originals intended but never executed (code 2 or 4 and API version above 2).
 */
export function shouldRetryPlain(err: LoginFailedError): boolean {
  return (err.code === 2 || err.code === 4) && err.apiVersion > 2;
}

/** Whether a reply is a `CSTAErrorCode`. */
export function isCstaError(e: XmlElement): boolean {
  return e.name === "CSTAErrorCode";
}

/**
 * The message of a `CSTAErrorCode`: the character data of its child elements, the last
 * non-empty one winning (as the Go decoders effectively did); "CSTA error" when none has any.
 *
 * @example
 * ```ts
 * parseCstaError(parseXml("<CSTAErrorCode><privateErrorCode>URM Denied</privateErrorCode></CSTAErrorCode>"));
 * // "URM Denied"
 * ```
 */
export function parseCstaError(e: XmlElement): string {
  let msg = "";
  for (const c of e.children) {
    const t = c.text.trim();
    if (t) msg = t;
  }
  return msg || "CSTA error";
}

/** Throws {@link CstaError} when `e` is a `CSTAErrorCode`, so parsers fail with its text. */
function throwIfError(e: XmlElement): void {
  if (isCstaError(e)) throw new CstaError(parseCstaError(e));
}

// ---------------------------------------------------------------------------------------
// Small helpers

/** Integer from an attribute or text; 0 when missing or malformed (Go's zero value). */
function toInt(s: string | undefined): number {
  if (!s) return 0;
  const v = Number(s.trim());
  return Number.isFinite(v) ? Math.trunc(v) : 0;
}

function toBool(s: string | undefined): boolean {
  const t = s?.trim().toLowerCase();
  return t === "true" || t === "1";
}

/** Attribute value, trying alternative spellings (the MX is inconsistent about case). */
function attr(e: XmlElement, ...names: string[]): string {
  for (const n of names) {
    const v = e.attrs[n];
    if (v !== undefined) return v.trim();
  }
  return "";
}

/** An empty string becomes `undefined`, so {@link el} omits the attribute. */
function opt(s: string | undefined): string | undefined {
  return s ? s : undefined;
}

/** `<callID>…</callID><deviceID>…</deviceID>` wrapped in `name`: every call-control operand. */
function callRef(name: string, callId: number, deviceId: string): Xml {
  return el(name, {}, el("callID", {}, callId), el("deviceID", {}, deviceId));
}

// ---------------------------------------------------------------------------------------
// Session

/** Keep-alive payload, sent with invoke id 0000 (mx-protocol §1.7). */
export const KEEPALIVE = "<keepalive />";

/** Options of {@link loginRequest}. */
export interface LoginRequestOptions {
  /** Session type. */
  type: "User" | "Server" | "Mobile";
  /** MX login. */
  userName: string;
  /** Sent as given: callers hash it first (see `password.ts`) or pass a plain retry. */
  password: string;
  /** e.g. `CRM`, `iPhone`. */
  platform?: string;
  /** Client version, e.g. `1.0`. */
  version?: string;
  /** `Mobile`, `Desktop`, `CRM`. */
  clientType?: string;
  /** `SMS` for an SMS server session. */
  serverType?: string;
  /** e.g. `Audio|Video`. */
  loginCapab?: string;
  /** e.g. `Voicemail|CallRec`. */
  mediaCapab?: string;
}

/**
 * Builds a `loginRequest`. Attributes are written in the Go encoders' order (type,
 * clientType, serverType, platform, version, loginCapab, mediaCapab); empty ones are omitted.
 *
 * @example
 * ```ts
 * loginRequest({ type: "User", userName: "user_login", password: "W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
 *   platform: "CRM", version: "1.0" });
 * // <loginRequest type="User" platform="CRM" version="1.0"><userName>user_login</userName>
 * //   <pwd>W6ph5Mm5Pz8GgiULbPgzG37mj9g=&#xA;</pwd></loginRequest>   (one line)
 * ```
 */
export function loginRequest(o: LoginRequestOptions): string {
  return el(
    "loginRequest",
    {
      type: o.type,
      clientType: opt(o.clientType),
      serverType: opt(o.serverType),
      platform: opt(o.platform),
      version: opt(o.version),
      loginCapab: opt(o.loginCapab),
      mediaCapab: opt(o.mediaCapab),
    },
    el("userName", {}, o.userName),
    el("pwd", {}, o.password),
  ).xml;
}

/**
 * Reads the login reply.
 * @throws {LoginFailedError} for `loginFailed`
 * @throws {ProtocolError} for any other element ("unknown login response <name>")
 *
 * @example
 * ```ts
 * parseLoginReply(parseXml('<loginResponce Code="0" sn="631HC" apiversion="11" ext="273" userId="43892780322813134">Login OK</loginResponce>'));
 * // { sn: "631HC", ext: "273", jid: "43892780322813134", apiVersion: 11 }
 * ```
 */
export function parseLoginReply(e: XmlElement): LoginInfo {
  if (e.name === "loginFailed") {
    throw new LoginFailedError(
      toInt(attr(e, "Code", "code")),
      toInt(attr(e, "apiversion", "apiVersion")),
      attr(e, "sn"),
      e.text.trim() || "login failed",
    );
  }
  // "loginResponce" is the server's own spelling; the correct one is accepted just in case.
  if (e.name !== "loginResponce" && e.name !== "loginResponse") {
    throw new ProtocolError(`unknown login response ${e.name}`);
  }
  const jid = attr(e, "userId", "userID");
  const info: LoginInfo = {
    sn: attr(e, "sn"),
    ext: attr(e, "ext"),
    jid: jid === "0" ? "" : jid,
    apiVersion: toInt(attr(e, "apiversion", "apiVersion")),
  };
  if (e.attrs.softPhonePwd) info.softPhonePwd = e.attrs.softPhonePwd;
  if (e.attrs.mxCapab) info.mxCapab = e.attrs.mxCapab;
  return info;
}

/** `<logout/>`: sent before closing a session; no reply. */
export function logout(): string {
  return "<logout/>";
}

// ---------------------------------------------------------------------------------------
// Monitors

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
 * @throws {CstaError} for `CSTAErrorCode`
 * @throws {ProtocolError} when the reply has no monitor id
 */
export function parseMonitorStart(e: XmlElement): number {
  throwIfError(e);
  const id = textAt(e, "monitorCrossRefID");
  if (id === "") throw new ProtocolError(`unknown monitor start response ${e.name}`);
  return toInt(id);
}

/** Stops a monitor by its `monitorCrossRefID`. */
export function monitorStop(id: number, opts: { namespace?: boolean } = {}): string {
  return el(
    "MonitorStop",
    { xmlns: opts.namespace ? CSTA_ED4_NS : undefined },
    el("monitorCrossRefID", {}, id),
  ).xml;
}

/** `<MonitorStartAb/>`: subscribe to address-book change events (§3.2). */
export function monitorStartAb(): string {
  return "<MonitorStartAb/>";
}

// ---------------------------------------------------------------------------------------
// Address book

/**
 * Requests one 50-entry address-book page; answered by an `ablist` message.
 *
 * @example
 * ```ts
 * addressBookRequest(0); // <iq type="get" id="addressbook" index="0"></iq>
 * ```
 */
export function addressBookRequest(index: number): string {
  return el("iq", { type: "get", id: "addressbook", index }).xml;
}

/**
 * Reads one `ablist` page: `size` is the total number of contacts, `index` the page number.
 * @throws {CstaError} for `CSTAErrorCode`
 */
export function parseAbList(e: XmlElement): { size: number; index: number; contacts: Contact[] } {
  throwIfError(e);
  const contacts: Contact[] = [];
  for (const c of e.children) if (c.name === "abentry") contacts.push(parseAbEntry(c));
  return { size: toInt(e.attrs.size), index: toInt(e.attrs.index), contacts };
}

/**
 * Reads one `<abentry>` (from `ablist` or an `Ab*UserEvent`). `businessPhone` is the
 * extension; a `homeSystem` of 0 means none and becomes `""`.
 */
export function parseAbEntry(e: XmlElement): Contact {
  const ct: Contact = {
    jid: attr(e, "jid"),
    presence: attr(e, "presence"),
    presenceNote: attr(e, "presenceNote"),
    firstName: "",
    lastName: "",
    ext: "",
    homePhone: "",
    cellPhone: "",
    email: "",
    homeSystem: "",
    did: "",
    exchangeId: "",
  };
  // One pass over the children instead of a lookup per field.
  for (const c of e.children) {
    const t = c.text.trim();
    switch (c.name) {
      case "firstName":
        ct.firstName = t;
        break;
      case "lastName":
        ct.lastName = t;
        break;
      case "businessPhone":
        ct.ext = t;
        break;
      case "homePhone":
        ct.homePhone = t;
        break;
      case "cellPhone":
        ct.cellPhone = t;
        break;
      case "email":
        ct.email = t;
        break;
      case "homeSystem":
        ct.homeSystem = t === "0" ? "" : t;
        break;
      case "did":
        ct.did = t;
        break;
      case "exchangeId":
        ct.exchangeId = t;
        break;
      case "presenceNote":
        if (!ct.presenceNote) ct.presenceNote = t;
        break;
    }
  }
  return ct;
}

// ---------------------------------------------------------------------------------------
// Calls

/**
 * MakeCall from a device (extension) to a number. `namespace` adds the ed4 `xmlns`
 * (mxproxy's callback call).
 *
 * @example
 * ```ts
 * makeCall("3095", "+79031744445");
 * // <MakeCall><callingDevice typeOfNumber="deviceID">3095</callingDevice>
 * //   <calledDirectoryNumber>+79031744445</calledDirectoryNumber></MakeCall>   (one line)
 * ```
 */
export function makeCall(from: string, to: string, opts: { namespace?: boolean } = {}): string {
  return el(
    "MakeCall",
    { xmlns: opts.namespace ? CSTA_ED4_NS : undefined },
    el("callingDevice", { typeOfNumber: "deviceID" }, from),
    el("calledDirectoryNumber", {}, to),
  ).xml;
}

/**
 * Reads a `MakeCallResponse`.
 * @throws {CstaError} for `CSTAErrorCode`
 * @throws {ProtocolError} for another element ("unknown makecall response <name>")
 */
export function parseMakeCall(e: XmlElement): MakeCallResult {
  throwIfError(e);
  if (e.name !== "MakeCallResponse") {
    throw new ProtocolError(`unknown makecall response ${e.name}`);
  }
  // calledDevice is plain text in the recorded sample; accept the wrapped ECMA form too.
  const called = textAt(e, "calledDevice", "deviceIdentifier") || textAt(e, "calledDevice");
  return {
    callId: intAt(e, "callingDevice", "callID"),
    deviceId: textAt(e, "callingDevice", "deviceID"),
    called,
  };
}

/** Options of {@link setCallMode}. */
export interface CallModeOptions {
  /** `remote`: the MX first rings `address`, then the called party. */
  mode: "remote" | "local";
  /** Callback number; always written for remote mode (even empty), never for local. */
  address?: string;
  /** Ring delay (seconds, presumed); omitted when undefined. */
  ringDelay?: number;
  /** Voicemail delay (seconds, presumed); omitted when undefined. */
  vmDelay?: number;
}

/**
 * Switches the session user's call mode (fire-and-forget, the MX does not reply).
 *
 * @example
 * ```ts
 * setCallMode({ mode: "remote", address: "79031744445", ringDelay: 2, vmDelay: 28 });
 * // <iq type="set" id="mode" mode="remote" ringdelay="2" vmdelay="28"><address>79031744445</address></iq>
 * ```
 */
export function setCallMode(o: CallModeOptions): string {
  return el(
    "iq",
    { type: "set", id: "mode", mode: o.mode, ringdelay: o.ringDelay, vmdelay: o.vmDelay },
    o.mode === "remote" ? el("address", {}, o.address ?? "") : undefined,
  ).xml;
}

// ---------------------------------------------------------------------------------------
// Call log

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
 * @throws {CstaError} for `CSTAErrorCode`
 */
export function parseCallLog(e: XmlElement): CallLogRecord[] {
  throwIfError(e);
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

// ---------------------------------------------------------------------------------------
// Voicemail (the session must first MonitorStart its own extension)

/**
 * Lists incoming voicemail. `userID` carries the extension, as in every mxproxy version.
 *
 * @example
 * ```ts
 * mailGetListIncoming("3095"); // <MailGetListIncoming><userID>3095</userID></MailGetListIncoming>
 * ```
 */
export function mailGetListIncoming(ext: string): string {
  return el("MailGetListIncoming", {}, el("userID", {}, ext)).xml;
}

/**
 * Reads the voicemail list reply (root name unrecorded, so any root is accepted).
 * @throws {CstaError} for `CSTAErrorCode`
 */
export function parseMailList(e: XmlElement): Voicemail[] {
  throwIfError(e);
  const out: Voicemail[] = [];
  for (const c of e.children) if (c.name === "mail") out.push(parseMailItem(c));
  return out;
}

/**
 * Reads one `<mail>` item or a `MailIncomingReadyEvent`. Each field is taken from a child
 * element or, failing that, an attribute of the same name: the reconstructed examples put
 * `from`…`ownerType` in attributes and the rest in children, but that split is unverified.
 */
export function parseMailItem(e: XmlElement): Voicemail {
  // Null prototype: a child named e.g. "constructor" must not hit Object.prototype.
  const f: Record<string, string> = Object.create(null);
  for (const c of e.children) if (!(c.name in f)) f[c.name] = c.text.trim();
  const get = (n: string) => f[n] ?? e.attrs[n]?.trim() ?? "";
  const v: Voicemail = {
    id: get("mailId"),
    from: get("from"),
    fromName: get("fromName"),
    callerName: get("callerName"),
    to: get("to"),
    ownerType: get("ownerType"),
    received: toInt(get("received")),
    // An early decoder read "Duration"; accept both.
    duration: toInt(get("duration") || get("Duration")),
    read: toBool(get("read")),
    note: get("note"),
  };
  const mediaType = get("mediaType");
  if (mediaType) v.mediaType = mediaType;
  return v;
}

/**
 * Requests the first (`next` false) or the next chunk of a voicemail; the id goes into
 * `faxSessionID`.
 *
 * @example
 * ```ts
 * mailReceiveIncoming("80", true);
 * // <MailReceiveIncoming><faxSessionID>80</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>
 * ```
 */
export function mailReceiveIncoming(mailId: string, next: boolean): string {
  return el(
    "MailReceiveIncoming",
    {},
    el("faxSessionID", {}, mailId),
    next ? el("nextChunk") : undefined,
  ).xml;
}

/**
 * Reads one voicemail chunk. `mediaContent` is standard base64; line breaks and other
 * whitespace inside it are tolerated.
 * @throws {CstaError} for `CSTAErrorCode`
 * @throws {ProtocolError} when `mediaContent` is not base64
 */
export function parseMailChunk(e: XmlElement): MailChunk {
  throwIfError(e);
  let fileFormat = "", documentName = "", content = "";
  let mailId = attr(e, "mailId");
  let chunkNumber = e.attrs.chunkNumber;
  let totalChunks = e.attrs.totalChunks;
  for (const c of e.children) {
    switch (c.name) {
      case "fileFormat":
        fileFormat = c.text.trim();
        break;
      case "documentName":
        documentName = c.text.trim();
        break;
      case "mediaContent":
        content = c.text;
        break;
      // Tolerate the header fields as children as well.
      case "mailId":
        mailId ||= c.text.trim();
        break;
      case "chunkNumber":
        chunkNumber ??= c.text;
        break;
      case "totalChunks":
        totalChunks ??= c.text;
        break;
    }
  }
  return {
    mailId,
    chunkNumber: toInt(chunkNumber),
    totalChunks: toInt(totalChunks),
    fileFormat,
    documentName,
    data: decodeBase64(content),
  };
}

/**
 * Decodes base64 in one native pass. `Uint8Array.fromBase64` (V8, Deno 2.x) skips ASCII
 * whitespace itself, so wrapped lines need no pre-processing copy.
 */
function decodeBase64(s: string): Uint8Array {
  try {
    return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(s);
  } catch {
    throw new ProtocolError("bad base64 in mediaContent");
  }
}

/** Aborts a download; note `mailId` here, not `faxSessionID`. */
export function mailCancelReceive(mailId: string): string {
  return el("MailCancelReceive", {}, el("mailId", {}, mailId)).xml;
}

/** Sets the read flag: `<MailSetStatus><mailId>80</mailId><read>true</read></MailSetStatus>`. */
export function mailSetStatus(mailId: string, read: boolean): string {
  return el("MailSetStatus", {}, el("mailId", {}, mailId), el("read", {}, read)).xml;
}

/** Sets the note: `<UpdateVmNote><mailId>80</mailId><note>…</note></UpdateVmNote>`. */
export function updateVmNote(mailId: string, note: string): string {
  return el("UpdateVmNote", {}, el("mailId", {}, mailId), el("note", {}, note)).xml;
}

/** Deletes a voicemail: `<MailDeleteIncoming><mailId>80</mailId></MailDeleteIncoming>`. */
export function mailDeleteIncoming(mailId: string): string {
  return el("MailDeleteIncoming", {}, el("mailId", {}, mailId)).xml;
}

// ---------------------------------------------------------------------------------------
// Call control (mx-protocol §3.11)

/**
 * Hangs up a call leg.
 *
 * @example
 * ```ts
 * clearConnection(43, "3095");
 * // <ClearConnection><connectionToBeCleared><callID>43</callID><deviceID>3095</deviceID>
 * //   </connectionToBeCleared></ClearConnection>   (one line)
 * ```
 */
export function clearConnection(callId: number, deviceId: string): string {
  return el("ClearConnection", {}, callRef("connectionToBeCleared", callId, deviceId)).xml;
}

/** Puts a call on hold (completion: `HeldEvent`). */
export function holdCall(callId: number, deviceId: string): string {
  return el("HoldCall", {}, callRef("callToBeHeld", callId, deviceId)).xml;
}

/** Takes a call off hold (completion: `RetrievedEvent`). */
export function retrieveCall(callId: number, deviceId: string): string {
  return el("RetrieveCall", {}, callRef("callToBeRetrieved", callId, deviceId)).xml;
}

/** Answers a ringing call. */
export function answerCall(callId: number, deviceId: string): string {
  return el("AnswerCall", {}, callRef("callToBeAnswered", callId, deviceId)).xml;
}

/** Blind transfer of the active call to `to`. */
export function singleStepTransferCall(callId: number, deviceId: string, to: string): string {
  return el(
    "SingleStepTransferCall",
    {},
    callRef("activeCall", callId, deviceId),
    el("transferredTo", {}, to),
  ).xml;
}

/**
 * Reads the `transferredCall` of a `SingleStepTransferCallResponse`.
 * @throws {CstaError} for `CSTAErrorCode`
 */
export function parseTransfer(e: XmlElement): { callId: number; deviceId: string } {
  throwIfError(e);
  return {
    callId: intAt(e, "transferredCall", "callID"),
    deviceId: textAt(e, "transferredCall", "deviceID"),
  };
}

/** Deflects (diverts) a ringing call to `to`. */
export function deflectCall(callId: number, deviceId: string, to: string): string {
  return el(
    "DeflectCall",
    {},
    callRef("callToBeDiverted", callId, deviceId),
    el("newDestination", {}, to),
  ).xml;
}
