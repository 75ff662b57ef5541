/**
 * How each lifecycle push travels, in one table (mx-protocol §7.15, issue 14). Senders ask
 * these functions; nothing else in `lib/push` decides topics, push types, priorities or
 * lifetimes.
 *
 * | event | APNs, VoIP app | APNs, alert app | FCM | lifetime |
 * |---|---|---|---|---|
 * | `incoming` | `voip`, `<bundle>.voip`, priority 10 | `alert`, priority 10 | data, high | ring timeout |
 * | `answered`, `answered_elsewhere`, `cancelled` | `background`, `<bundle>`, priority 5 | same | data, high | ring timeout |
 * | `missed` | `alert` (loc-key), `<bundle>`, priority 10 | same | data + notification, normal | 24 h |
 *
 * Apple kills an app that does not report a VoIP push to CallKit at once, and wants cancel
 * and "new details" to come another way, so only `incoming` is ever a VoIP push. Background
 * pushes must use priority 5 (Apple refuses 10 for them). Every push of a call shares its
 * collapse id, so a device shows one entry per call.
 *
 * @module
 */
import type { PushEvent } from "./types.ts";

/** Default ring timeout: how long an incoming call can still be answered. */
export const DEFAULT_RING_TIMEOUT_MS = 30_000;
/** How long a missed-call alert stays deliverable. */
export const MISSED_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Localisation keys of the missed-call alert. They are the English texts themselves (the
 * iOS convention): an app without translations shows them as they are, `%@` replaced by
 * the caller. Android resource names cannot hold spaces, so FCM gets resource names and
 * falls back to the plain `title`/`body` when the app lacks them.
 */
export const MISSED_LOC = Object.freeze({
  apnsTitleKey: "Missed call",
  apnsBodyKey: "Missed call from %@",
  fcmTitleKey: "mxflex_missed_call_title",
  fcmBodyKey: "mxflex_missed_call_body",
});

/** APNs headers that depend on the event. */
export interface ApnsRoute {
  /** `voip` = `<bundle>.voip` (PushKit token); `bundle` = the app's own topic (alert token). */
  topic: "voip" | "bundle";
  /** `apns-push-type`. */
  pushType: "voip" | "alert" | "background";
  /** `apns-priority`. */
  priority: 10 | 5;
}

/**
 * The APNs route of a push.
 *
 * @param voipApp the app is configured with `voip: true`
 *
 * @example
 * ```ts
 * apnsRoute("cancelled", true); // { topic: "bundle", pushType: "background", priority: 5 }
 * ```
 */
export function apnsRoute(event: PushEvent, voipApp: boolean): ApnsRoute {
  switch (event) {
    case "incoming":
      return voipApp
        ? { topic: "voip", pushType: "voip", priority: 10 }
        : { topic: "bundle", pushType: "alert", priority: 10 };
    case "missed":
      return { topic: "bundle", pushType: "alert", priority: 10 };
    default:
      return { topic: "bundle", pushType: "background", priority: 5 };
  }
}

/** FCM message options that depend on the event. */
export interface FcmRoute {
  /** `android.priority`. */
  priority: "high" | "normal";
  /** Whether a `notification` block (shown by the system) is added. */
  notification: boolean;
}

/**
 * The FCM route of a push: data messages throughout, high priority while the phone may be
 * ringing, a notification block for the missed call.
 *
 * @example
 * ```ts
 * fcmRoute("missed"); // { priority: "normal", notification: true }
 * ```
 */
export function fcmRoute(event: PushEvent): FcmRoute {
  return event === "missed"
    ? { priority: "normal", notification: true }
    : { priority: "high", notification: false };
}

/**
 * When a push expires, ms since the epoch. `incoming` and the stop-ringing follow-ups are
 * worth delivering for one ring timeout after their MX event (a phone cannot ring longer
 * for it); a missed-call alert for {@link MISSED_TTL_MS}.
 *
 * @param eventAt when MXFlex received the MX event, ms since the epoch
 *
 * @example
 * ```ts
 * expiresAt("incoming", Date.now(), DEFAULT_RING_TIMEOUT_MS);
 * ```
 */
export function expiresAt(event: PushEvent, eventAt: number, ringTimeoutMs: number): number {
  return eventAt + (event === "missed" ? MISSED_TTL_MS : ringTimeoutMs);
}

/** Title, body and localisation arguments of a missed-call alert. */
export interface MissedText {
  /** Default English title. */
  title: string;
  /** Default English body. */
  body: string;
  /** `loc-args` / `body_loc_args`: the caller. */
  args: string[];
}

/**
 * The missed-call text for a payload: the caller is `callingDevice` (the number), since the
 * seed payload carries no display name.
 *
 * @example
 * ```ts
 * missedText({ callingDevice: "3044" }); // { title: "Missed call", body: "Missed call from 3044", args: ["3044"] }
 * ```
 */
export function missedText(payload: Record<string, unknown>): MissedText {
  const caller = typeof payload.callingDevice === "string" && payload.callingDevice
    ? payload.callingDevice
    : "unknown caller";
  return {
    title: MISSED_LOC.apnsTitleKey,
    body: MISSED_LOC.apnsBodyKey.replace("%@", caller),
    args: [caller],
  };
}
