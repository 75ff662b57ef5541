/**
 * Call push fan-out (mx-protocol §6.6, issue 14): every device of the called user gets each
 * lifecycle step of a call once — `incoming`, then one follow-up — claimed through
 * {@link PushDedupe} so repeated events and several server processes do not multiply it.
 * Deliveries run through a bounded queue, transient failures are retried with exponential
 * backoff (honouring `Retry-After`) while the push is still worth delivering, tokens the
 * services report dead are deleted, and each success records the device's last-success time.
 *
 * @module
 */
import type { PushDedupe } from "../store/dedupe.ts";
import type { StoredToken, TokenStore } from "../store/tokens.ts";
import { DEFAULT_RING_TIMEOUT_MS, expiresAt } from "./rules.ts";
import {
  appKey,
  errorText,
  type PushEvent,
  type PushMessage,
  type PushResult,
  type PushSender,
  redact,
} from "./types.ts";

/** Per-app-key counters returned by {@link PushDispatcher.stats}. */
export interface PushStats {
  /** Pushes the service accepted. */
  sent: number;
  /** Pushes given up on (permanent error, retries exhausted, expired). */
  failed: number;
  /** Pushes refused because the token is dead (the token was deleted). */
  pruned: number;
  /** Retry attempts made. */
  retried: number;
}

/**
 * Receives the outcome of every push, per app key and event (structurally what
 * `ServerMetrics.push` implements).
 */
export interface PushObserver {
  /** The service accepted the push `latencyMs` after the MX event arrived. */
  sent(app: string, event: PushEvent, latencyMs: number): void;
  /** The push was given up on. */
  failed(app: string, event: PushEvent): void;
  /** The token was dead and has been deleted. */
  pruned(app: string, event: PushEvent): void;
}

/** Options of {@link PushDispatcher}. */
export interface PushDispatcherOptions {
  store: TokenStore;
  dedupe: PushDedupe;
  /** Sender per app key, from `loadPushConfig`. */
  apps: Map<string, PushSender>;
  /** How long an incoming call can be answered; default 30 s (`pushRingTimeout`). */
  ringTimeoutMs?: number;
  /** Deliveries in flight at once; default 8. */
  concurrency?: number;
  /** Retries after the first attempt; default 3. */
  maxRetries?: number;
  /** First backoff; doubles per retry; default 500 ms. */
  baseBackoffMs?: number;
  /** Metrics sink. */
  observer?: PushObserver;
  /** Log sink; tokens are redacted before they reach it. Default: none. */
  log?: (msg: string) => void;
  /** Sleep used between retries (tests record delays instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** One lifecycle step of one call, to push to one user's devices. */
export interface CallPush {
  /** MX serial number or config name (as the tokens were stored). */
  mx: string;
  /** The called user's JID. */
  jid: string;
  /** `globalCallId` when known, else `callId`: identifies the call for claims and collapse. */
  callKey: string;
  /** Which step; default `incoming`. */
  event?: PushEvent;
  /** Push payload (mx-protocol §4.8 plus `event`, `reason`). */
  payload: Record<string, unknown>;
  /** When the MX event arrived, ms since the epoch; default now. Sets expiry and latency. */
  eventAt?: number;
  /** Visible alert text (optional; senders have defaults). */
  alert?: PushMessage["alert"];
}

const NO_OBSERVER: PushObserver = { sent() {}, failed() {}, pruned() {} };

/**
 * Sends call pushes.
 *
 * @example
 * ```ts
 * const d = new PushDispatcher({ store, dedupe, apps, log: console.log });
 * void d.push({ mx: "63022", jid, callKey: globalCallId, event: "incoming", payload });
 * await d.close();
 * ```
 */
export class PushDispatcher {
  #o: Required<Omit<PushDispatcherOptions, "log" | "observer">> & {
    log: (msg: string) => void;
    observer: PushObserver;
  };
  #stats = new Map<string, PushStats>();
  #inflight = new Set<Promise<void>>();
  #active = 0;
  #waiting: Array<() => void> = [];
  #closed = false;

  /** @param opts see {@link PushDispatcherOptions} */
  constructor(opts: PushDispatcherOptions) {
    this.#o = {
      ringTimeoutMs: DEFAULT_RING_TIMEOUT_MS,
      concurrency: 8,
      maxRetries: 3,
      baseBackoffMs: 500,
      log: () => {},
      observer: NO_OBSERVER,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: Date.now,
      ...opts,
    };
  }

  /**
   * Pushes one step of a call to every device of the user, once per (mx, call, step, device)
   * across processes (all follow-ups share one claim, so a device gets at most one). Resolves
   * when those deliveries have finished (delivered, dropped or given up); never rejects, so
   * callers on the event path may ignore the promise.
   */
  push(call: CallPush): Promise<void> {
    const event = call.event ?? "incoming";
    if (this.#closed) {
      this.#o.log(`push: dispatcher closed; ${event} of call ${call.callKey} not pushed`);
      return Promise.resolve();
    }
    const p = this.#fanOut(call, event).catch((e) => {
      this.#o.log(`push: ${event} of call ${call.callKey} for ${call.jid}: ${errorText(e)}`);
    });
    this.#inflight.add(p);
    p.finally(() => this.#inflight.delete(p));
    return p;
  }

  /** Counters per app key since start. */
  stats(): Record<string, PushStats> {
    return Object.fromEntries([...this.#stats].map(([k, v]) => [k, { ...v }]));
  }

  /**
   * Refuses new pushes, waits for deliveries in flight (including their retries), then closes
   * every sender (their HTTP/2 connections and HTTP clients): the dispatcher owns them.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    for (const sender of this.#o.apps.values()) sender.close();
  }

  async #fanOut(call: CallPush, event: PushEvent): Promise<void> {
    const eventAt = call.eventAt ?? this.#o.now();
    const tokens = await this.#o.store.listForUser(call.mx, call.jid);
    const message: PushMessage = {
      event,
      payload: call.payload,
      collapseId: call.callKey,
      expiresAt: expiresAt(event, eventAt, this.#o.ringTimeoutMs),
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
      // A PushKit token takes only `incoming`; the rest goes to the device's alert token.
      const target = event === "incoming" || !sender.voip ? t.token : t.alertToken;
      if (!target) return;
      if (!await this.#o.dedupe.claim(await claimKey(call, event, t))) return;
      await this.#deliver({ key, sender, t, target, message, eventAt });
    }));
  }

  async #deliver(d: Delivery): Promise<void> {
    const { key, sender, t, target, message } = d;
    const event = message.event!;
    const stats = this.#counter(key);
    const who = `${key} ${event} ${redact(target)}`;
    const obs = this.#o.observer;
    for (let attempt = 0;; attempt++) {
      if (this.#o.now() >= message.expiresAt!) {
        stats.failed++;
        obs.failed(key, event);
        this.#o.log(`push: ${who}: expired before delivery`);
        return;
      }
      const r = await this.#limited(() => sender.send(target, message));
      switch (r.status) {
        case "ok": {
          const now = this.#o.now();
          stats.sent++;
          obs.sent(key, event, Math.max(0, now - d.eventAt));
          await this.#o.store.markSuccess(t.kind, t.app, t.token, now).catch((e) =>
            this.#o.log(`push: ${who}: last-success time not stored: ${errorText(e)}`)
          );
          return;
        }
        case "invalid":
          stats.pruned++;
          obs.pruned(key, event);
          if (target === t.token) {
            this.#o.log(`push: ${who}: ${r.reason}; token removed`);
            await this.#o.store.remove(t.kind, t.app, t.token);
          } else {
            // Only the alert token is dead: the VoIP token still rings.
            this.#o.log(`push: ${who}: ${r.reason}; alert token removed`);
            await this.#o.store.removeAlertToken(t.kind, t.app, t.token, target);
          }
          return;
        case "failed":
          stats.failed++;
          obs.failed(key, event);
          this.#o.log(`push: ${who}: ${r.reason}`);
          return;
      }
      const delay = Math.max(this.#o.baseBackoffMs * 2 ** attempt, r.retryAfterMs ?? 0);
      if (attempt >= this.#o.maxRetries || this.#o.now() + delay >= message.expiresAt!) {
        stats.failed++;
        obs.failed(key, event);
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
    if (!s) this.#stats.set(key, s = { sent: 0, failed: 0, pruned: 0, retried: 0 });
    return s;
  }
}

/** One push to one device, with what its outcome is booked against. */
interface Delivery {
  key: string;
  sender: PushSender;
  t: StoredToken;
  /** The token pushed to: the registration's token, or its alert token. */
  target: string;
  message: PushMessage;
  eventAt: number;
}

/**
 * One claim per (mx, call, slot, device), where the slot is `incoming` or `outcome` (every
 * follow-up shares one, so processes that saw a call end differently still send one).
 * Hashed so the KV key stays short and the dedupe table holds no copy of device tokens.
 */
async function claimKey(call: CallPush, event: PushEvent, t: StoredToken): Promise<string> {
  const slot = event === "incoming" ? "incoming" : "outcome";
  const raw = JSON.stringify([call.mx, call.callKey, slot, t.kind, t.app, t.token]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(raw));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
