/**
 * Which instance this process is, among several serving one KV: the id shown by `/readyz` and
 * `/metrics` (`mxflex_instance_info{instance_id=…}`) and added to every log line when several
 * instances share a terminal. The supervisor (`lib/supervisor.ts`) numbers its children
 * through {@link INSTANCE_ENV}.
 *
 * @module
 */

/** Set by the supervisor for its children: `1` … `N`. */
export const INSTANCE_ENV = "MXFLEX_INSTANCE";

/**
 * The supervisor's number for this process, if it is a supervised child.
 *
 * @example
 * ```ts
 * instanceIndex((k) => ({ MXFLEX_INSTANCE: "2" })[k]); // 2
 * ```
 */
export function instanceIndex(env: (k: string) => string | undefined): number | undefined {
  const v = env(INSTANCE_ENV);
  const n = Number(v);
  return v && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The default instance id: the host name, plus the supervisor's number for a supervised child
 * (`web-1-2`); stable across restarts, so metrics series continue.
 *
 * @example
 * ```ts
 * defaultInstanceId("web-1", 2);         // "web-1-2"
 * defaultInstanceId("web-1", undefined); // "web-1"
 * ```
 */
export function defaultInstanceId(hostname: string, index: number | undefined): string {
  return index === undefined ? hostname : `${hostname}-${index}`;
}

/**
 * The host name, or `mxflex` where it may not be read (no `--allow-sys`, Deno Deploy).
 *
 * @example
 * ```ts
 * hostName(); // "mx-gw-1", or "mxflex" without --allow-sys
 * ```
 */
export function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "mxflex";
  }
}
