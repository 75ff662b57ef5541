/**
 * The Flex API's live feed from one MX into the SSE hub:
 *
 * - call events of monitored extensions go to one topic per extension ({@link flexTopic})
 *   and through the {@link CallTracker}, which knows every extension's current calls;
 * - presence changes (`event: presence`) and address-book changes (`event: contact`) are
 *   published once to one broadcast topic ({@link FLEX_BROADCAST}) that every stream
 *   attaches to: one frame, encoded once, for all streams;
 * - a stream that resumes after a gap starts with `event: snapshot`: the user's calls and
 *   everyone's presence (the presence part encoded once per address-book version and shared
 *   by every stream that needs it).
 *
 * The own and the broadcast topic keep separate histories, so busy presence traffic never
 * pushes a user's own call events out of replay.
 *
 * @example
 * ```ts
 * import { SseHub } from "../sse/hub.ts";
 * const feed = new FlexFeed(mx, new SseHub());
 * const stream = feed.subscribe("3095", { lastEventId: req.headers.get("last-event-id") });
 * feed.currentCalls("3095"); // [{ callId, deviceId, state, direction, peer, peerName?, since }]
 * feed.close();
 * ```
 *
 * @module
 */
import type { MxSession } from "./session.ts";
import type { SseHub } from "../sse/hub.ts";
import { encodeEventJson } from "../csta/mod.ts";
import { CallTracker, type TrackedCall } from "./call_tracker.ts";
import { flexContact, flexPresence } from "./contact_json.ts";

/** The broadcast topic of the Flex API's presence and contact changes. */
export const FLEX_BROADCAST = "flex:*";

/**
 * SSE topic of an extension on the Flex MX.
 *
 * @example
 * ```ts
 * flexTopic("3095"); // "flex:3095"
 * ```
 */
export function flexTopic(ext: string): string {
  return `flex:${ext}`;
}

/** A current call as `GET /api/calls` and the snapshot show it. */
export interface CurrentCall {
  callId: number;
  deviceId: string;
  state: TrackedCall["state"];
  direction: TrackedCall["direction"];
  peer: string;
  /** Present when known: from the MX's events, else the address book. */
  peerName?: string;
  since: number;
}

/** Options of {@link FlexFeed}. */
export interface FlexFeedOptions {
  /** Presence and contact changes kept for replay; default 4096. */
  broadcastHistorySize?: number;
  /** The call tracker (tests inject a clock through it); default a new one. */
  calls?: CallTracker;
}

/** Options of {@link FlexFeed.subscribe}. */
export interface FeedSubscribeOptions {
  lastEventId?: string | null;
  signal?: AbortSignal;
  onClose?: () => void;
}

const enc = new TextEncoder();

/**
 * @example
 * ```ts
 * const feed = new FlexFeed(flexMx, hub);
 * ```
 */
export class FlexFeed {
  /** Every monitored extension's current calls. */
  readonly calls: CallTracker;
  #mx: MxSession;
  #hub: SseHub;
  #unlink: (() => void)[];
  #presence?: { version: number; bytes: Uint8Array };

  /** Links `mx` to `hub` until {@link close}. */
  constructor(mx: MxSession, hub: SseHub, opts: FlexFeedOptions = {}) {
    this.#mx = mx;
    this.#hub = hub;
    this.calls = opts.calls ?? new CallTracker();
    hub.reserveTopic(FLEX_BROADCAST, { historySize: opts.broadcastHistorySize ?? 4096 });
    this.#unlink = [
      mx.onCallEvent((ext, ev) => {
        if (mx.holders(ext) === 0) return;
        // The tracker first: a client reading GET /api/calls after the event sees it applied.
        this.calls.apply(ext, ev);
        hub.publish(flexTopic(ext), ev.name, encodeEventJson(ev));
      }),
      mx.onPresence((c) => {
        if (c.ext) hub.publish(FLEX_BROADCAST, "presence", JSON.stringify(flexPresence(c)));
      }),
      mx.onContactChange((action, c) => {
        if (!c.ext) return;
        hub.publish(FLEX_BROADCAST, "contact", JSON.stringify({ action, contact: flexContact(c) }));
      }),
      // No more events for it: what the tracker knows would go stale.
      mx.onRelease((ext) => this.calls.forget(ext)),
      // Calls may change unseen while the session is down: forget them all.
      mx.onState((s) => {
        if (s !== "connected") this.calls.clear();
      }),
    ];
  }

  /**
   * The current calls of an extension, oldest first, with the peer's name from the address
   * book when the MX's events gave none.
   *
   * @example
   * ```ts
   * feed.currentCalls("3095");
   * ```
   */
  currentCalls(ext: string): CurrentCall[] {
    return this.calls.list(ext).map((c) => {
      const ct = c.peer && !c.peerName ? this.#mx.contactByExt(c.peer) : undefined;
      const peerName = c.peerName || (ct ? `${ct.firstName} ${ct.lastName}`.trim() : "");
      const { callId, deviceId, state, direction, peer, since } = c;
      // Key order as documented: peerName (when known) before since.
      return peerName
        ? { callId, deviceId, state, direction, peer, peerName, since }
        : { callId, deviceId, state, direction, peer, since };
    });
  }

  /**
   * Opens the event stream of `ext`: its call events and every presence and contact change,
   * resumed after `lastEventId` by replay or, after a gap, by a snapshot.
   *
   * @example
   * ```ts
   * return sseResponse(feed.subscribe(claims.ext, { lastEventId, signal, onClose }));
   * ```
   */
  subscribe(ext: string, o: FeedSubscribeOptions = {}): ReadableStream<Uint8Array> {
    return this.#hub.subscribe(flexTopic(ext), {
      lastEventId: o.lastEventId,
      signal: o.signal,
      onClose: o.onClose,
      broadcast: FLEX_BROADCAST,
      snapshot: () => this.snapshot(ext),
    });
  }

  /**
   * The snapshot's `data:` as byte parts: `{"calls":[…],"presence":[…]}`, where the presence
   * part is one shared array per address-book version.
   */
  snapshot(ext: string): Uint8Array[] {
    const calls = JSON.stringify(this.currentCalls(ext));
    return [enc.encode(`{"calls":${calls},"presence":`), this.#presenceBytes(), enc.encode("}")];
  }

  /** Every contact's presence as JSON bytes, rebuilt only when the address book changed. */
  #presenceBytes(): Uint8Array {
    const mx = this.#mx;
    if (this.#presence?.version !== mx.contactsVersion) {
      let list: ReturnType<typeof flexPresence>[] = [];
      try {
        list = mx.contacts().filter((c) => c.ext).map(flexPresence);
      } catch {
        // Address book not loaded yet: nobody's presence is known.
      }
      this.#presence = { version: mx.contactsVersion, bytes: enc.encode(JSON.stringify(list)) };
    }
    return this.#presence.bytes;
  }

  /** Ends the link (the hub and its streams are the owner's). */
  close(): void {
    for (const f of this.#unlink) f();
    this.#unlink = [];
  }
}
