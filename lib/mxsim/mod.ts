/**
 * The simulated Zultys MX (see `server.ts`): a CSTA server for tests, benchmarks and the
 * demo.
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
export * from "./server.ts";
export { abEntryXml, GENERATED_USERS, passwordHash } from "./users.ts";
export { CALLLOG_BLOCK_SIZE } from "./calllog.ts";
export type { CallState, TimerHandle } from "./calls.ts";
export type { CallView } from "./events.ts";
export type { SessionHost, SimMonitor, SimSession } from "./session.ts";
export type { XmlElement } from "../csta/xml.ts";
export type { Frame } from "../csta/frame.ts";
