/**
 * A free TCP port on 127.0.0.1, for the few places that must name a port before anything
 * listens on it (a port instances share, a config written ahead, a port that must stay closed).
 * Elsewhere bind port 0 and read the address.
 *
 * @example
 * ```ts
 * const port = freePort();
 * await writeConfig({ host: `127.0.0.1:${port}` });
 * ```
 *
 * @module
 */

/** A TCP port that was free a moment ago on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}
