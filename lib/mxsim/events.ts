/**
 * XML bodies of the call events the simulated MX emits (mx-protocol §4). Each builder returns
 * the part after `<monitorCrossRefID>`, for one monitored device: the connection element
 * names the monitored device, everything else is the same for every monitor. Strings are
 * concatenated directly because benchmarks push 100k events through here.
 *
 * @module
 */
import { escapeXml as x } from "../csta/xml.ts";

/** `callTypeFlags` seen on OriginatedEvent in the seed. */
export const FLAGS_ORIGINATED = 36700160;
/** `callTypeFlags` seen on the other call events in the seed. */
export const FLAGS_CALL = 170917889;

/** What every call event needs to know about the call. */
export interface CallView {
  /** Call id. */
  id: number;
  /** Large decimal `globalCallID`. */
  globalCallId: string;
  /** `__FIRST_CALL_ID__` cad value, e.g. `63022-00-0000D-6A4`. */
  firstCallId: string;
  /** Calling device. */
  calling: string;
  /** Dialled number. */
  called: string;
  /** Device now alerting or connected. */
  callee: string;
  /** Last device that diverted the call. */
  lastRedirection?: string;
  /** Display name of the caller. */
  callingName: string;
  /** Display name of the callee. */
  calleeName: string;
}

function dev(tag: string, id: string): string {
  return `<${tag}><deviceIdentifier>${x(id)}</deviceIdentifier></${tag}>`;
}

function conn(tag: string, callId: number, deviceId: string, gcid?: string): string {
  return `<${tag}><callID>${callId}</callID><deviceID>${x(deviceId)}</deviceID>` +
    (gcid ? `<globalCallID>${gcid}</globalCallID>` : "") + `</${tag}>`;
}

function cad(c: CallView): string {
  return `<cad name="__FIRST_CALL_ID__" type="string">${x(c.firstCallId)}</cad>`;
}

function redirection(c: CallView): string {
  return c.lastRedirection ? dev("lastRedirectionDevice", c.lastRedirection) : "";
}

/**
 * OriginatedEvent body (§4.2).
 *
 * @example
 * ```ts
 * originated(call, "3095"); // <originatedConnection><callID>21</callID>…
 * ```
 */
export function originated(c: CallView, ext: string): string {
  return conn("originatedConnection", c.id, ext) + dev("callingDevice", c.calling) +
    dev("calledDevice", c.called) +
    `<localConnectionInfo>connected</localConnectionInfo><cause>normal</cause>` +
    `<callTypeFlags>${FLAGS_ORIGINATED}</callTypeFlags>`;
}

/**
 * DivertedEvent body (§4.3). `cause` is `normal` for forwarding (the only value the seed
 * shows); the engine uses the ECMA-269 names `redirected` (DeflectCall), `callPickup` and
 * `callForwardNoAnswer` (to voicemail) for the other diversions.
 *
 * @example
 * ```ts
 * diverted(call, "3095", "3095", "3099"); // <connection>…<divertingDevice>…
 * diverted(call, "3095", "3095", "*86", "callForwardNoAnswer");
 * ```
 */
export function diverted(
  c: CallView,
  ext: string,
  from: string,
  to: string,
  cause = "normal",
): string {
  return conn("connection", c.id, ext) + dev("divertingDevice", from) +
    dev("newDestination", to) + redirection(c) +
    `<cause>${x(cause)}</cause><callTypeFlags>${FLAGS_CALL}</callTypeFlags>`;
}

/**
 * DeliveredEvent body (§4.4); `alerting` for every monitor, as in the seed sample.
 *
 * @example
 * ```ts
 * `<DeliveredEvent><monitorCrossRefID>1</monitorCrossRefID>${delivered(call, "3095")}</DeliveredEvent>`;
 * ```
 */
export function delivered(c: CallView, ext: string): string {
  return conn("connection", c.id, ext, c.globalCallId) + dev("alertingDevice", c.callee) +
    `<alertingDisplayName>${x(c.calleeName)}</alertingDisplayName>` +
    dev("callingDevice", c.calling) + dev("calledDevice", c.called) + redirection(c) +
    `<callingDisplayName>${x(c.callingName)}</callingDisplayName>` +
    `<localConnectionInfo>alerting</localConnectionInfo><cause>normal</cause>` +
    `<callTypeFlags>${FLAGS_CALL}</callTypeFlags>` + cad(c);
}

/**
 * EstablishedEvent body (§4.5).
 *
 * @example
 * ```ts
 * established(call, "3099"); // <establishedConnection>…<answeringDevice>…
 * ```
 */
export function established(c: CallView, ext: string): string {
  return conn("establishedConnection", c.id, ext, c.globalCallId) +
    dev("answeringDevice", c.callee) +
    `<answeringDisplayName>${x(c.calleeName)}</answeringDisplayName>` +
    dev("callingDevice", c.calling) + dev("calledDevice", c.called) + redirection(c) +
    `<callingDisplayName>${x(c.callingName)}</callingDisplayName>` +
    `<localConnectionInfo>connected</localConnectionInfo><cause>normal</cause>` +
    `<callTypeFlags>${FLAGS_CALL}</callTypeFlags>` + cad(c);
}

/**
 * ConnectionClearedEvent body (§4.6).
 *
 * @example
 * ```ts
 * cleared(call, "3095", "3099"); // <droppedConnection>…<releasingDevice>…3099…
 * ```
 */
export function cleared(c: CallView, ext: string, releasing: string): string {
  return conn("droppedConnection", c.id, ext) + dev("releasingDevice", releasing) +
    `<cause>normal</cause>`;
}

/**
 * HeldEvent body (§4.7).
 *
 * @example
 * ```ts
 * held(call, "3095", "3095"); // …<localConnectionInfo>hold</localConnectionInfo>…
 * ```
 */
export function held(c: CallView, ext: string, holding: string): string {
  return conn("heldConnection", c.id, ext) + dev("holdingDevice", holding) +
    `<localConnectionInfo>${ext === holding ? "hold" : "connected"}</localConnectionInfo>` +
    `<cause>normal</cause><callTypeFlags>${FLAGS_CALL}</callTypeFlags>`;
}

/**
 * RetrievedEvent body (§4.7).
 *
 * @example
 * ```ts
 * retrieved(call, "3095", "3095"); // <retrievedConnection>…
 * ```
 */
export function retrieved(c: CallView, ext: string, retrieving: string): string {
  return conn("retrievedConnection", c.id, ext) + dev("retrievingDevice", retrieving) +
    `<localConnectionInfo>connected</localConnectionInfo><cause>normal</cause>` +
    `<callTypeFlags>${FLAGS_CALL}</callTypeFlags>`;
}

/**
 * TransferedEvent body (§4.7; the server's own spelling) for the old call.
 *
 * @example
 * ```ts
 * transfered(call, "3095", "3095", "3044", 22); // <primaryOldCall>…<newConnection>…
 * ```
 */
export function transfered(
  c: CallView,
  ext: string,
  transferring: string,
  to: string,
  newCallId: number,
): string {
  return conn("primaryOldCall", c.id, ext) + dev("transferringDevice", transferring) +
    dev("transferredToDevice", to) +
    `<transferredConnections><connectionListItem>${
      conn("newConnection", newCallId, ext === transferring ? to : ext)
    }</connectionListItem></transferredConnections>` +
    `<localConnectionInfo>${ext === transferring ? "null" : "connected"}</localConnectionInfo>` +
    `<cause>singleStepTransfer</cause>`;
}
