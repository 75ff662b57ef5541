/**
 * A change feed on Deno KV: how instances sharing one database learn what the others changed,
 * without a message bus and without reading KV on every request.
 *
 * Key layout (per feed name):
 *
 * - `["feed", name, "head"]` → the sequence number of the newest entry (a number);
 * - `["feed", name, "log", seq]` → one change, written with `expireIn` (`logTtlMs`).
 *
 * A writer commits its own mutations, the next log entry and the new head in one atomic
 * operation checked against the head it read, so the log is gap-free and totally ordered
 * (a concurrent writer makes the commit fail and the append is retried).
 *
 * A follower reads the head when `kv.watch` reports a change (in-process and on KV Connect /
 * Deno Deploy) and on a short timer (`pollMs`, 250 ms by default): `watch` does not see writes
 * made by another process on the same local SQLite file (denoland/deno#21640, checked on Deno
 * 2.9.6 by `tests/change_feed_test.ts`), so the timer is what carries changes between the
 * processes of one host. One `get` per tick; the log is only listed when the head moved, and
 * then only the entries after the last one applied. When entries are missing (the follower was
 * away longer than `logTtlMs`, or started fresh) or the head went backwards, the consumer
 * resyncs from the data itself; a periodic resync (`resyncEveryMs`) repairs anything else.
 *
 * @example
 * ```ts
 * const feed = new ChangeFeed<{ jti: string }>(kv, "tokens");
 * await feed.follow({
 *   apply: (changes) => changes.forEach((c) => console.log("changed", c.jti)),
 *   resync: () => console.log("reload everything"),
 * });
 * await feed.append({ jti: "abc" }, (op) => op.set(["token", "abc"], 1));
 * feed.close();
 * ```
 *
 * @module
 */
import { retryLocked } from "./retry_locked.ts";

/** Pause before watching again after `kv.watch` failed, ms. */
const WATCH_RETRY_MS = 1000;

/** Options for {@link ChangeFeed}. */
export interface ChangeFeedOptions {
  /** How often the head is read, ms; default 250 (0 = never: watch only). */
  pollMs?: number;
  /** How long log entries stay, ms; default 10 minutes. A longer absence means a resync. */
  logTtlMs?: number;
  /** A full resync this often, ms; default 5 minutes (0 = only on a gap). */
  resyncEveryMs?: number;
  /** Also follow the head with `kv.watch`; default true. */
  watch?: boolean;
  /** Where failures of a tick go (KV errors, a failing consumer); default ignored. */
  onError?: (err: unknown) => void;
}

/** What a follower does with the feed. */
export interface FeedConsumer<T> {
  /** Applies new changes in order. Must be idempotent: a change may be seen twice. */
  apply(changes: T[]): void | Promise<void>;
  /** Rebuilds local state from the data itself (start-up, gaps, periodically). */
  resync(): void | Promise<void>;
}

/**
 * One named feed.
 *
 * @example
 * ```ts
 * const feed = new ChangeFeed<string>(kv, "push", { pollMs: 250 });
 * await feed.append("43884851147406145");
 * ```
 */
export class ChangeFeed<T> {
  readonly name: string;
  #kv: Deno.Kv;
  #head: Deno.KvKey;
  #log: Deno.KvKey;
  #pollMs: number;
  #logTtlMs: number;
  #resyncEveryMs: number;
  #watch: boolean;
  #onError: (err: unknown) => void;
  #consumer?: FeedConsumer<T>;
  #applied = 0;
  #running?: Promise<void>;
  #again = false;
  #resyncDue = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #watcher?: ReadableStreamDefaultReader<unknown>;
  #wake?: () => void;
  #closed = false;

  /**
   * @param kv the shared database
   * @param name the feed's name (a KV key part)
   * @param opts see {@link ChangeFeedOptions}
   */
  constructor(kv: Deno.Kv, name: string, opts: ChangeFeedOptions = {}) {
    this.name = name;
    this.#kv = kv;
    this.#head = ["feed", name, "head"];
    this.#log = ["feed", name, "log"];
    this.#pollMs = opts.pollMs ?? 250;
    this.#logTtlMs = opts.logTtlMs ?? 10 * 60_000;
    this.#resyncEveryMs = opts.resyncEveryMs ?? 5 * 60_000;
    this.#watch = opts.watch ?? true;
    this.#onError = opts.onError ?? (() => {});
  }

  /** Sequence number of the last change applied by this follower (0 before any). */
  get applied(): number {
    return this.#applied;
  }

  /**
   * Appends one change, committed atomically with whatever `mutate` adds to the operation
   * (sets and deletes; its own `check`s would make the append retry forever). Returns the
   * change's sequence number.
   *
   * @example
   * ```ts
   * await feed.append({ op: "del", jti }, (op) => op.delete(["flex-token", jti]));
   * ```
   */
  append(change: T, mutate?: (op: Deno.AtomicOperation) => void): Promise<number> {
    return retryLocked(async () => {
      for (;;) {
        const head = await this.#kv.get<number>(this.#head);
        const seq = (head.value ?? 0) + 1;
        const op = this.#kv.atomic().check(head);
        mutate?.(op);
        op.set([...this.#log, seq], change, { expireIn: this.#logTtlMs })
          .set(this.#head, seq);
        if ((await op.commit()).ok) return seq;
      }
    });
  }

  /**
   * Starts following: reads the head, lets the consumer resync, then applies every change
   * after that head as it comes. Resolves after the first resync.
   */
  async follow(consumer: FeedConsumer<T>): Promise<void> {
    if (this.#consumer) throw new Error(`feed ${this.name} is followed already`);
    this.#consumer = consumer;
    await this.#run(true);
    if (this.#closed) return;
    if (this.#pollMs > 0) this.#every(this.#pollMs, () => void this.catchUp());
    if (this.#resyncEveryMs > 0) {
      this.#every(this.#resyncEveryMs, () => {
        this.#resyncDue = true;
        void this.catchUp();
      });
    }
    if (this.#watch) void this.#follow();
  }

  /**
   * Applies what is new now (the timer and the watcher call this; tests may too). Concurrent
   * calls coalesce into one more run.
   */
  catchUp(): Promise<void> {
    if (!this.#consumer || this.#closed) return Promise.resolve();
    return this.#run(false);
  }

  /** Stops the timers and the watcher. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#watcher?.cancel().catch(() => {});
    this.#wake?.();
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    Deno.unrefTimer(t);
    this.#timers.push(t);
  }

  /** Runs `kv.watch` on the head; after a failure (a remote KV going away) it starts again. */
  async #follow(): Promise<void> {
    while (!this.#closed) {
      const reader = this.#kv.watch([this.#head]).getReader();
      this.#watcher = reader;
      try {
        for (;;) {
          const { done } = await reader.read();
          if (done) return;
          void this.catchUp();
        }
      } catch (err) {
        if (this.#closed) return;
        this.#onError(err);
        // The timer keeps the feed going meanwhile; close() ends the pause.
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => this.#wake?.(), WATCH_RETRY_MS);
          this.#wake = () => {
            clearTimeout(t);
            this.#wake = undefined;
            resolve();
          };
        });
      }
    }
  }

  /** One run at a time; a request during a run schedules exactly one more. */
  #run(resync: boolean): Promise<void> {
    if (resync) this.#resyncDue = true;
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#tick();
        } catch (err) {
          // Nothing advanced; the next tick tries again (with a resync: the consumer may have
          // applied part of a batch).
          this.#resyncDue = true;
          this.#onError(err);
        }
      } while (this.#again && !this.#closed);
    })().finally(() => this.#running = undefined);
    return this.#running;
  }

  async #tick(): Promise<void> {
    const consumer = this.#consumer!;
    const head = (await retryLocked(() => this.#kv.get<number>(this.#head))).value ?? 0;
    if (!this.#resyncDue && head === this.#applied) return;
    if (!this.#resyncDue && head > this.#applied) {
      const changes: T[] = [];
      let next = this.#applied + 1;
      const iter = this.#kv.list<T>({
        start: [...this.#log, next],
        end: [...this.#log, head + 1],
      });
      for await (const e of iter) {
        if (e.key[3] !== next) break; // a gap: expired entries
        changes.push(e.value);
        next++;
      }
      if (next === head + 1) {
        await consumer.apply(changes);
        this.#applied = head;
        return;
      }
    }
    // Start-up, a gap, a head that went backwards (database replaced), or the periodic one:
    // everything up to `head` is in the data the consumer reads now.
    this.#resyncDue = false;
    await consumer.resync();
    this.#applied = head;
  }
}
