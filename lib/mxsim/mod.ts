/**
 * The simulated Zultys MX: a CSTA server for tests, benchmarks and the demo. This module is
 * its public surface; the files behind it each hold one part of the protocol beside its
 * state (see `server.ts`).
 *
 * @example
 * ```ts
 * import { MxSimulator } from "./lib/mxsim/mod.ts";
 * const sim = await MxSimulator.start();
 * await sim.close();
 * ```
 *
 * @module
 */
export { MxSimulator, type SimOptions } from "./server.ts";
export type { SimMessage, SimMessageWithEl } from "./received.ts";
export { abEntryXml, defaultUsers, GENERATED_USERS, passwordHash, type SimUser } from "./users.ts";
export { CALLLOG_BLOCK_SIZE, type SimCallLogRecord } from "./calllog.ts";
export { ON_THE_PHONE } from "./presence.ts";
export { seedDemoUser, wavTone } from "./demo_data.ts";
export type { CancelRecord, NewVoicemail, SimVoicemail } from "./voicemail.ts";
export { type CallState, SIM_VOICEMAIL, type SimCall, type TimerHandle } from "./calls.ts";
export type { CallView } from "./events.ts";
export type { CallModeRecord, SessionHost, SimMonitor, SimSession } from "./session.ts";
export type { XmlElement } from "../csta/xml.ts";
export type { Frame } from "../csta/frame.ts";
