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
