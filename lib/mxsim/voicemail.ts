/**
 * Voicemail boxes of the simulated MX and their wire form (mx-protocol §3.6–§3.9): the
 * `MailGetListIncomingResponse` list and base64 chunks for `MailReceiveIncoming`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { escapeXml } from "../csta/xml.ts";

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

/** Renders a `<mail>` element as in the list reply. */
export function mailXml(m: SimVoicemail): string {
  return `<mail from="${escapeXml(m.from)}" fromName="${escapeXml(m.fromName)}"` +
    ` callerName="${escapeXml(m.callerName)}" to="${escapeXml(m.to)}" ownerType="user">` +
    `<mailId>${escapeXml(m.mailId)}</mailId><received>${m.received}</received>` +
    `<duration>${m.duration}</duration><read>${m.read}</read>` +
    `<note>${escapeXml(m.note)}</note></mail>`;
}

/** The full list reply. */
export function mailListXml(list: readonly SimVoicemail[]): string {
  return `<MailGetListIncomingResponse rowCount="${list.length}">` + list.map(mailXml).join("") +
    "</MailGetListIncomingResponse>";
}

/** Number of chunks for `size` bytes; an empty file still takes one (empty) chunk. */
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

/** Voicemail boxes keyed by owner extension; mail ids are unique across the simulator. */
export class VoicemailStore {
  #boxes = new Map<string, SimVoicemail[]>();
  #nextId = 80;

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
