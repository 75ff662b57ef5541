/**
 * A logger that keeps every line as `"<level> <message>"` (fields dropped), for tests that
 * assert what the server logged.
 *
 * @module
 */
import type { Logger } from "../../lib/log.ts";

/**
 * @example
 * ```ts
 * const log = recordingLogger();
 * log.warn("mx test: MX connect failed");
 * log.lines; // ["warn mx test: MX connect failed"]
 * ```
 */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const w = (level: string) => (msg: string) => lines.push(`${level} ${msg}`);
  return { lines, debug: w("debug"), info: w("info"), warn: w("warn"), error: w("error") };
}
