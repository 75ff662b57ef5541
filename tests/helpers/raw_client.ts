/**
 * A tiny raw CSTA frame client for tests: connects over TCP or TLS, sends payloads with
 * chosen invoke ids, and hands back every received frame (parsed) in order.
 *
 * @module
 */
import { encodeFrame, FrameDecoder } from "../../lib/csta/frame.ts";
import { parseXml, type XmlElement } from "../../lib/csta/xml.ts";

/** A received frame. */
export interface RawFrame {
  /** Invoke id. */
  invokeId: number;
  /** Payload. */
  xml: string;
  /** Parsed payload. */
  el: XmlElement;
}

/** Connection options. */
export interface RawConnectOptions {
  /** Port to connect to on 127.0.0.1. */
  port: number;
  /** PEM CA certificates: connect with TLS (host name `localhost`) when given. */
  caCerts?: string[];
}

/**
 * A raw frame client.
 *
 * @example
 * ```ts
 * const c = await RawClient.connect({ port: sim.port });
 * const reply = await c.request("<MonitorStartAb/>");
 * await c.close();
 * ```
 */
export class RawClient {
  #conn: Deno.Conn;
  #frames: RawFrame[] = [];
  #waiters: Array<() => void> = [];
  #nextId = 1;
  #loop: Promise<void>;
  #writes: Promise<void> = Promise.resolve();
  /** Set once the server closed the connection or sent bytes that are not frames. */
  ended = false;
  /** Why reading stopped: `eof`, `frame-error` or `read-error`. */
  endReason = "";

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#loop = this.#read();
  }

  /** Connects to the simulator. */
  static async connect(o: RawConnectOptions): Promise<RawClient> {
    const conn = o.caCerts
      ? await Deno.connectTls({ hostname: "localhost", port: o.port, caCerts: o.caCerts })
      : await Deno.connect({ hostname: "127.0.0.1", port: o.port });
    // Requests are tiny separate writes; without this Nagle delays them ~40 ms each.
    (conn as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    return new RawClient(conn);
  }

  async #read(): Promise<void> {
    const dec = new FrameDecoder();
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.endReason = "eof";
          break;
        }
        let frames;
        try {
          frames = dec.push(buf.subarray(0, n));
        } catch {
          this.endReason = "frame-error";
          break;
        }
        for (const f of frames) {
          this.#frames.push({ invokeId: f.invokeId, xml: f.payload, el: parseXml(f.payload) });
        }
        this.#wake();
      }
    } catch {
      this.endReason ||= "read-error";
    } finally {
      this.ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Sends a payload; returns the invoke id used (auto-incremented unless given). */
  send(xml: string, invokeId?: number): number {
    const id = invokeId ?? this.#nextId++;
    this.#enqueue(encodeFrame(id, xml));
    return id;
  }

  /** Writes raw bytes (after everything sent before). */
  sendRaw(bytes: Uint8Array): Promise<void> {
    return this.#enqueue(bytes);
  }

  /** Chains writes so frames never interleave, and swallows errors of a closed socket. */
  #enqueue(bytes: Uint8Array): Promise<void> {
    this.#writes = this.#writes.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    }).catch(() => {});
    return this.#writes;
  }

  /**
   * Removes and returns the first received frame matching `pred`, waiting for it.
   * @throws {Error} when the connection ends first or after `timeoutMs`
   */
  async next(pred: (f: RawFrame) => boolean = () => true, timeoutMs = 5000): Promise<RawFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#frames.findIndex(pred);
      if (i >= 0) return this.#frames.splice(i, 1)[0];
      if (this.ended) throw new Error(`connection ended (${this.endReason})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timeout waiting for frame");
      await this.#change(left);
    }
  }

  /** Waits for the next frame with root element `name`. */
  nextNamed(name: string, timeoutMs?: number): Promise<RawFrame> {
    return this.next((f) => f.el.name === name, timeoutMs);
  }

  /** Sends a payload and waits for the frame carrying the same invoke id. */
  async request(xml: string, timeoutMs?: number): Promise<RawFrame> {
    const id = this.send(xml);
    return await this.next((f) => f.invokeId === id, timeoutMs);
  }

  /** Frames received and not yet taken. */
  pending(): readonly RawFrame[] {
    return this.#frames;
  }

  /** Resolves when the server has closed the connection. */
  async waitEnded(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("connection still open");
      await this.#change(left);
    }
  }

  /** Resolves at the next received frame or the end of the connection, at most after `ms`. */
  async #change(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#waiters.push(resolve);
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }

  /** Closes the connection and waits for the reader to stop. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    await this.#loop;
    await this.#writes;
  }
}
