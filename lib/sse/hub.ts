/**
 * Server-Sent Events broadcaster: topics (one per extension), monotonic event ids, per-topic
 * history for `Last-Event-ID` replay, one shared heartbeat timer, and bounded per-client queues.
 *
 * Built for many idle connections: a frame is encoded once and the same `Uint8Array` is queued
 * to every subscriber; a subscriber is one small object that is its own stream source and its
 * own abort listener (no closures, no timers per client). Each stream's queue is bounded by a
 * byte-length strategy; a client whose queue would exceed `maxQueuedBytes` is disconnected
 * (slow consumer) and can reconnect with `Last-Event-ID`.
 *
 * @example
 * ```ts
 * const hub = new SseHub();
 * // Deno.serve cancels the body stream when the client disconnects, which ends the
 * // subscription; `signal` is only needed for other cancellation sources.
 * Deno.serve((req) =>
 *   sseResponse(hub.subscribe("3095", { lastEventId: req.headers.get("last-event-id") }))
 * );
 * hub.publish("3095", "DeliveredEvent", JSON.stringify({ callId: 39 }));
 * ```
 *
 * @module
 */

/** Options for {@link SseHub}. */
export interface SseOptions {
  /** Events kept per topic for `Last-Event-ID` replay; default 256. */
  historySize?: number;
  /** How long a history entry stays replayable, ms; default 10 minutes. Bounds memory of idle topics. */
  historyTtlMs?: number;
  /** Heartbeat period, ms; default 15000. One shared timer writes `: ping\n\n` to every client. */
  heartbeatMs?: number;
  /** Per-client queue bound in bytes; default 256 KiB. A client over it is disconnected. */
  maxQueuedBytes?: number;
  /** `retry:` value sent on connect, ms; default 3000. */
  retryMs?: number;
  /** Clock in ms (history expiry only); default `Date.now`. */
  now?: () => number;
}

/** Options for {@link SseHub.subscribe}. */
export interface SubscribeOptions {
  /** The client's `Last-Event-ID` header: events after it are replayed from history. */
  lastEventId?: string | null;
  /**
   * Ends the subscription when aborted. Not needed for client disconnects under Deno.serve (it
   * cancels the stream); note Deno 2.9's `request.signal` also aborts after a completed response
   * and prints a one-time "legacy abort" warning.
   */
  signal?: AbortSignal;
  /** Called exactly once when the subscription ends, however it ends. */
  onClose?: () => void;
}

/** Options for {@link SseHub.closeTopic}. */
export interface CloseTopicOptions {
  /** Send `retry: <ms>` before ending, so clients wait that long before reconnecting. */
  retryMs?: number;
  /** Keep the topic's replay history (default false: a logout forgets the user's events). */
  keepHistory?: boolean;
}

const enc = new TextEncoder();
const PING = enc.encode(": ping\n\n");
const NEWLINE_RE = /\r\n|\r|\n/;
const ID_RE = /^\d{1,15}$/;

/**
 * The reason a slow consumer's stream is failed. `Deno.serve` prints a body stream's error to
 * stderr; without a stack that is one line (`[SlowConsumer: slow consumer]`), not a trace.
 */
const SLOW_CONSUMER = Object.assign(new Error("slow consumer"), {
  name: "SlowConsumer",
  stack: "SlowConsumer: slow consumer",
});

/**
 * Encodes one SSE frame. Multi-line data becomes several `data:` lines (the client joins them
 * with "\n"); line breaks in the event name are removed so they cannot inject fields.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(encodeEvent(7, "Ev", "a\nb")); // "id: 7\nevent: Ev\ndata: a\ndata: b\n\n"
 * ```
 */
export function encodeEvent(id: number, event: string, data: string): Uint8Array {
  let s = `id: ${id}\n`;
  if (event) s += `event: ${event.replace(/[\r\n]/g, "")}\n`;
  if (data.includes("\n") || data.includes("\r")) {
    for (const line of data.split(NEWLINE_RE)) s += `data: ${line}\n`;
  } else {
    s += `data: ${data}\n`;
  }
  return enc.encode(s + "\n");
}

function retryFrame(ms: number): Uint8Array {
  return enc.encode(`retry: ${Math.max(0, Math.floor(ms))}\n\n`);
}

/**
 * Response headers for an SSE stream. `no-transform` also stops Deno.serve's automatic
 * compression, which would otherwise buffer the stream; `X-Accel-Buffering: no` does the same
 * for nginx in front. (`Connection: keep-alive` is left out: it is illegal in HTTP/2.)
 */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache, no-transform",
  "Access-Control-Allow-Origin": "*",
  "X-Accel-Buffering": "no",
});

/**
 * Wraps a subscription stream in a 200 response with {@link SSE_HEADERS}.
 *
 * @example
 * ```ts
 * return sseResponse(hub.subscribe(ext, { lastEventId: req.headers.get("last-event-id") }));
 * ```
 */
export function sseResponse(
  stream: ReadableStream<Uint8Array>,
  headers?: Record<string, string>,
): Response {
  const h = new Headers(SSE_HEADERS);
  if (headers) { for (const [k, v] of Object.entries(headers)) h.set(k, v); }
  return new Response(stream, { status: 200, headers: h });
}

interface HistoryEntry {
  id: number;
  at: number;
  frame: Uint8Array;
}

class Topic {
  readonly subs = new Set<Subscriber>();
  // Ring buffer of the last `cap` events.
  readonly ring: (HistoryEntry | undefined)[];
  head = 0; // index of the oldest entry
  len = 0;

  constructor(readonly name: string, readonly cap: number) {
    this.ring = new Array(cap);
  }

  push(e: HistoryEntry): void {
    if (this.cap === 0) return;
    if (this.len < this.cap) {
      this.ring[(this.head + this.len) % this.cap] = e;
      this.len++;
    } else {
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.cap;
    }
  }

  /** Drops entries older than `cutoff`. */
  prune(cutoff: number): void {
    while (this.len > 0) {
      const e = this.ring[this.head]!;
      if (e.at >= cutoff) break;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.cap;
      this.len--;
    }
  }

  clearHistory(): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.len = 0;
  }

  *entries(): Generator<HistoryEntry> {
    for (let i = 0; i < this.len; i++) yield this.ring[(this.head + i) % this.cap]!;
  }
}

type EndHow = "close" | "error" | "cancelled";

/**
 * One connected client. It is its own ReadableStream source (start/cancel) and its own abort
 * listener (handleEvent), so a subscription allocates no closures.
 */
class Subscriber implements UnderlyingDefaultSource<Uint8Array>, EventListenerObject {
  c!: ReadableStreamDefaultController<Uint8Array>;
  done = false;

  constructor(
    readonly core: Core,
    readonly topic: Topic,
    readonly signal: AbortSignal | undefined,
    readonly onClose: (() => void) | undefined,
  ) {}

  start(c: ReadableStreamDefaultController<Uint8Array>): void {
    this.c = c;
  }

  cancel(): void {
    this.core.end(this, "cancelled");
  }

  handleEvent(): void {
    this.core.end(this, "close");
  }
}

function byteLength(chunk: Uint8Array): number {
  return chunk.byteLength;
}

/** The hub's state and logic; {@link SseHub} is its public face. */
class Core {
  readonly topics = new Map<string, Topic>();
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly heartbeatMs: number;
  readonly strategy: QueuingStrategy<Uint8Array>;
  readonly retry: Uint8Array;
  readonly now: () => number;
  seq = 0;
  count = 0;
  closed = false;
  timer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: SseOptions) {
    this.historySize = Math.max(0, Math.floor(opts.historySize ?? 256));
    this.historyTtlMs = opts.historyTtlMs ?? 10 * 60_000;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    // One strategy object shared by all streams: the queue's "size" is its byte count, so
    // desiredSize = maxQueuedBytes - queued bytes.
    this.strategy = { highWaterMark: opts.maxQueuedBytes ?? 256 * 1024, size: byteLength };
    this.retry = retryFrame(opts.retryMs ?? 3000);
    this.now = opts.now ?? Date.now;
  }

  topic(name: string): Topic {
    let t = this.topics.get(name);
    if (!t) {
      t = new Topic(name, this.historySize);
      this.topics.set(name, t);
      this.ensureTimer();
    }
    return t;
  }

  /** Queues a frame for one client, disconnecting it if its queue would overflow. */
  send(sub: Subscriber, frame: Uint8Array): void {
    const room = sub.c.desiredSize;
    if (room === null || room < frame.byteLength) {
      this.end(sub, "error");
      return;
    }
    sub.c.enqueue(frame);
  }

  /** Ends a subscription once, whatever triggered it. */
  end(sub: Subscriber, how: EndHow): void {
    if (sub.done) return;
    sub.done = true;
    const t = sub.topic;
    if (t.subs.delete(sub)) this.count--;
    sub.signal?.removeEventListener("abort", sub);
    try {
      if (how === "close") sub.c.close();
      else if (how === "error") sub.c.error(SLOW_CONSUMER);
    } catch {
      // Already closed or errored by the other side.
    }
    if (t.subs.size === 0 && t.len === 0 && this.topics.get(t.name) === t) {
      this.topics.delete(t.name);
      if (this.topics.size === 0) this.stopTimer();
    }
    if (sub.onClose) {
      try {
        sub.onClose();
      } catch {
        // A failing callback must not break fan-out or other subscribers.
      }
    }
  }

  ensureTimer(): void {
    if (this.timer !== undefined || this.closed || this.heartbeatMs <= 0) return;
    const timer = setInterval(() => this.tick(), this.heartbeatMs);
    // The heartbeat alone must not keep a process alive.
    Deno.unrefTimer(timer);
    this.timer = timer;
  }

  stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Heartbeat: ping everyone, expire old history, forget empty topics. */
  tick(): void {
    const cutoff = this.now() - this.historyTtlMs;
    for (const t of this.topics.values()) {
      t.prune(cutoff);
      for (const sub of t.subs) this.send(sub, PING);
      if (t.subs.size === 0 && t.len === 0) this.topics.delete(t.name);
    }
    if (this.topics.size === 0) this.stopTimer();
  }
}

/**
 * The SSE broadcaster.
 *
 * @example
 * ```ts
 * const hub = new SseHub({ heartbeatMs: 15_000 });
 * const stream = hub.subscribe("3095", { lastEventId: "41" });
 * const id = hub.publish("3095", "OriginatedEvent", '{"callId":39}');
 * hub.closeTopic("3095");          // logout: end the user's streams
 * hub.close();                     // shutdown: end all streams, stop the timer
 * ```
 */
export class SseHub {
  #core: Core;

  /**
   * Creates a hub. The heartbeat timer starts with the first topic and stops when none is left.
   *
   * @param opts See {@link SseOptions}.
   */
  constructor(opts: SseOptions = {}) {
    this.#core = new Core(opts);
  }

  /** The id of the last published event (0 before any). */
  get lastId(): number {
    return this.#core.seq;
  }

  /**
   * Publishes an event to every subscriber of `topic` and records it in the topic's history.
   * The frame is encoded once and shared. Returns the event id (monotonic per hub).
   *
   * @example
   * ```ts
   * hub.publish("3095", "DeliveredEvent", JSON.stringify(event));
   * ```
   */
  publish(topic: string, event: string, data: string): number {
    const core = this.#core;
    const id = ++core.seq;
    if (core.closed) return id;
    const frame = encodeEvent(id, event, data);
    const t = core.topic(topic);
    const now = core.now();
    t.prune(now - core.historyTtlMs);
    t.push({ id, at: now, frame });
    for (const sub of t.subs) core.send(sub, frame);
    return id;
  }

  /**
   * Subscribes to a topic. The stream starts with `retry:`, then replays history after
   * `lastEventId` (all of the history if that id is older than it, or unknown to this hub, e.g.
   * from before a restart), then carries live events and heartbeats. Cancelling the stream,
   * aborting `signal`, {@link closeTopic}, {@link closeAll} or a queue overflow end it, and
   * `onClose` runs exactly once.
   *
   * @example
   * ```ts
   * const stream = hub.subscribe(ext, {
   *   lastEventId: req.headers.get("last-event-id"),
   *   onClose: () => log.debug("sse closed", { ext }),
   * });
   * ```
   */
  subscribe(topic: string, opts: SubscribeOptions = {}): ReadableStream<Uint8Array> {
    const core = this.#core;
    const t = core.topic(topic);
    const sub = new Subscriber(core, t, opts.signal, opts.onClose);
    const stream = new ReadableStream<Uint8Array>(sub, core.strategy);
    // start() ran synchronously in the constructor, so sub.c is set.
    if (core.closed || opts.signal?.aborted) {
      core.end(sub, "close");
      return stream;
    }
    sub.c.enqueue(core.retry);
    const last = opts.lastEventId?.trim();
    if (last && ID_RE.test(last)) {
      const n = Number(last);
      // An id this hub never issued comes from an earlier process: everything here is new to it.
      const after = n > core.seq ? 0 : n;
      t.prune(core.now() - core.historyTtlMs);
      // History is bounded (historySize frames), so replay is enqueued without the overflow
      // check; live events after it are checked as usual.
      for (const e of t.entries()) if (e.id > after) sub.c.enqueue(e.frame);
    }
    t.subs.add(sub);
    core.count++;
    opts.signal?.addEventListener("abort", sub, { once: true });
    return stream;
  }

  /**
   * Ends every stream of a topic (e.g. on logout), optionally telling clients when to retry.
   *
   * @example
   * ```ts
   * hub.closeTopic(ext);                          // logout
   * hub.closeTopic(ext, { retryMs: 60_000 });     // "come back in a minute"
   * ```
   */
  closeTopic(topic: string, opts: CloseTopicOptions = {}): void {
    const core = this.#core;
    const t = core.topics.get(topic);
    if (!t) return;
    if (!opts.keepHistory) t.clearHistory();
    const frame = opts.retryMs === undefined ? undefined : retryFrame(opts.retryMs);
    for (const sub of [...t.subs]) {
      if (frame) {
        try {
          sub.c.enqueue(frame);
        } catch {
          // stream already gone; end() below cleans up
        }
      }
      core.end(sub, "close");
    }
    if (t.subs.size === 0 && t.len === 0 && core.topics.get(topic) === t) {
      core.topics.delete(topic);
      if (core.topics.size === 0) core.stopTimer();
    }
  }

  /**
   * Graceful shutdown of all streams: sends `retry:` (if given) and ends them. History is kept,
   * so clients reconnecting to a hub that lives on get their replay.
   *
   * @example
   * ```ts
   * hub.closeAll(5_000);
   * ```
   */
  closeAll(retryMs?: number): void {
    for (const name of [...this.#core.topics.keys()]) {
      this.closeTopic(name, { retryMs, keepHistory: true });
    }
  }

  /** Number of connected subscribers, of one topic or in total. */
  subscriberCount(topic?: string): number {
    if (topic === undefined) return this.#core.count;
    return this.#core.topics.get(topic)?.subs.size ?? 0;
  }

  /** Topics with at least one subscriber. */
  topics(): string[] {
    const out: string[] = [];
    for (const t of this.#core.topics.values()) if (t.subs.size > 0) out.push(t.name);
    return out;
  }

  /** Ends all streams, drops all history and stops the heartbeat timer; later subscriptions end at once. */
  close(): void {
    const core = this.#core;
    this.closeAll();
    core.closed = true;
    core.stopTimer();
    core.topics.clear();
  }
}
