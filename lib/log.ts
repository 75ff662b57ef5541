/**
 * Logging: levels, text (the seed's form) or JSON lines, on stderr. Nothing here knows about
 * secrets: callers never pass them (wire payloads go through `redactWire`).
 *
 * @module
 */

/** Log levels in increasing severity. */
export type Level = "debug" | "info" | "warn" | "error";

/** A minimal structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written; default "info". */
  level?: Level;
  /** "text" (default) or "json" lines. */
  format?: "text" | "json";
  /** Where lines go; default stderr. */
  sink?: (line: string) => void;
  /** Fields added to every line (e.g. `{instance: "web-1-2"}` when several share a terminal). */
  base?: Record<string, unknown>;
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "debug", format: "json" });
 * log.info("listening", { url: "http://localhost:8080" });
 * ```
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = ORDER[opts.level ?? "info"];
  const enc = new TextEncoder();
  const sink = opts.sink ?? ((line: string) => {
    try {
      Deno.stderr.writeSync(enc.encode(line + "\n"));
    } catch {
      // stderr closed: nothing sensible to do.
    }
  });
  const base = opts.base && Object.keys(opts.base).length ? opts.base : undefined;
  const write = (level: Level, msg: string, own?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const fields = base ? { ...base, ...own } : own;
    const time = new Date().toISOString();
    if (opts.format === "json") {
      sink(JSON.stringify({ time, level, msg, ...fields }));
    } else {
      const extra = fields && Object.keys(fields).length
        ? " " + Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")
        : "";
      sink(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra}`);
    }
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
