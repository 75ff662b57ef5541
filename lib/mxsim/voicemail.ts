/**
 * Voicemail boxes of the simulated MX and their protocol (mx-protocol §3.6–§3.9): the
 * `MailGetListIncomingResponse` list, base64 chunks for `MailReceiveIncoming`, cancelled
 * downloads, read flags, notes and deletion.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { child, escapeXml, textAt, type XmlElement } from "../csta/xml.ts";
import type { SimSession } from "./session.ts";
import { pushBounded } from "./received.ts";

/** Largest raw chunk whose base64 and envelope fit a 65 535-byte frame. */
export const MAX_CHUNK = 47_000;
/** Largest payload the simulator sends (frame minus header). */
const MAX_PAYLOAD = 65_535 - 8;

/** A `MailCancelReceive` the simulator saw. */
export interface CancelRecord {
  /** Session number. */
  session: number;
  /** Mailbox extension. */
  ext: string;
  /** Mail id. */
  mailId: string;
  /** Chunks sent before the cancel. */
  chunksSent: number;
}

/** What {@link VoicemailStore.add} accepts. */
export interface NewVoicemail {
  /** Caller number. */
  from: string;
  /** Caller's display name. */
  fromName?: string;
  /** Caller name as announced. */
  callerName?: string;
  /** Audio bytes. */
  content: Uint8Array;
  /** File format, default `wav`. */
  fileFormat?: string;
  /** File name, default `message<id>.<format>`. */
  documentName?: string;
  /** Unix seconds, default now. */
  received?: number;
  /** Seconds, default 0. */
  duration?: number;
  /** Read flag, default false. */
  read?: boolean;
  /** Note, default empty. */
  note?: string;
}

/** A stored voicemail (current state). */
export interface SimVoicemail {
  /** Mail id (decimal string). */
  mailId: string;
  /** Owner extension (`to`). */
  to: string;
  /** Caller number. */
  from: string;
  /** Caller's display name. */
  fromName: string;
  /** Caller name as announced. */
  callerName: string;
  /** Audio bytes. */
  content: Uint8Array;
  /** File format. */
  fileFormat: string;
  /** File name. */
  documentName: string;
  /** Unix seconds. */
  received: number;
  /** Seconds. */
  duration: number;
  /** Read flag. */
  read: boolean;
  /** Note. */
  note: string;
}

/**
 * Renders a `<mail>` element as in the list reply.
 *
 * @example
 * ```ts
 * mailXml(vm); // <mail from="3099" fromName="" callerName="" to="3095" ownerType="user">…
 * ```
 */
export function mailXml(m: SimVoicemail): string {
  return `<mail from="${escapeXml(m.from)}" fromName="${escapeXml(m.fromName)}"` +
    ` callerName="${escapeXml(m.callerName)}" to="${escapeXml(m.to)}" ownerType="user">` +
    `<mailId>${escapeXml(m.mailId)}</mailId><received>${m.received}</received>` +
    `<duration>${m.duration}</duration><read>${m.read}</read>` +
    `<note>${escapeXml(m.note)}</note></mail>`;
}

/**
 * The full list reply.
 *
 * @example
 * ```ts
 * mailListXml([]); // <MailGetListIncomingResponse rowCount="0"></MailGetListIncomingResponse>
 * ```
 */
export function mailListXml(list: readonly SimVoicemail[]): string {
  return `<MailGetListIncomingResponse rowCount="${list.length}">` + list.map(mailXml).join("") +
    "</MailGetListIncomingResponse>";
}

/**
 * Number of chunks for `size` bytes; an empty file still takes one (empty) chunk.
 *
 * @example
 * ```ts
 * chunkCount(0, 32768); // 1
 * chunkCount(65537, 32768); // 3
 * ```
 */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(size / chunkSize));
}

/**
 * Renders chunk `n` (1-based) of a voicemail.
 *
 * @example
 * ```ts
 * chunkXml(vm, 1, 32768); // <MailReceiveIncomingResponse mailId="80" chunkNumber="1" …>
 * ```
 */
export function chunkXml(m: SimVoicemail, n: number, chunkSize: number): string {
  const total = chunkCount(m.content.length, chunkSize);
  const part = m.content.subarray((n - 1) * chunkSize, n * chunkSize);
  const b64 = Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString("base64");
  return `<MailReceiveIncomingResponse mailId="${escapeXml(m.mailId)}" chunkNumber="${n}"` +
    ` totalChunks="${total}" chunkSize="${part.length}">` +
    `<fileFormat>${escapeXml(m.fileFormat)}</fileFormat>` +
    `<documentName>${escapeXml(m.documentName)}</documentName>` +
    `<mediaContent>${b64}</mediaContent></MailReceiveIncomingResponse>`;
}

/**
 * Voicemail boxes keyed by owner extension; mail ids are unique across the simulator.
 *
 * @example
 * ```ts
 * const mail = new VoicemailStore(32768);
 * const vm = mail.add("3095", { from: "3099", content: new Uint8Array(10) });
 * mail.get("3095", vm.mailId)?.read; // false
 * ```
 */
export class VoicemailStore {
  #boxes = new Map<string, SimVoicemail[]>();
  #nextId = 80;
  /** Raw bytes per chunk, 1 … {@link MAX_CHUNK}. */
  readonly chunkSize: number;
  /** Every `MailCancelReceive` seen (the last 10 000), oldest first. */
  readonly cancels: CancelRecord[] = [];

  /** @param chunkSize raw bytes per chunk, clamped to 1 … {@link MAX_CHUNK} */
  constructor(chunkSize = 32768) {
    this.chunkSize = Math.min(MAX_CHUNK, Math.max(1, Math.floor(chunkSize)));
  }

  /** Stores a voicemail and returns it. */
  add(ext: string, vm: NewVoicemail): SimVoicemail {
    const mailId = String(this.#nextId++);
    const fileFormat = vm.fileFormat ?? "wav";
    const m: SimVoicemail = {
      mailId,
      to: ext,
      from: vm.from,
      fromName: vm.fromName ?? "",
      callerName: vm.callerName ?? "",
      content: vm.content.slice(),
      fileFormat,
      // Long names would eat into the 64 KB frame budget of every chunk.
      documentName: (vm.documentName ?? `message${mailId}.${fileFormat}`).slice(0, 200),
      received: vm.received ?? Math.floor(Date.now() / 1000),
      duration: vm.duration ?? 0,
      read: vm.read ?? false,
      note: vm.note ?? "",
    };
    let box = this.#boxes.get(ext);
    if (!box) this.#boxes.set(ext, box = []);
    box.push(m);
    return m;
  }

  /** The box of one extension. */
  list(ext: string): readonly SimVoicemail[] {
    return this.#boxes.get(ext) ?? [];
  }

  /** One voicemail of one box. */
  get(ext: string, mailId: string): SimVoicemail | undefined {
    return this.#boxes.get(ext)?.find((m) => m.mailId === mailId);
  }

  /** Deletes; returns whether it existed. */
  delete(ext: string, mailId: string): boolean {
    const box = this.#boxes.get(ext);
    const i = box?.findIndex((m) => m.mailId === mailId) ?? -1;
    if (!box || i < 0) return false;
    box.splice(i, 1);
    return true;
  }
}

/** Command names {@link handleMailCommand} answers. */
export const MAIL_COMMANDS = [
  "MailGetListIncoming",
  "MailReceiveIncoming",
  "MailCancelReceive",
  "MailSetStatus",
  "UpdateVmNote",
  "MailDeleteIncoming",
] as const;

/**
 * Handles the mail commands of one session: `MailGetListIncoming`, `MailReceiveIncoming`
 * (chunk by chunk, `nextChunk` continues), `MailCancelReceive`, `MailSetStatus`,
 * `UpdateVmNote` and `MailDeleteIncoming`. The mailbox is the session user's (a Server
 * session names it in `userID`), and a monitor on it is required (§3.6).
 *
 * @example
 * ```ts
 * handleMailCommand(mail, session, 5, parseXml("<MailGetListIncoming/>"));
 * // session gets <MailGetListIncomingResponse rowCount="1"><mail …>…
 * ```
 */
export function handleMailCommand(
  mail: VoicemailStore,
  s: SimSession,
  id: number,
  el: XmlElement,
): void {
  const ext = s.server ? textAt(el, "userID") || textAt(el, "userId") : s.user!.ext;
  // Mail commands "do not work without" a monitor on the own extension (§3.6).
  if (!ext || !s.monitorOf(ext)) return s.error(id, "monitor required");
  const mailId = el.name === "MailReceiveIncoming"
    ? textAt(el, "faxSessionID")
    : textAt(el, "mailId");
  switch (el.name) {
    case "MailGetListIncoming": {
      const list = [...mail.list(ext)];
      let xml = mailListXml(list);
      // Keep the reply inside one frame: drop the newest entries if it would not fit.
      while (new TextEncoder().encode(xml).length > MAX_PAYLOAD && list.length) {
        list.splice(Math.max(0, Math.floor(list.length * 0.9)));
        xml = mailListXml(list);
      }
      s.send(id, xml);
      return;
    }
    case "MailReceiveIncoming": {
      const m = mail.get(ext, mailId);
      if (!m) return s.error(id, "invalid mail id");
      const n = child(el, "nextChunk") ? (s.transfers.get(mailId) ?? 0) + 1 : 1;
      const total = chunkCount(m.content.length, mail.chunkSize);
      if (n > total) {
        s.transfers.delete(mailId);
        return s.error(id, "no more chunks");
      }
      if (n === total) s.transfers.delete(mailId);
      else s.transfers.set(mailId, n);
      if (!s.send(id, chunkXml(m, n, mail.chunkSize))) s.error(id, "chunk too large");
      return;
    }
    case "MailCancelReceive":
      pushBounded(mail.cancels, {
        session: s.id,
        ext,
        mailId,
        chunksSent: s.transfers.get(mailId) ?? 0,
      });
      s.transfers.delete(mailId);
      s.send(id, "<MailCancelReceiveResponse></MailCancelReceiveResponse>");
      return;
    case "MailSetStatus": {
      const m = mail.get(ext, mailId);
      if (!m) return s.error(id, "invalid mail id");
      const read = textAt(el, "read").toLowerCase();
      m.read = read === "true" || read === "1";
      s.send(id, "<MailSetStatusResponse></MailSetStatusResponse>");
      return;
    }
    case "UpdateVmNote": {
      const m = mail.get(ext, mailId);
      if (!m) return s.error(id, "invalid mail id");
      m.note = child(el, "note")?.text ?? "";
      s.send(id, "<UpdateVmNoteResponse></UpdateVmNoteResponse>");
      return;
    }
    case "MailDeleteIncoming":
      // Deleting an unknown or foreign message is not an error (seed 2).
      mail.delete(ext, mailId);
      s.send(id, "<MailDeleteIncomingResponse></MailDeleteIncomingResponse>");
      return;
  }
}
