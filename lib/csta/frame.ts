/**
 * CSTA frame codec: the 8-byte header used by Zultys MX on port 7778.
 *
 * | bytes | content                                               |
 * |-------|-------------------------------------------------------|
 * | 0–1   | zero when sending, ignored when reading               |
 * | 2–3   | big-endian total length (header + payload)            |
 * | 4–7   | invoke id as 4 ASCII digits ("0001"; "9999" = event)  |
 * | 8…    | UTF-8 XML payload                                     |
 *
 * @module
 */
import { FrameError } from "./errors.ts";

/** Length of the fixed frame header in bytes. */
export const HEADER_SIZE = 8;
/** Largest frame the 16-bit length field can describe. */
export const MAX_FRAME_SIZE = 0xffff;
/** Invoke id the MX uses for unsolicited messages (events). */
export const EVENT_INVOKE_ID = 9999;
/** Invoke id used by clients for keep-alive frames. */
export const KEEPALIVE_INVOKE_ID = 0;

/** One decoded frame. */
export interface Frame {
  /** The 4-digit invoke id as a number (0–9999). */
  invokeId: number;
  /** The XML payload, decoded as UTF-8. */
  payload: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * Encodes one frame.
 *
 * @example
 * ```ts
 * const bytes = encodeFrame(1, "<keepalive />");
 * ```
 * @throws {FrameError} when the payload does not fit the 16-bit length or the id is out of range
 */
export function encodeFrame(invokeId: number, payload: string | Uint8Array): Uint8Array {
  if (!Number.isInteger(invokeId) || invokeId < 0 || invokeId > 9999) {
    throw new FrameError(`invoke id out of range: ${invokeId}`);
  }
  const body = typeof payload === "string" ? encoder.encode(payload) : payload;
  const total = HEADER_SIZE + body.length;
  if (total > MAX_FRAME_SIZE) {
    throw new FrameError(`frame too large: ${total} bytes (max ${MAX_FRAME_SIZE})`);
  }
  const out = new Uint8Array(total);
  out[2] = total >> 8;
  out[3] = total & 0xff;
  const id = invokeId.toString().padStart(4, "0");
  for (let i = 0; i < 4; i++) out[4 + i] = id.charCodeAt(i);
  out.set(body, HEADER_SIZE);
  return out;
}

/**
 * Incremental decoder: feed it whatever the socket delivers (partial frames, several frames
 * at once) and it returns every complete frame.
 *
 * @example
 * ```ts
 * const dec = new FrameDecoder();
 * for (const frame of dec.push(chunk)) console.log(frame.invokeId, frame.payload);
 * ```
 */
export class FrameDecoder {
  #buf: Uint8Array = new Uint8Array(0);
  #len = 0;
  #maxFrame: number;
  #error?: FrameError;

  /** @param maxFrame largest accepted frame; defaults to the protocol's 65 535 bytes */
  constructor(maxFrame = MAX_FRAME_SIZE) {
    this.#maxFrame = maxFrame;
  }

  /**
   * Set when a bad header followed complete frames in the same push: those frames were
   * returned, and every later push throws this error.
   */
  get error(): FrameError | undefined {
    return this.#error;
  }

  /** Bytes received but not yet forming a complete frame. */
  get buffered(): number {
    return this.#len;
  }

  /**
   * Appends a chunk and returns the frames completed by it.
   * @throws {FrameError} on a malformed header; the decoder is then unusable
   */
  push(chunk: Uint8Array): Frame[] {
    if (this.#error) throw this.#error;
    this.#append(chunk);
    const frames: Frame[] = [];
    let off = 0;
    try {
      off = this.#decode(frames);
    } catch (err) {
      // Deliver what was complete before the garbage (e.g. a reply), fail from then on.
      if (frames.length === 0) throw err;
      this.#error = err as FrameError;
      this.#len = 0;
      return frames;
    }
    if (off > 0) {
      this.#buf.copyWithin(0, off, this.#len);
      this.#len -= off;
    }
    return frames;
  }

  #decode(frames: Frame[]): number {
    let off = 0;
    while (this.#len - off >= HEADER_SIZE) {
      const b = this.#buf;
      // Bytes 0–1 are always zero on the wire; treating 0–3 as a uint32 is equivalent for
      // all observed traffic and lets us reject garbage early (mx-protocol §7.2).
      const total = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
      if (total < HEADER_SIZE || total > this.#maxFrame) {
        throw new FrameError(`bad frame length ${total}`);
      }
      let id = 0;
      for (let i = 4; i < 8; i++) {
        const c = b[off + i];
        if (c < 0x30 || c > 0x39) throw new FrameError("non-numeric invoke id");
        id = id * 10 + (c - 0x30);
      }
      if (this.#len - off < total) break;
      frames.push({
        invokeId: id,
        payload: decoder.decode(b.subarray(off + HEADER_SIZE, off + total)),
      });
      off += total;
    }
    return off;
  }

  #append(chunk: Uint8Array): void {
    const need = this.#len + chunk.length;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, this.#buf.length * 2, 1024));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len = need;
  }
}
