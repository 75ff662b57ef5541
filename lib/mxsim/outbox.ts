/**
 * Ordered, coalescing writer for one simulator socket.
 *
 * Events are produced far faster than one write syscall per frame allows (benchmarks push
 * 100k events), so frames are queued synchronously and a single pump writes everything
 * queued so far in one buffer. One pump per socket keeps the byte order of frames.
 *
 * @module
 */

/** The part of a Deno connection the outbox needs. */
export interface Writable {
  /** Writes some bytes, resolving with how many were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Largest buffer handed to one write call. */
const MAX_BATCH = 256 * 1024;

/**
 * Queues frames and writes them in order without making callers await each one.
 *
 * @example
 * ```ts
 * const out = new Outbox(conn, () => conn.close());
 * out.push(encodeFrame(9999, "<presence/>"));
 * await out.drained();
 * ```
 */
export class Outbox {
  #conn: Writable;
  #onError: () => void;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #pump: Promise<void> | undefined;
  #failed = false;
  #maxQueued: number;

  /**
   * @param conn the socket
   * @param onError called once when a write fails or the queue overflows (slow consumer);
   *   the owner should close the socket
   * @param maxQueued bytes that may wait unwritten before the consumer is declared dead
   */
  constructor(conn: Writable, onError: () => void, maxQueued = 256 * 1024 * 1024) {
    this.#conn = conn;
    this.#onError = onError;
    this.#maxQueued = maxQueued;
  }

  /** Bytes queued but not yet written. */
  get queued(): number {
    return this.#queued;
  }

  /** Queues one frame. Ignored after a failure. */
  push(frame: Uint8Array): void {
    if (this.#failed) return;
    this.#queue.push(frame);
    this.#queued += frame.length;
    if (this.#queued > this.#maxQueued) {
      this.#fail();
      return;
    }
    this.#pump ??= this.#run();
  }

  /** Resolves when everything queued so far is written (or writing failed). */
  async drained(): Promise<void> {
    while (this.#pump) await this.#pump;
  }

  #fail(): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#onError();
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length && !this.#failed) {
        const buf = this.#take();
        let off = 0;
        while (off < buf.length) off += await this.#conn.write(buf.subarray(off));
      }
    } catch {
      this.#fail();
    } finally {
      this.#pump = undefined;
    }
  }

  /** Removes up to MAX_BATCH bytes of whole frames from the queue as one buffer. */
  #take(): Uint8Array {
    const q = this.#queue;
    if (q.length === 1 || q[0].length >= MAX_BATCH) {
      const f = q.shift()!;
      this.#queued -= f.length;
      return f;
    }
    let n = 0, total = 0;
    while (n < q.length && total + q[n].length <= MAX_BATCH) total += q[n++].length;
    const buf = new Uint8Array(total);
    let off = 0;
    for (let i = 0; i < n; i++) {
      buf.set(q[i], off);
      off += q[i].length;
    }
    q.splice(0, n);
    this.#queued -= total;
    return buf;
  }
}
