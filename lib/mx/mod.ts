/**
 * The MX layer's public surface: what routes, the SSE link, pushes and the composition root
 * use. Everything below it (`lib/csta`) stays out of sight.
 *
 * | export                | job                                                            |
 * |-----------------------|----------------------------------------------------------------|
 * | `MxSession`           | one MX: server session, address book, monitors, call operations, user sessions |
 * | `UserSession`         | one short-lived user session: call log, callback call, voicemail |
 * | `TokenMonitors`       | Flex tokens holding monitor references                         |
 * | `PushMonitors`        | push registrations holding monitors, call pushes               |
 * | `CallLifecycle`       | a call's push steps (incoming … missed) from its call events   |
 * | `FlexFeed`            | the Flex API's live feed: call events, presence, contacts, current calls |
 * | `CallTracker`         | current calls per extension from the call events               |
 * | `flexContact`, …      | contact JSON shared by the address book and the stream         |
 * | `encodeEventJson`     | a call event's JSON for SSE                                    |
 * | types                 | `Contact`, `CallLogRecord`, `Voicemail`, `CallEvent`, …        |
 *
 * @example
 * ```ts
 * import { encodeEventJson, MxSession } from "../lib/mx/mod.ts";
 * const mx = new MxSession(cfg, { log });
 * mx.onCallEvent((ext, ev) => hub.publish(`flex:${ext}`, ev.name, encodeEventJson(ev)));
 * mx.start();
 * ```
 *
 * @module
 */
export {
  type CallEventListener,
  type ContactAction,
  type ContactListener,
  MAX_USER_SESSIONS,
  MxSession,
  type MxSessionOptions,
  type PresenceListener,
  type TrustStore,
  UserSessionLimitError,
} from "./session.ts";
export { type CurrentCall, FLEX_BROADCAST, FlexFeed, flexTopic } from "./flex_events.ts";
export { CallTracker, trackCall, type TrackedCall } from "./call_tracker.ts";
export {
  flexContact,
  type FlexPresence,
  flexPresence,
  withOptionalFields,
} from "./contact_json.ts";
export {
  type CallbackOptions,
  loginSecret,
  SETTABLE_PRESENCE,
  UserSession,
} from "./user_session.ts";
export { type StreamLimits, type TokenClaims, TokenMonitors } from "./token_monitors.ts";
export { PushMonitors, type PushMonitorsOptions } from "./push_monitors.ts";
export { CallLifecycle, type CallLifecycleOptions, type LifecycleStep } from "./call_lifecycle.ts";
export type * from "./types.ts";
export { type Backoff, encodeEventJson, type WireLogger } from "../csta/mod.ts";
