/**
 * Typed CSTA commands (mx-protocol §2–§3), one file per domain:
 *
 * | file              | domain                                                        |
 * |-------------------|---------------------------------------------------------------|
 * | `session.ts`      | login request and reply, plain-password retry rule, logout, keep-alive |
 * | `monitors.ts`     | `MonitorStart` / `MonitorStop`                                |
 * | `address_book.ts` | `MonitorStartAb`, paged address book, `<abentry>`             |
 * | `calls.ts`        | MakeCall, callback call, hold / retrieve / answer / clear, transfer, deflect |
 * | `call_log.ts`     | call-log blocks                                               |
 * | `mail.ts`         | voicemail list, chunked download, read flag, note, delete     |
 * | `presence.ts`     | setting the session user's presence                           |
 * | `error_reply.ts`  | `CSTAErrorCode`, the error reply any command may get          |
 *
 * Each domain file holds three kinds of export, in this order: payload builders (named after
 * the XML element they build, e.g. `monitorStart`; they return the XML payload only, no frame
 * header, no XML declaration, escaped like the Go encoders so the bytes match what the
 * original services sent), reply parsers (`parse…`; pure, taking the element tree from
 * `xml.ts` and tolerant of pretty-printed input), and the operations that send them on a
 * `CstaConnection` and sequence multi-step exchanges (paging, blocks, chunks). Invoke ids,
 * sending and waiting belong to `connection.ts`; reconnecting to `client.ts`.
 *
 * @example
 * ```ts
 * import { monitorStart, placeCall } from "./commands/mod.ts";
 * monitorStart("3095");
 * // <MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>
 * const call = await placeCall(conn, "3095", "3099");
 * ```
 *
 * @module
 */
export { CSTA_ED4_NS } from "./_util.ts";
export * from "./error_reply.ts";
export * from "./session.ts";
export * from "./monitors.ts";
export * from "./address_book.ts";
export * from "./calls.ts";
export * from "./call_log.ts";
export * from "./mail.ts";
export * from "./presence.ts";
