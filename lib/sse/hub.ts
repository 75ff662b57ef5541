/**
 * Server-Sent Events broadcaster: topics (one per extension), broadcast topics (one publish
 * reaches every stream attached to them), event ids `<epoch>.<seq>` (the epoch is random per
 * hub, so ids of another process are recognised), per-topic history for `Last-Event-ID`
 * replay, a snapshot instead of a replay when events were lost, one shared heartbeat timer,
 * and bounded per-client queues.
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
 * Resuming: a `Last-Event-ID` of this hub whose later events are all still retained (in the
 * stream's topic and its broadcast topic) replays them. An id of another epoch, one older
 * than what is retained, or one that does not parse starts the stream with the subscriber's
 * `snapshot` (`event: snapshot`, id = the hub's latest) and live events after it; without a
 * `snapshot` callback, everything retained is replayed instead.
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
  /** The id epoch; default a random string of 6 base-36 characters. Tests pin it. */
  epoch?: string;
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
  /**
   * A broadcast topic (see {@link SseHub.reserveTopic}) this stream also receives: one
   * publish there reaches every stream attached to it. Replay merges both topics by id.
   */
  broadcast?: string;
  /**
   * The state to start with when the events after `lastEventId` cannot be replayed: the
   * `data:` of an `event: snapshot`, as a string or as byte parts (one line of data split
   * anywhere, so a large shared part is encoded once and queued to many streams). Called
   * synchronously inside `subscribe`, so no event falls between it and the live ones.
   */
  snapshot?: () => string | Uint8Array[];
}

/** Options for {@link SseHub.reserveTopic}. */
export interface ReserveTopicOptions {
  /** Events kept for replay; default the hub's `historySize`. */
  historySize?: number;
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
const ID_RE = /^([0-9a-z]{1,16})\.(\d{1,15})$/;
const SNAPSHOT = "snapshot";

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
 * new TextDecoder().decode(encodeEvent("k3f9.7", "Ev", "a\nb"));
 * // "id: k3f9.7\nevent: Ev\ndata: a\ndata: b\n\n"
 * ```
 */
export function encodeEvent(id: string, event: string, data: string): Uint8Array {
  let s = `id: ${id}\n`;
  if (event) s += `event: ${event.replace(/[\r\n]/g, "")}\n`;
  if (data.includes("\n") || data.includes("\r")) {
    for (const line of data.split(NEWLINE_RE)) s += `data: ${line}\n`;
  } else {
    s += `data: ${data}\n`;
  }
  return enc.encode(s + "\n");
}

/** A random id epoch: 6 base-36 characters. */
function randomEpoch(): string {
  const b = crypto.getRandomValues(new Uint32Array(2));
  return ((b[0] % 2176782336) + 2176782336).toString(36).slice(1, 7);
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
  /** Id (seq) of the newest event no longer retained: a client behind it has a gap. */
  floor = 0;

  /** @param permanent reserved topics are never dropped when empty */
  constructor(readonly name: string, readonly cap: number, readonly permanent = false) {
    this.ring = new Array(cap);
  }

  push(e: HistoryEntry): void {
    if (this.cap === 0) {
      this.floor = e.id;
      return;
    }
    if (this.len < this.cap) {
      this.ring[(this.head + this.len) % this.cap] = e;
      this.len++;
    } else {
      this.floor = this.ring[this.head]!.id;
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.cap;
    }
  }

  /** Drops entries older than `cutoff`. */
  prune(cutoff: number): void {
    while (this.len > 0) {
      const e = this.ring[this.head]!;
      if (e.at >= cutoff) break;
      this.floor = e.id;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.cap;
      this.len--;
    }
  }

  /** Forgets the history; everything up to `seq` counts as lost. */
  clearHistory(seq: number): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.len = 0;
    this.floor = seq;
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
    readonly broadcast: Topic | undefined,
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
  readonly epoch: string;
  /** Floors of topics dropped while empty, so a topic created again still knows its gap. */
  readonly floors = new Map<string, number>();
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
    this.epoch = opts.epoch ?? randomEpoch();
    if (!/^[0-9a-z]{1,16}$/.test(this.epoch)) throw new RangeError("epoch: 1-16 of [0-9a-z]");
  }

  id(seq: number): string {
    return `${this.epoch}.${seq}`;
  }

  topic(name: string, cap = this.historySize, permanent = false): Topic {
    let t = this.topics.get(name);
    if (!t) {
      t = new Topic(name, cap, permanent);
      t.floor = this.floors.get(name) ?? 0;
      this.floors.delete(name);
      this.topics.set(name, t);
      this.ensureTimer();
    }
    return t;
  }

  /** Drops a topic nobody uses and that retains nothing (its floor is remembered). */
  dropIfIdle(t: Topic): void {
    if (t.permanent || t.subs.size > 0 || t.len > 0 || this.topics.get(t.name) !== t) return;
    this.topics.delete(t.name);
    if (t.floor > 0) this.floors.set(t.name, t.floor);
    if (this.topics.size === 0) this.stopTimer();
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
    sub.broadcast?.subs.delete(sub);
    sub.signal?.removeEventListener("abort", sub);
    try {
      if (how === "close") sub.c.close();
      else if (how === "error") sub.c.error(SLOW_CONSUMER);
    } catch {
      // Already closed or errored by the other side.
    }
    this.dropIfIdle(t);
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
    for (const t of [...this.topics.values()]) {
      t.prune(cutoff);
      // A stream is pinged through its own topic only, not its broadcast topic as well.
      for (const sub of t.subs) if (sub.topic === t) this.send(sub, PING);
      this.dropIfIdle(t);
    }
    if (this.topics.size === 0) this.stopTimer();
  }

  /** Whether a client that saw `seq` missed an event no longer retained in `t`. */
  gap(t: Topic | undefined, seq: number): boolean {
    return t !== undefined && t.floor > seq;
  }

  /** The snapshot frame, as parts queued one after the other. */
  snapshotFrame(data: string | Uint8Array[]): Uint8Array[] {
    if (typeof data === "string") return [encodeEvent(this.id(this.seq), SNAPSHOT, data)];
    return [
      enc.encode(`id: ${this.id(this.seq)}\nevent: ${SNAPSHOT}\ndata: `),
      ...data,
      enc.encode("\n\n"),
    ];
  }
}

/** Yields the entries of two id-ordered histories after `after`, merged in id order. */
function* merged(a: Topic, b: Topic | undefined, after: number): Generator<HistoryEntry> {
  const x = [...a.entries()].filter((e) => e.id > after);
  const y = b ? [...b.entries()].filter((e) => e.id > after) : [];
  let i = 0, j = 0;
  while (i < x.length || j < y.length) {
    if (j >= y.length || (i < x.length && x[i].id < y[j].id)) yield x[i++];
    else yield y[j++];
  }
}

/**
 * The SSE broadcaster.
 *
 * @example
 * ```ts
 * const hub = new SseHub({ heartbeatMs: 15_000 });
 * const stream = hub.subscribe("3095", { lastEventId: `${hub.epoch}.41` });
 * const id = hub.publish("3095", "OriginatedEvent", '{"callId":39}'); // e.g. "k3f9q2.42"
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

  /** The id of the last published event (`<epoch>.0` before any). */
  get lastId(): string {
    return this.#core.id(this.#core.seq);
  }

  /** The random epoch of this hub's event ids. */
  get epoch(): string {
    return this.#core.epoch;
  }

  /**
   * Creates a permanent topic with its own history size, e.g. a broadcast topic that every
   * stream of a service attaches to (`subscribe(…, { broadcast })`): busy broadcasts then
   * never push a user's own events out of that user's history. Returns the name.
   *
   * @example
   * ```ts
   * hub.reserveTopic("flex:*", { historySize: 4096 });
   * hub.subscribe("flex:3095", { broadcast: "flex:*" });
   * hub.publish("flex:*", "presence", '{"ext":"3099","status":"Away"}'); // to every stream
   * ```
   */
  reserveTopic(name: string, opts: ReserveTopicOptions = {}): string {
    const core = this.#core;
    const cap = Math.max(0, Math.floor(opts.historySize ?? core.historySize));
    const t = core.topics.get(name);
    if (t?.permanent && t.cap === cap) return name;
    if (t) throw new Error(`topic ${name} already exists`);
    core.topic(name, cap, true);
    return name;
  }

  /**
   * Publishes an event to every subscriber of `topic` (and every stream attached to it, for a
   * broadcast topic) and records it in the topic's history. The frame is encoded once and
   * shared. Returns the event id (`<epoch>.<seq>`, seq monotonic per hub).
   *
   * @example
   * ```ts
   * hub.publish("3095", "DeliveredEvent", JSON.stringify(event));
   * ```
   */
  publish(topic: string, event: string, data: string): string {
    const core = this.#core;
    const id = ++core.seq;
    const eventId = core.id(id);
    if (core.closed) return eventId;
    const frame = encodeEvent(eventId, event, data);
    const t = core.topic(topic);
    const now = core.now();
    t.prune(now - core.historyTtlMs);
    t.push({ id, at: now, frame });
    for (const sub of t.subs) core.send(sub, frame);
    return eventId;
  }

  /**
   * Subscribes to a topic (and a broadcast topic). The stream starts with `retry:`, then
   * resumes after `lastEventId` (the retained events after it, or the `snapshot` when some
   * were lost or the id is not this hub's, see the module doc), then carries live events and
   * heartbeats. Without `lastEventId` it starts with live events. Cancelling the stream,
   * aborting `signal`, {@link closeTopic}, {@link closeAll} or a queue overflow end it, and
   * `onClose` runs exactly once.
   *
   * @example
   * ```ts
   * const stream = hub.subscribe("flex:3095", {
   *   lastEventId: req.headers.get("last-event-id"),
   *   broadcast: "flex:*",
   *   snapshot: () => JSON.stringify({ calls: [], presence: [] }),
   *   onClose: () => log.debug("sse closed"),
   * });
   * ```
   */
  subscribe(topic: string, opts: SubscribeOptions = {}): ReadableStream<Uint8Array> {
    const core = this.#core;
    const t = core.topic(topic);
    const b = opts.broadcast === undefined ? undefined : core.topics.get(opts.broadcast);
    // After close() no topic is left; the stream just ends below.
    if (opts.broadcast !== undefined && !b?.permanent && !core.closed) {
      throw new Error(`broadcast topic ${opts.broadcast} is not reserved`);
    }
    const sub = new Subscriber(core, t, b, opts.signal, opts.onClose);
    const stream = new ReadableStream<Uint8Array>(sub, core.strategy);
    // start() ran synchronously in the constructor, so sub.c is set.
    if (core.closed || opts.signal?.aborted) {
      core.end(sub, "close");
      return stream;
    }
    sub.c.enqueue(core.retry);
    const last = opts.lastEventId?.trim();
    if (last) {
      const cutoff = core.now() - core.historyTtlMs;
      t.prune(cutoff);
      b?.prune(cutoff);
      const m = ID_RE.exec(last);
      const seq = m && m[1] === core.epoch ? Number(m[2]) : -1;
      // History is bounded (historySize frames), and so is a snapshot, so both are enqueued
      // without the overflow check; live events after them are checked as usual.
      if (seq < 0 || seq > core.seq || core.gap(t, seq) || core.gap(b, seq)) {
        if (opts.snapshot) {
          for (const part of core.snapshotFrame(opts.snapshot())) sub.c.enqueue(part);
        } else {
          for (const e of merged(t, b, 0)) sub.c.enqueue(e.frame);
        }
      } else {
        for (const e of merged(t, b, seq)) sub.c.enqueue(e.frame);
      }
    }
    t.subs.add(sub);
    b?.subs.add(sub);
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
    if (!opts.keepHistory) t.clearHistory(core.seq);
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
    core.dropIfIdle(t);
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

  /** Number of connected subscribers, of one topic (for a broadcast topic: attached streams) or in total. */
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
    core.floors.clear();
  }
}
