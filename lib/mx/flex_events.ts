/**
 * The Flex API's call-event feed: MX call events of monitored extensions, published to the SSE
 * hub under one topic per extension. The composition root links an MX session to the hub once;
 * the `/api/events` route subscribes to {@link flexTopic} of the token's extension.
 *
 * @example
 * ```ts
 * import { SseHub } from "../sse/hub.ts";
 * const hub = new SseHub();
 * const unlink = publishFlexEvents(mx, hub);
 * hub.subscribe(flexTopic("3095")); // receives 3095's DeliveredEvent, … as JSON
 * unlink();
 * ```
 *
 * @module
 */
import type { MxSession } from "./session.ts";
import type { SseHub } from "../sse/hub.ts";
import { encodeEventJson } from "../csta/events.ts";

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

/**
 * Publishes every call event of `mx` whose extension has a monitor holder (a Flex token or a
 * push registration) to `hub` under {@link flexTopic}, event name as the SSE `event:` and
 * {@link encodeEventJson} as `data:`. Returns the function that ends the link.
 *
 * @example
 * ```ts
 * const unlink = publishFlexEvents(mx, hub);
 * ```
 */
export function publishFlexEvents(mx: MxSession, hub: SseHub): () => void {
  return mx.onCallEvent((ext, ev) => {
    if (mx.holders(ext) > 0) hub.publish(flexTopic(ext), ev.name, encodeEventJson(ev));
  });
}
