/**
 * Calls (mx-protocol §3.4, §3.11): making a call (plain on the server session, or the
 * Proxy API's callback call on a user session), call control on one leg (hold, retrieve,
 * answer, hang up), blind and consultation transfer, and deflection.
 *
 * @example
 * ```ts
 * const call = await placeCall(conn, "3095", "+79031744445");
 * await callControl(conn, "hold", call.callId, call.deviceId);
 * ```
 *
 * @module
 */
import { el, intAt, textAt, type Xml, type XmlElement } from "../xml.ts";
import { ProtocolError } from "../errors.ts";
import type { CstaConnection } from "../connection.ts";
import type { MakeCallResult } from "../types.ts";
import { CSTA_ED4_NS } from "./_util.ts";
import { throwIfErrorReply } from "./error_reply.ts";

/** `<callID>…</callID><deviceID>…</deviceID>` wrapped in `name`: every call-control operand. */
function callRef(name: string, callId: number, deviceId: string): Xml {
  return el(name, {}, el("callID", {}, callId), el("deviceID", {}, deviceId));
}

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
 * @throws {RefusedError} for `CSTAErrorCode`
 * @throws {ProtocolError} for another element ("unknown makecall response <name>")
 *
 * @example
 * ```ts
 * parseMakeCall(reply); // { callId: 38, deviceId: "3095", called: "3099" }
 * ```
 */
export function parseMakeCall(e: XmlElement): MakeCallResult {
  throwIfErrorReply(e);
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

/**
 * Puts a call on hold (completion: `HeldEvent`).
 *
 * @example
 * ```ts
 * holdCall(43, "3095"); // <HoldCall><callToBeHeld><callID>43</callID>…</callToBeHeld></HoldCall>
 * ```
 */
export function holdCall(callId: number, deviceId: string): string {
  return el("HoldCall", {}, callRef("callToBeHeld", callId, deviceId)).xml;
}

/**
 * Takes a call off hold (completion: `RetrievedEvent`).
 *
 * @example
 * ```ts
 * retrieveCall(43, "3095"); // <RetrieveCall><callToBeRetrieved>…</callToBeRetrieved></RetrieveCall>
 * ```
 */
export function retrieveCall(callId: number, deviceId: string): string {
  return el("RetrieveCall", {}, callRef("callToBeRetrieved", callId, deviceId)).xml;
}

/**
 * Answers a ringing call.
 *
 * @example
 * ```ts
 * answerCall(43, "3095"); // <AnswerCall><callToBeAnswered>…</callToBeAnswered></AnswerCall>
 * ```
 */
export function answerCall(callId: number, deviceId: string): string {
  return el("AnswerCall", {}, callRef("callToBeAnswered", callId, deviceId)).xml;
}

/**
 * Blind transfer of the active call to `to`.
 *
 * @example
 * ```ts
 * singleStepTransferCall(43, "3095", "3099");
 * // <SingleStepTransferCall><activeCall>…</activeCall><transferredTo>3099</transferredTo></SingleStepTransferCall>
 * ```
 */
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
 * @throws {RefusedError} for `CSTAErrorCode`
 *
 * @example
 * ```ts
 * parseTransfer(reply); // { callId: 44, deviceId: "3099" }
 * ```
 */
export function parseTransfer(e: XmlElement): { callId: number; deviceId: string } {
  throwIfErrorReply(e);
  return {
    callId: intAt(e, "transferredCall", "callID"),
    deviceId: textAt(e, "transferredCall", "deviceID"),
  };
}

/**
 * Consultation transfer (§3.11): connects the other party of the held call with the other
 * party of the active (consultation) call; `deviceId` leaves both.
 *
 * @example
 * ```ts
 * transferCall(38, 41, "3095");
 * // <TransferCall><heldCall><callID>38</callID><deviceID>3095</deviceID></heldCall>
 * //   <activeCall><callID>41</callID><deviceID>3095</deviceID></activeCall></TransferCall>
 * ```
 */
export function transferCall(heldCallId: number, activeCallId: number, deviceId: string): string {
  return el(
    "TransferCall",
    {},
    callRef("heldCall", heldCallId, deviceId),
    callRef("activeCall", activeCallId, deviceId),
  ).xml;
}

/**
 * Deflects (diverts) a ringing call to `to`.
 *
 * @example
 * ```ts
 * deflectCall(43, "3095", "3099");
 * // <DeflectCall><callToBeDiverted>…</callToBeDiverted><newDestination>3099</newDestination></DeflectCall>
 * ```
 */
export function deflectCall(callId: number, deviceId: string, to: string): string {
  return el(
    "DeflectCall",
    {},
    callRef("callToBeDiverted", callId, deviceId),
    el("newDestination", {}, to),
  ).xml;
}

/**
 * Plain MakeCall (Flex API, on the server session).
 * @throws {RefusedError} when the MX refuses the call
 *
 * @example
 * ```ts
 * const { callId, deviceId } = await placeCall(conn, "3095", "3099");
 * ```
 */
export async function placeCall(
  conn: CstaConnection,
  from: string,
  to: string,
): Promise<MakeCallResult> {
  return parseMakeCall(await conn.request(makeCall(from, to)));
}

/**
 * Callback call (Proxy API, on the user's own session): switch the user to remote mode
 * ringing `from` first (fire-and-forget), then MakeCall from the user's extension to `to`.
 *
 * @example
 * ```ts
 * await callbackCall(conn, { ext: "3095", from: "79031744445", to: "3099", ringDelay: 1, vmDelay: 30 });
 * ```
 */
export async function callbackCall(
  conn: CstaConnection,
  o: { ext: string; from: string; to: string; ringDelay: number; vmDelay: number },
): Promise<MakeCallResult> {
  conn.send(
    setCallMode({
      mode: "remote",
      address: o.from,
      ringDelay: o.ringDelay,
      vmDelay: o.vmDelay,
    }),
  );
  return parseMakeCall(await conn.request(makeCall(o.ext, o.to, { namespace: true })));
}

/** Call-control actions on one call leg. */
export type CallAction = "hold" | "retrieve" | "answer" | "clear";

/**
 * Sends a call-control command and waits for the MX to accept it (completion comes as an
 * event: `HeldEvent`, `RetrievedEvent`, `EstablishedEvent`, `ConnectionClearedEvent`).
 * @throws {RefusedError} when the MX refuses (e.g. an unknown call)
 *
 * @example
 * ```ts
 * await callControl(conn, "hold", 38, "3095");
 * ```
 */
export async function callControl(
  conn: CstaConnection,
  action: CallAction,
  callId: number,
  deviceId: string,
): Promise<void> {
  const payload = action === "hold"
    ? holdCall(callId, deviceId)
    : action === "retrieve"
    ? retrieveCall(callId, deviceId)
    : action === "answer"
    ? answerCall(callId, deviceId)
    : clearConnection(callId, deviceId);
  await conn.request(payload);
}

/**
 * Blind transfer; returns the transferred call leg.
 *
 * @example
 * ```ts
 * const leg = await singleStepTransfer(conn, 38, "3095", "3099");
 * ```
 */
export async function singleStepTransfer(
  conn: CstaConnection,
  callId: number,
  deviceId: string,
  to: string,
): Promise<{ callId: number; deviceId: string }> {
  return parseTransfer(await conn.request(singleStepTransferCall(callId, deviceId, to)));
}

/**
 * Completes a consultation transfer (`TransferCall`): the held call's other party is
 * connected with the active call's; the outcome arrives as `TransferredEvent`s.
 * @throws {RefusedError} when the MX refuses (e.g. a call that is not held or not the user's)
 *
 * @example
 * ```ts
 * await consultationTransfer(conn, 38, 41, "3095");
 * ```
 */
export async function consultationTransfer(
  conn: CstaConnection,
  heldCallId: number,
  activeCallId: number,
  deviceId: string,
): Promise<void> {
  await conn.request(transferCall(heldCallId, activeCallId, deviceId));
}
