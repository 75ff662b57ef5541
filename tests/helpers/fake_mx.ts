/**
 * A scriptable fake MX for client tests (plain TCP on 127.0.0.1:0): logs anyone in, then
 * answers each frame with what a handler returns, every answer in one write (so several
 * frames arrive in one client read), raw bytes included (oversize headers, garbage).
 *
 * @module
 */
import { encodeFrame, FrameDecoder } from "../../lib/csta/frame.ts";
import { parseXml, type XmlElement } from "../../lib/csta/xml.ts";

/** What the fake MX writes in one go: frames `[invokeId, xml]` and raw byte runs. */
export type Reply = Array<[number, string] | Uint8Array>;

/** Answers one client frame (after the login); `[]` = no answer. */
export type Handler = (msg: XmlElement, id: number) => Reply | Promise<Reply>;

/** Options of {@link FakeMx}. */
export interface FakeMxOptions {
  /** Written right after the login reply, in a write of its own. */
  afterLogin?: Reply;
}

const LOGIN_REPLY =
  `<loginResponce Code="0" sn="1" apiversion="11" ext="" userId="0">OK</loginResponce>`;

/**
 * The fake MX. `keepalive` and `logout` are never answered; always {@link FakeMx.close}.
 *
 * @example
 * ```ts
 * const mx = new FakeMx((msg, id) => msg.name === "MonitorStart" ? [[id, "<MonitorStartResponse/>"]] : []);
 * // connect a CstaConnection to 127.0.0.1:mx.port …
 * mx.count("MonitorStart"); // frames of that name received so far
 * await mx.close();
 * ```
 */
export class FakeMx {
  /** Root element names of every frame received, in order. */
  readonly received: string[] = [];
  /** Listening port. */
  readonly port: number;
  #listener: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #serving = new Set<Promise<void>>();
  #loop: Promise<void>;

  /**
   * @param handler answers every frame after the login (default: never answers)
   * @param opts see {@link FakeMxOptions}
   */
  constructor(readonly handler: Handler = () => [], readonly opts: FakeMxOptions = {}) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#loop = this.#accept();
  }

  /** Client connections still open. */
  get connections(): number {
    return this.#conns.size;
  }

  /** How many frames named `name` arrived. */
  count(name: string): number {
    return this.received.filter((n) => n === name).length;
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
      this.#conns.add(conn);
      const p = this.#serve(conn).catch(() => {}).finally(() => {
        this.#conns.delete(conn);
        this.#serving.delete(p);
      });
      this.#serving.add(p);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const dec = new FrameDecoder();
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      for (const f of dec.push(buf.subarray(0, n))) {
        const msg = parseXml(f.payload);
        this.received.push(msg.name);
        if (msg.name === "loginRequest") {
          await write(conn, [[f.invokeId, LOGIN_REPLY]]);
          if (this.opts.afterLogin) await write(conn, this.opts.afterLogin);
        } else if (msg.name !== "keepalive" && msg.name !== "logout") {
          await write(conn, await this.handler(msg, f.invokeId));
        }
      }
    }
  }

  /** Closes every client connection abruptly (the MX "goes away"). */
  dropAll(): void {
    for (const c of this.#conns) c.close();
  }

  /** Stops listening, drops every connection and waits until all are done. */
  async close(): Promise<void> {
    this.#listener.close();
    this.dropAll();
    await this.#loop.catch(() => {});
    await Promise.all([...this.#serving]);
  }
}

/** Writes a whole reply as one buffer; a peer that went away is not an error here. */
async function write(conn: Deno.Conn, out: Reply): Promise<void> {
  if (!out.length) return;
  const parts = out.map((p) => p instanceof Uint8Array ? p : encodeFrame(p[0], p[1]));
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  try {
    for (let done = 0; done < all.length;) done += await conn.write(all.subarray(done));
  } catch {
    // the client closed the socket
  }
}
