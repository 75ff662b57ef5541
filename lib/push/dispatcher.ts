/**
 * Incoming-call push fan-out (mx-protocol §6.6): every token of the called user gets one
 * push per call, claimed through {@link PushDedupe} so repeated DeliveredEvents and several
 * server processes do not multiply it. Deliveries run through a bounded queue, transient
 * failures are retried with exponential backoff (honouring `Retry-After`), and tokens the
 * services report dead are deleted.
 *
 * @module
 */
import type { PushDedupe } from "../store/dedupe.ts";
import type { StoredToken, TokenStore } from "../store/tokens.ts";
import {
  appKey,
  errorText,
  type PushMessage,
  type PushResult,
  type PushSender,
  redact,
} from "./types.ts";

/** Per-app-key counters returned by {@link PushDispatcher.stats}. */
export interface PushStats {
  /** Pushes the service accepted. */
  sent: number;
  /** Pushes given up on (permanent error, retries exhausted, no time left). */
  failed: number;
  /** Pushes refused because the token is dead (the token was deleted). */
  invalid: number;
  /** Retry attempts made. */
  retried: number;
}

/** Options of {@link PushDispatcher}. */
export interface PushDispatcherOptions {
  store: TokenStore;
  dedupe: PushDedupe;
  /** Sender per app key, from `loadPushConfig`. */
  apps: Map<string, PushSender>;
  /** Deliveries in flight at once; default 8. */
  concurrency?: number;
  /** Retries after the first attempt; default 3. */
  maxRetries?: number;
  /** First backoff; doubles per retry; default 500 ms. */
  baseBackoffMs?: number;
  /** A retry that would have to wait longer than this is dropped: the call has stopped
   * ringing by then. Default 30 s (the APNs expiration MXFlex sets). */
  maxDelayMs?: number;
  /** Log sink; tokens are redacted before they reach it. Default: none. */
  log?: (msg: string) => void;
  /** Sleep used between retries (tests record delays instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
}

/** One incoming call to announce. */
export interface IncomingCall {
  /** MX serial number or config name (as the tokens were stored). */
  mx: string;
  /** The called user's JID. */
  jid: string;
  /** `globalCallId` when known, else `callId`: identifies the call for de-duplication. */
  callKey: string;
  /** Push payload (mx-protocol §4.8). */
  payload: Record<string, unknown>;
  /** Visible alert text for APNs alert pushes (optional). */
  alert?: PushMessage["alert"];
}

/**
 * Sends incoming-call pushes.
 *
 * @example
 * ```ts
 * const d = new PushDispatcher({ store, dedupe, apps, log: console.log });
 * void d.incomingCall({ mx: "63022", jid, callKey: globalCallId, payload });
 * await d.close();
 * ```
 */
export class PushDispatcher {
  #o: Required<Omit<PushDispatcherOptions, "log">> & { log: (msg: string) => void };
  #stats = new Map<string, PushStats>();
  #inflight = new Set<Promise<void>>();
  #active = 0;
  #waiting: Array<() => void> = [];
  #closed = false;

  /** @param opts see {@link PushDispatcherOptions} */
  constructor(opts: PushDispatcherOptions) {
    this.#o = {
      concurrency: 8,
      maxRetries: 3,
      baseBackoffMs: 500,
      maxDelayMs: 30_000,
      log: () => {},
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      ...opts,
    };
  }

  /**
   * Pushes the call to every token of the user, once per (mx, callKey, token). Resolves
   * when those deliveries have finished (delivered, dropped or given up); never rejects, so
   * callers on the event path may ignore the promise.
   */
  incomingCall(call: IncomingCall): Promise<void> {
    if (this.#closed) {
      this.#o.log(`push: dispatcher closed; call ${call.callKey} not pushed`);
      return Promise.resolve();
    }
    const p = this.#fanOut(call).catch((e) => {
      this.#o.log(`push: call ${call.callKey} for ${call.jid}: ${errorText(e)}`);
    });
    this.#inflight.add(p);
    p.finally(() => this.#inflight.delete(p));
    return p;
  }

  /** Counters per app key since start. */
  stats(): Record<string, PushStats> {
    return Object.fromEntries([...this.#stats].map(([k, v]) => [k, { ...v }]));
  }

  /** Refuses new calls and waits for deliveries in flight (including their retries). */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
  }

  async #fanOut(call: IncomingCall): Promise<void> {
    const tokens = await this.#o.store.listForUser(call.mx, call.jid);
    const message: PushMessage = {
      payload: call.payload,
      collapseId: call.callKey,
      alert: call.alert,
    };
    await Promise.all(tokens.map(async (t) => {
      const key = appKey(t.kind, t.app);
      const sender = this.#o.apps.get(key);
      if (!sender) {
        // Config changed since registration; keep the token in case the app comes back.
        this.#o.log(`push: ${key} is not configured; ${redact(t.token)} skipped`);
        return;
      }
      if (!await this.#o.dedupe.claim(await dedupeKey(call, t))) return;
      await this.#deliver(key, sender, t, message);
    }));
  }

  async #deliver(key: string, sender: PushSender, t: StoredToken, message: PushMessage) {
    const stats = this.#counter(key);
    const who = `${key} ${redact(t.token)}`;
    for (let attempt = 0;; attempt++) {
      const r = await this.#limited(() => sender.send(t.token, message));
      switch (r.status) {
        case "ok":
          stats.sent++;
          return;
        case "invalid":
          stats.invalid++;
          this.#o.log(`push: ${who}: ${r.reason}; token removed`);
          await this.#o.store.remove(t.kind, t.app, t.token);
          return;
        case "failed":
          stats.failed++;
          this.#o.log(`push: ${who}: ${r.reason}`);
          return;
      }
      const delay = Math.max(this.#o.baseBackoffMs * 2 ** attempt, r.retryAfterMs ?? 0);
      if (attempt >= this.#o.maxRetries || delay > this.#o.maxDelayMs) {
        stats.failed++;
        this.#o.log(`push: ${who}: ${r.reason}; giving up after ${attempt + 1} attempt(s)`);
        return;
      }
      stats.retried++;
      this.#o.log(`push: ${who}: ${r.reason}; retry in ${delay} ms`);
      // Sleep outside the concurrency slot so waiting retries do not block other pushes.
      await this.#o.sleep(delay);
    }
  }

  /** Runs `fn` inside one of `concurrency` slots; a throwing sender counts as transient. */
  async #limited(fn: () => Promise<PushResult>): Promise<PushResult> {
    if (this.#active >= this.#o.concurrency) {
      await new Promise<void>((r) => this.#waiting.push(r));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } catch (e) {
      return { status: "retry", reason: `sender error: ${errorText(e)}` };
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }

  #counter(key: string): PushStats {
    let s = this.#stats.get(key);
    if (!s) this.#stats.set(key, s = { sent: 0, failed: 0, invalid: 0, retried: 0 });
    return s;
  }
}

/**
 * One claim per (mx, call, app, token). Hashed so the KV key stays short and the dedupe
 * table does not hold a second copy of every device token.
 */
async function dedupeKey(call: IncomingCall, t: StoredToken): Promise<string> {
  const raw = JSON.stringify([call.mx, call.callKey, t.kind, t.app, t.token]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(raw));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
