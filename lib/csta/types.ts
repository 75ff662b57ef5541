/**
 * Data types shared by the CSTA command parsers (`commands/`), the event decoders
 * (`events.ts`) and their users. They are wire-neutral: the HTTP layer decides how each is
 * rendered as JSON (field names, omitempty rules), so nothing here is pre-formatted.
 *
 * JIDs, `homeSystem` and global call ids are unsigned 64-bit decimals on the wire, beyond
 * JavaScript's safe integers, so they are always kept as strings (mx-protocol §7.16).
 *
 * @module
 */

/**
 * What a successful `loginResponce` tells about the session (mx-protocol §2.3).
 *
 * @example
 * ```ts
 * const info: LoginInfo = { sn: "63022", ext: "3095", jid: "43884851147406145", apiVersion: 11 };
 * ```
 */
export interface LoginInfo {
  /** MX serial number; alphanumeric in general ("631HC"). */
  sn: string;
  /** The user's extension; `""` for a Server login. */
  ext: string;
  /** The user's JID as a decimal string; `""` for a Server login (the MX sends 0 or nothing). */
  jid: string;
  /** Server API version (`apiversion`), e.g. 11; 0 when absent. */
  apiVersion: number;
  /** SIP password of the user's soft phone, when the MX sends one. */
  softPhonePwd?: string;
  /** Server capability string, when the MX sends one. */
  mxCapab?: string;
  /** The MX accepted only the plain password (the retry of mx-protocol §2.4), not its hash. */
  plainPassword?: boolean;
}

/** One address-book entry (`<abentry>`, mx-protocol §3.3). Missing fields are `""`. */
export interface Contact {
  /** JID, decimal string. */
  jid: string;
  /** Presence status snapshot, e.g. `Available`, `LoggedOut`. */
  presence: string;
  /** Presence note. */
  presenceNote: string;
  /** First name. */
  firstName: string;
  /** Last name. */
  lastName: string;
  /** Extension (the wire's `businessPhone`). */
  ext: string;
  /** Home phone. */
  homePhone: string;
  /** Cell phone. */
  cellPhone: string;
  /** E-mail. */
  email: string;
  /** JID of the user's home MX; `""` when the MX sends 0 or nothing. */
  homeSystem: string;
  /** Direct inward dialling number. */
  did: string;
  /** Exchange id. */
  exchangeId: string;
}

/** A `MakeCallResponse` (mx-protocol §3.4). */
export interface MakeCallResult {
  /** Call id of the calling leg. */
  callId: number;
  /** The calling device (extension). */
  deviceId: string;
  /** The called device as the MX reports it. */
  called: string;
}

/**
 * One call-log record (`<callinfo>`, mx-protocol §3.5 / §6.3). Numbers missing on the wire
 * are 0, strings `""`; timestamps are Unix seconds.
 */
export interface CallLogRecord {
  /** Missed call flag (attribute `missed`). */
  missed: boolean;
  /** `incoming` / `outgoing` (attribute `direction`). */
  direction: string;
  /** `record_id`. */
  recordId: number;
  /** Global call id string, e.g. `63022-00-0000D-177`. */
  gcid: string;
  /** `connectTimestamp`, Unix seconds; 0 when never connected. */
  connect: number;
  /** `disconnectTimestamp`, Unix seconds. */
  disconnect: number;
  /** Calling party number. */
  callingPartyNo: string;
  /** Originally called party number. */
  originalCalledPartyNo: string;
  /** Other party's first name. */
  firstName: string;
  /** Other party's last name. */
  lastName: string;
  /** Other party's extension (`extension`). */
  ext: string;
  /** Service name (hunt group, auto attendant…). */
  serviceName: string;
  /** Service extension. */
  serviceExtension: string;
  /** Undocumented call type code. */
  callType: number;
  /** Undocumented leg type code. */
  legType: number;
  /** Undocumented own leg type code. */
  selfLegType: number;
  /** Undocumented monitor type code. */
  monitorType: number;
}

/** One voicemail (`<mail>`, mx-protocol §3.6). */
export interface Voicemail {
  /** Mail id (`mailId`), kept as a string as mxproxy did. */
  id: string;
  /** Sender number. */
  from: string;
  /** Sender name. */
  fromName: string;
  /** Caller name. */
  callerName: string;
  /** Recipient. */
  to: string;
  /** Owner type, e.g. `user`. */
  ownerType: string;
  /** Unix seconds. */
  received: number;
  /** Length in seconds. */
  duration: number;
  /** Read flag. */
  read: boolean;
  /** The user's note. */
  note: string;
  /** `VoiceMail`, `Recording`, `Fax`, `Undefined` — only when the MX sends it. */
  mediaType?: string;
}

/** One chunk of a voicemail download (mx-protocol §3.7). */
export interface MailChunk {
  /** Mail id the chunk belongs to. */
  mailId: string;
  /** 1-based chunk number. */
  chunkNumber: number;
  /** Total number of chunks. */
  totalChunks: number;
  /** File extension without the dot, e.g. `wav`. */
  fileFormat: string;
  /** Suggested file name. */
  documentName: string;
  /** The decoded bytes of this chunk. */
  data: Uint8Array;
}
