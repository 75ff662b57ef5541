/**
 * The MX wire client: its public surface, as `lib/mx` and `lib/http` use it. Layers, bottom
 * up (each file one job):
 *
 * | file            | job                                                                  |
 * |-----------------|----------------------------------------------------------------------|
 * | `transport.ts`  | TLS (or plain TCP) socket, MX certificate trust; wraps socket errors |
 * | `frame.ts`      | the 8-byte frame header codec                                        |
 * | `xml.ts`        | the XML subset codec                                                 |
 * | `connection.ts` | one session: login, invoke ids, reply matching, timeouts, keep-alive |
 * | `client.ts`     | the self-healing server session: reconnect, monitors restored        |
 * | `commands/`     | typed commands by domain (session, monitors, address book, calls, call log, mail) |
 * | `events.ts`     | typed decoders of unsolicited messages (call events, address-book changes) |
 * | `errors.ts`     | every error class, all deriving from `CstaError`                     |
 *
 * The codecs (`frame.ts`, `xml.ts`) are not re-exported: only the simulator, tests and
 * benchmarks use them directly. Nothing here knows about HTTP.
 *
 * @example
 * ```ts
 * import { CstaClient, placeCall } from "./mod.ts";
 * const client = new CstaClient({ hostname, port, tls: {}, credentials });
 * client.start();
 * await client.ready();
 * await placeCall(client.connection, "3095", "3099");
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export {
  type Backoff,
  backoffDelay,
  type ClientListener,
  type ClientOptions,
  type ClientState,
  CstaClient,
} from "./client.ts";
export {
  type ConnectionOptions,
  type Credentials,
  CstaConnection,
  type MessageListener,
} from "./connection.ts";
export {
  type MxTlsOptions,
  normalizeFingerprint,
  type Transport,
  type TransportOptions,
} from "./transport.ts";
export * from "./commands/mod.ts";
export * from "./events.ts";
export type * from "./types.ts";
export type { XmlElement } from "./xml.ts";
export * from "./wire_log.ts";
export { hashPassword, isHashedPassword } from "./password.ts";
