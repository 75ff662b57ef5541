/**
 * What the simulated MX received, for tests to observe: the last 10 000 client frames with
 * sequence numbers, and waiters that resolve on the next frame matching a name and predicate.
 *
 * @module
 */
import { parseXml, type XmlElement } from "../csta/xml.ts";

/** Received messages kept for observation. */
export const RECEIVED_LIMIT = 10_000;

/** One frame received from a client. */
export interface SimMessage {
  /** Sequence number across the simulator (see {@link ReceivedLog.mark}). */
  seq: number;
  /** Session number. */
  session: number;
  /** Invoke id of the frame. */
  invokeId: number;
  /** Root element name. */
  name: string;
  /** Payload. */
  xml: string;
}

/** A received message with its parsed root element. */
export interface SimMessageWithEl extends SimMessage {
  /** Parsed payload. */
  el: XmlElement;
}

interface Waiter {
  name: string;
  predicate?: (m: SimMessageWithEl) => boolean;
  resolve: (m: SimMessageWithEl) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Appends `item` to `list`, dropping the oldest entries beyond `limit`.
 *
 * @example
 * ```ts
 * const seen: number[] = [];
 * for (let i = 0; i < 5; i++) pushBounded(seen, i, 3); // seen = [2, 3, 4]
 * ```
 */
export function pushBounded<T>(list: T[], item: T, limit = RECEIVED_LIMIT): void {
  list.push(item);
  if (list.length > limit) list.splice(0, list.length - limit);
}

/**
 * The received-frame log with its waiters.
 *
 * @example
 * ```ts
 * const log = new ReceivedLog();
 * const since = log.mark();
 * log.record(1, 7, "<MonitorStart/>", parseXml("<MonitorStart/>"));
 * await log.waitFor("MonitorStart", undefined, 1000, since); // the frame above
 * log.close();
 * ```
 */
export class ReceivedLog {
  #received: SimMessage[] = [];
  #seq = 0;
  #waiters = new Set<Waiter>();
  #closed = false;

  /** The last 10 000 frames, oldest first. */
  get messages(): ReadonlyArray<SimMessage> {
    return this.#received;
  }

  /** Sequence number the next frame will get. */
  mark(): number {
    return this.#seq + 1;
  }

  /** Records one parsed frame of session `session` and wakes matching waiters. */
  record(session: number, invokeId: number, xml: string, el: XmlElement, name = el.name): void {
    const msg: SimMessage = { seq: ++this.#seq, session, invokeId, name, xml };
    this.#received.push(msg);
    // Trimmed in batches: one splice per 1000 frames instead of a shift per frame.
    if (this.#received.length > RECEIVED_LIMIT + 1000) {
      this.#received.splice(0, this.#received.length - RECEIVED_LIMIT);
    }
    if (!this.#waiters.size) return;
    const withEl: SimMessageWithEl = { ...msg, el };
    for (const w of this.#waiters) {
      if (w.name !== msg.name || !matches(w.predicate, withEl)) continue;
      clearTimeout(w.timer);
      this.#waiters.delete(w);
      w.resolve(withEl);
    }
  }

  /**
   * Resolves with the next message named `name` matching `predicate`. With `since` (from
   * {@link mark}), an already received message with `seq >= since` also counts.
   * @throws {Error} after `timeoutMs` (default 5000) or when the log closes
   */
  waitFor(
    name: string,
    predicate?: (m: SimMessageWithEl) => boolean,
    timeoutMs = 5000,
    since?: number,
  ): Promise<SimMessageWithEl> {
    if (since !== undefined) {
      for (const m of this.#received) {
        if (m.seq < since || m.name !== name) continue;
        const withEl = parsed(m);
        if (withEl && matches(predicate, withEl)) return Promise.resolve(withEl);
      }
    }
    if (this.#closed) return Promise.reject(new Error("simulator closed"));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        name,
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`timeout waiting for ${name}`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  /** Rejects every pending waiter ("simulator closed") and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new Error("simulator closed"));
    }
    this.#waiters.clear();
  }
}

function parsed(m: SimMessage): SimMessageWithEl | undefined {
  try {
    return { ...m, el: parseXml(m.xml) };
  } catch {
    return undefined;
  }
}

function matches(p: ((m: SimMessageWithEl) => boolean) | undefined, m: SimMessageWithEl): boolean {
  try {
    return !p || p(m);
  } catch {
    return false;
  }
}
