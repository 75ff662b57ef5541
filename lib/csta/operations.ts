/**
 * Multi-step CSTA operations on one logged-in connection: address-book paging, call-log
 * blocks, callback calls, chunked voicemail download as a stream, call control.
 * Single commands are built and parsed in `commands.ts`; this module sequences them.
 *
 * @module
 */
import type { CstaConnection } from "./connection.ts";
import * as cmd from "./commands.ts";
import type { CallLogRecord, Contact, MailChunk, MakeCallResult, Voicemail } from "./types.ts";

/** Address-book page size used by the MX (mx-protocol §3.3). */
export const AB_PAGE_SIZE = 50;
/** Call-log block size used by the MX (mx-protocol §3.5). */
export const CALLLOG_BLOCK = 21;

/**
 * Reads the whole address book, page by page.
 * @throws {TimeoutError} when a page does not arrive (the whole fetch is aborted)
 */
export async function fetchAddressBook(conn: CstaConnection): Promise<Contact[]> {
  const contacts: Contact[] = [];
  let index = 0;
  for (;;) {
    const next = conn.waitForName(["ablist"]);
    conn.send(cmd.addressBookRequest(index));
    const page = cmd.parseAbList(await next);
    contacts.push(...page.contacts);
    if ((page.index + 1) * AB_PAGE_SIZE >= page.size || page.contacts.length === 0) break;
    index = page.index + 1;
  }
  return contacts;
}

/**
 * Reads the call log from `timestamp` (Unix seconds, -1 = all). The MX sends blocks of 21
 * records, a shorter block being the last, and nothing at all for an empty log, so a timeout
 * ends the log rather than failing it. Blocks follow each other at once, so after a full
 * block the wait is short (`nextBlockTimeoutMs`): a log of exactly 21·n records then costs
 * 0.3 s extra instead of 2 s. Records are returned sorted by `recordId`.
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
      const block = cmd.parseCallLog(e);
      records.push(...block);
      return block.length < CALLLOG_BLOCK;
    },
    blockTimeoutMs,
    nextBlockTimeoutMs,
  );
  conn.send(cmd.callLogRequest(timestamp));
  await done;
  return records.sort((a, b) => a.recordId - b.recordId);
}

/** Starts a monitor and returns its `monitorCrossRefID`. */
export async function startMonitor(
  conn: CstaConnection,
  ext: string,
  opts?: { namespace?: boolean },
): Promise<number> {
  return cmd.parseMonitorStart(await conn.request(cmd.monitorStart(ext, opts)));
}

/** Stops a monitor. */
export async function stopMonitor(conn: CstaConnection, id: number): Promise<void> {
  await conn.request(cmd.monitorStop(id));
}

/** Plain MakeCall (Flex API, on the server session). */
export async function makeCall(
  conn: CstaConnection,
  from: string,
  to: string,
): Promise<MakeCallResult> {
  return cmd.parseMakeCall(await conn.request(cmd.makeCall(from, to)));
}

/**
 * Callback call (Proxy API, on the user's own session): switch the user to remote mode
 * ringing `from` first (fire-and-forget), then MakeCall from the user's extension to `to`.
 */
export async function callbackCall(
  conn: CstaConnection,
  o: { ext: string; from: string; to: string; ringDelay: number; vmDelay: number },
): Promise<MakeCallResult> {
  conn.send(
    cmd.setCallMode({
      mode: "remote",
      address: o.from,
      ringDelay: o.ringDelay,
      vmDelay: o.vmDelay,
    }),
  );
  return cmd.parseMakeCall(
    await conn.request(cmd.makeCall(o.ext, o.to, { namespace: true })),
  );
}

/** Lists the user's voicemail (the session must monitor its own extension first). */
export async function listVoicemail(conn: CstaConnection, ext: string): Promise<Voicemail[]> {
  return cmd.parseMailList(await conn.request(cmd.mailGetListIncoming(ext)));
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
 * wrong id fails early with {@link cmd.CstaError}); later chunks are requested only when the
 * consumer pulls, so a slow HTTP client slows the MX transfer instead of filling memory.
 */
export async function downloadVoicemail(
  conn: CstaConnection,
  mailId: string,
): Promise<VoicemailDownload> {
  const first: MailChunk = cmd.parseMailChunk(
    await conn.request(cmd.mailReceiveIncoming(mailId, false)),
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
      last = cmd.parseMailChunk(await conn.request(cmd.mailReceiveIncoming(mailId, true)));
      // Guard against an MX that never reaches totalChunks: stop on an empty chunk.
      finished = last.chunkNumber >= last.totalChunks || last.data.length === 0;
      if (last.data.length) controller.enqueue(last.data);
      if (finished) controller.close();
    },
    async cancel() {
      if (finished || conn.isClosed) return;
      finished = true;
      try {
        await conn.request(cmd.mailCancelReceive(mailId));
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

/** Sets the read flag and/or the note of a voicemail (read flag first, as mxproxy did). */
export async function updateVoicemail(
  conn: CstaConnection,
  mailId: string,
  o: { read?: boolean; note?: string },
): Promise<void> {
  if (o.read !== undefined) await conn.request(cmd.mailSetStatus(mailId, o.read));
  if (o.note !== undefined) await conn.request(cmd.updateVmNote(mailId, o.note));
}

/** Deletes a voicemail. */
export async function deleteVoicemail(conn: CstaConnection, mailId: string): Promise<void> {
  await conn.request(cmd.mailDeleteIncoming(mailId));
}

/** Call-control actions on one call leg. */
export type CallAction = "hold" | "retrieve" | "answer" | "clear";

/** Sends a call-control command and waits for the MX to accept it. */
export async function callControl(
  conn: CstaConnection,
  action: CallAction,
  callId: number,
  deviceId: string,
): Promise<void> {
  const payload = action === "hold"
    ? cmd.holdCall(callId, deviceId)
    : action === "retrieve"
    ? cmd.retrieveCall(callId, deviceId)
    : action === "answer"
    ? cmd.answerCall(callId, deviceId)
    : cmd.clearConnection(callId, deviceId);
  await conn.request(payload);
}

/** Blind transfer; returns the transferred call leg. */
export async function transferCall(
  conn: CstaConnection,
  callId: number,
  deviceId: string,
  to: string,
): Promise<{ callId: number; deviceId: string }> {
  return cmd.parseTransfer(await conn.request(cmd.singleStepTransferCall(callId, deviceId, to)));
}
