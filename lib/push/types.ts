/**
 * Shared push vocabulary: what a sender is asked to deliver, what it answers, and the
 * small helpers every sender needs (app keys, token redaction, error text); the HTTP side is
 * `gateway.ts`.
 *
 * @module
 */

/** Push service family a device token belongs to. The seed's `gfcm` maps to `fcm`. */
export type PushKind = "apns" | "fcm";

/**
 * What happened to a call that rang for the user (the `event` field of every push):
 *
 * - `incoming`: it rings (the seed's only push);
 * - `answered`: the user answered it (desk phone, another device, this device);
 * - `answered_elsewhere`: someone else took it (picked up, redirected, transferred);
 * - `cancelled`: it stopped ringing unanswered without being missed (caller hung up, the
 *   user declined);
 * - `missed`: it rang out, went to voicemail or was forwarded without the user answering.
 */
export type PushEvent = "incoming" | "answered" | "answered_elsewhere" | "cancelled" | "missed";

/**
 * Outcome of one delivery attempt to one device token.
 *
 * - `ok`: the service accepted the push.
 * - `invalid`: the token is dead (uninstalled app, wrong topic): delete it, do not retry.
 * - `retry`: a transient failure (throttling, 5xx, network); `retryAfterMs` is the
 *   service's `Retry-After` when it sent one.
 * - `failed`: a permanent failure of this push that says nothing about the token
 *   (bad payload, bad credentials, unsupported legacy API): do not retry.
 */
export type PushResult =
  | { status: "ok" }
  | { status: "invalid"; reason: string }
  | { status: "retry"; reason: string; retryAfterMs?: number }
  | { status: "failed"; reason: string };

/** One push to one device. */
export interface PushMessage {
  /** Which lifecycle step this is; it picks the transport (see `rules.ts`). Default `incoming`. */
  event?: PushEvent;
  /** Application payload (mx-protocol §4.8); keys stay top-level like the original. */
  payload: Record<string, unknown>;
  /** One id per call: the device keeps one entry per call (APNs collapse id, FCM collapse key). */
  collapseId?: string;
  /** When the push stops being worth delivering, ms since the epoch; default now + 30 s. */
  expiresAt?: number;
  /** Visible text for alert-type pushes; senders pick a default when absent. */
  alert?: { title?: string; body?: string };
}

/** A configured destination for one app key (`apns:<bundle>[~]` or `fcm:<app>`). */
export interface PushSender {
  /** Service family, for logs and stats. */
  readonly kind: PushKind;
  /**
   * A PushKit (VoIP) app: its registrations carry a VoIP token for `incoming` and, for the
   * follow-ups, the app's ordinary APNs token (`alertToken`). Absent means false.
   */
  readonly voip?: boolean;
  /** Delivers one push; never throws for service or network errors (they become results). */
  send(token: string, message: PushMessage): Promise<PushResult>;
  /** Releases HTTP clients; idempotent. */
  close(): void;
}

/**
 * The key under which a sender is registered and tokens are grouped: `"<kind>:<app>"`, where
 * `app` is the bundle id (with `~` for the APNs sandbox) or the FCM app name.
 *
 * @example
 * ```ts
 * appKey("apns", "com.xyzrd.PushTest~"); // "apns:com.xyzrd.PushTest~"
 * ```
 */
export function appKey(kind: PushKind, app: string): string {
  return `${kind}:${app}`;
}

/**
 * Shortens a secret (device token, key) for logs: first 6 characters and an ellipsis.
 *
 * @example
 * ```ts
 * redact("7C179108B7BF759AB"); // "7C1791…"
 * ```
 */
export function redact(secret: string): string {
  return `${secret.slice(0, 6)}…`;
}

/**
 * The message of a thrown value, for results and logs.
 *
 * @example
 * ```ts
 * errorText(new Error("refused")); // "refused"
 * errorText("odd"); // "odd"
 * ```
 */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
