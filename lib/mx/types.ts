/**
 * The data types routes and the composition root need from the MX layer, so that nothing
 * above `lib/mx` imports `lib/csta`. They are the CSTA client's own (wire-neutral) types,
 * re-exported; the HTTP layer decides how each is rendered as JSON.
 *
 * @example
 * ```ts
 * import type { Contact } from "../lib/mx/types.ts";
 * const name = (c: Contact) => `${c.firstName} ${c.lastName}`;
 * ```
 *
 * @module
 */
import type { Credentials } from "../csta/mod.ts";

export type {
  Backoff,
  CallAction,
  CallEvent,
  CallLogRecord,
  ClientState,
  Contact,
  LoginInfo,
  MakeCallResult,
  Voicemail,
  VoicemailDownload,
  WireLogger,
} from "../csta/mod.ts";

/** `loginRequest` attributes of a user session, e.g. `{ platform: "iPhone", version: "1.0" }`. */
export type UserLoginAttrs = Omit<Credentials, "type" | "userName" | "password">;
