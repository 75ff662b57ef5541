/**
 * Voicemail (mx-protocol §3.6–§3.9, §7.10): list, chunked download as a stream, read flag,
 * note, delete. The session must first `MonitorStart` its own extension (see `monitors.ts`);
 * `lib/mx`'s `UserSession` does that before any of these.
 *
 * @example
 * ```ts
 * await startMonitor(conn, "3095");
 * const list = await listVoicemail(conn, "3095");
 * const dl = await downloadVoicemail(conn, list[0].id);
 * ```
 *
 * @module
 */
import { el, type XmlElement } from "../xml.ts";
import { ProtocolError } from "../errors.ts";
import type { CstaConnection } from "../connection.ts";
import type { MailChunk, Voicemail } from "../types.ts";
import { attr, toBool, toInt } from "./_util.ts";
import { throwIfErrorReply } from "./error_reply.ts";

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
 * @throws {RefusedError} for `CSTAErrorCode`
 *
 * @example
 * ```ts
 * parseMailList(parseXml("<MailGetListIncomingResponse><mail><mailId>80</mailId></mail></MailGetListIncomingResponse>"))[0].id; // "80"
 * ```
 */
export function parseMailList(e: XmlElement): Voicemail[] {
  throwIfErrorReply(e);
  const out: Voicemail[] = [];
  for (const c of e.children) if (c.name === "mail") out.push(parseMailItem(c));
  return out;
}

/**
 * Reads one `<mail>` item or a `MailIncomingReadyEvent`. Each field is taken from a child
 * element or, failing that, an attribute of the same name: the reconstructed examples put
 * `from`…`ownerType` in attributes and the rest in children, but that split is unverified.
 *
 * @example
 * ```ts
 * parseMailItem(parseXml('<mail from="3044"><mailId>80</mailId></mail>')); // { id: "80", from: "3044", … }
 * ```
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
 * @throws {RefusedError} for `CSTAErrorCode`
 * @throws {ProtocolError} when `mediaContent` is not base64
 *
 * @example
 * ```ts
 * parseMailChunk(reply); // { mailId: "80", chunkNumber: 1, totalChunks: 3, fileFormat: "wav", documentName, data }
 * ```
 */
export function parseMailChunk(e: XmlElement): MailChunk {
  throwIfErrorReply(e);
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

/**
 * Aborts a download; note `mailId` here, not `faxSessionID`.
 *
 * @example
 * ```ts
 * mailCancelReceive("80"); // <MailCancelReceive><mailId>80</mailId></MailCancelReceive>
 * ```
 */
export function mailCancelReceive(mailId: string): string {
  return el("MailCancelReceive", {}, el("mailId", {}, mailId)).xml;
}

/**
 * Sets the read flag.
 *
 * @example
 * ```ts
 * mailSetStatus("80", true); // <MailSetStatus><mailId>80</mailId><read>true</read></MailSetStatus>
 * ```
 */
export function mailSetStatus(mailId: string, read: boolean): string {
  return el("MailSetStatus", {}, el("mailId", {}, mailId), el("read", {}, read)).xml;
}

/**
 * Sets the note.
 *
 * @example
 * ```ts
 * updateVmNote("80", "call back"); // <UpdateVmNote><mailId>80</mailId><note>call back</note></UpdateVmNote>
 * ```
 */
export function updateVmNote(mailId: string, note: string): string {
  return el("UpdateVmNote", {}, el("mailId", {}, mailId), el("note", {}, note)).xml;
}

/**
 * Deletes a voicemail.
 *
 * @example
 * ```ts
 * mailDeleteIncoming("80"); // <MailDeleteIncoming><mailId>80</mailId></MailDeleteIncoming>
 * ```
 */
export function mailDeleteIncoming(mailId: string): string {
  return el("MailDeleteIncoming", {}, el("mailId", {}, mailId)).xml;
}

/**
 * Lists the user's voicemail (the session must monitor its own extension first).
 *
 * @example
 * ```ts
 * const list = await listVoicemail(conn, "3095");
 * ```
 */
export async function listVoicemail(conn: CstaConnection, ext: string): Promise<Voicemail[]> {
  return parseMailList(await conn.request(mailGetListIncoming(ext)));
}

/** A voicemail being downloaded. */
export interface VoicemailDownload {
  fileFormat: string;
  documentName: string;
  totalChunks: number;
  /** The audio bytes, chunk by chunk as the MX sends them; cancelling sends `MailCancelReceive`. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * Starts a chunked voicemail download. The first chunk is fetched before returning (so a
 * wrong id fails early with {@link RefusedError}); later chunks are requested only when the
 * consumer pulls, so a slow HTTP client slows the MX transfer instead of filling memory.
 *
 * @example
 * ```ts
 * const dl = await downloadVoicemail(conn, "80");
 * for await (const chunk of dl.stream) file.write(chunk);
 * ```
 */
export async function downloadVoicemail(
  conn: CstaConnection,
  mailId: string,
): Promise<VoicemailDownload> {
  const first: MailChunk = parseMailChunk(
    await conn.request(mailReceiveIncoming(mailId, false)),
  );
  let last = first;
  let firstPending = true;
  let finished = first.chunkNumber >= first.totalChunks;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (firstPending) {
        firstPending = false;
        if (first.data.length) controller.enqueue(first.data);
        if (finished) controller.close();
        return;
      }
      if (finished) {
        controller.close();
        return;
      }
      last = parseMailChunk(await conn.request(mailReceiveIncoming(mailId, true)));
      // Guard against an MX that never reaches totalChunks: stop on an empty chunk.
      finished = last.chunkNumber >= last.totalChunks || last.data.length === 0;
      if (last.data.length) controller.enqueue(last.data);
      if (finished) controller.close();
    },
    async cancel() {
      if (finished || conn.isClosed) return;
      finished = true;
      try {
        await conn.request(mailCancelReceive(mailId));
      } catch {
        // The client is gone either way; the session is closed right after.
      }
    },
  }, { highWaterMark: 0 });
  return {
    fileFormat: first.fileFormat,
    documentName: first.documentName,
    totalChunks: first.totalChunks,
    stream,
  };
}

/**
 * Sets the read flag and/or the note of a voicemail (read flag first, as mxproxy did).
 *
 * @example
 * ```ts
 * await updateVoicemail(conn, "80", { read: true, note: "call back" });
 * ```
 */
export async function updateVoicemail(
  conn: CstaConnection,
  mailId: string,
  o: { read?: boolean; note?: string },
): Promise<void> {
  if (o.read !== undefined) await conn.request(mailSetStatus(mailId, o.read));
  if (o.note !== undefined) await conn.request(updateVmNote(mailId, o.note));
}

/**
 * Deletes a voicemail.
 * @throws {RefusedError} when the MX refuses (absent or foreign message)
 *
 * @example
 * ```ts
 * await deleteVoicemail(conn, "80");
 * ```
 */
export async function deleteVoicemail(conn: CstaConnection, mailId: string): Promise<void> {
  await conn.request(mailDeleteIncoming(mailId));
}
