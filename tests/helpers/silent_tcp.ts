/**
 * A TCP listener on 127.0.0.1:0 that accepts connections and never sends a byte: the MX that
 * "accepts TCP but says nothing" (a firewall, a hung MX, the wrong service behind a port
 * forward). A TLS client waits in its handshake forever.
 *
 * @module
 */

/**
 * @example
 * ```ts
 * const silent = new SilentTcp();
 * // point an MX config at 127.0.0.1:${silent.port} …
 * await silent.close();
 * ```
 */
export class SilentTcp {
  /** Listening port. */
  readonly port: number;
  /** Connections accepted so far. */
  accepted = 0;
  #listener: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #loop: Promise<void>;

  /** @param port a port to take over (e.g. a stopped simulator's); default any free one */
  constructor(port = 0) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#loop = (async () => {
      for await (const c of listener) {
        this.accepted++;
        this.#conns.add(c);
        // Read and drop whatever arrives, so the client's writes never block; answer nothing.
        void c.readable.pipeTo(new WritableStream()).catch(() => {}).finally(() =>
          this.#conns.delete(c)
        );
      }
    })().catch(() => {});
  }

  /** Stops listening and closes every accepted connection. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed by the client meanwhile
      }
    }
    await this.#loop;
  }
}
