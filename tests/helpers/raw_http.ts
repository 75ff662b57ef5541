/**
 * A raw HTTP/1.1 client for tests that `fetch` cannot express: request targets sent as written
 * (no URL normalisation), bodies sent in pieces with pauses, and a client that stops reading.
 *
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A parsed response head. */
export interface RawHead {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
}

/**
 * One TCP connection speaking HTTP/1.1 by hand.
 *
 * @example
 * ```ts
 * const c = await RawHttp.connect(port);
 * await c.write("GET /x/%2e%2e/metrics HTTP/1.1\r\nHost: x\r\n\r\n");
 * const head = await c.readHead();
 * c.close();
 * ```
 */
export class RawHttp {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  /** Body bytes received after the head (by {@link readHead} and {@link readBody}). */
  bodyBytes = 0;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawHttp> {
    return new RawHttp(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes text (as UTF-8) or bytes. */
  async write(data: string | Uint8Array): Promise<void> {
    const b = typeof data === "string" ? enc.encode(data) : data;
    for (let off = 0; off < b.length;) off += await this.#conn.write(b.subarray(off));
  }

  /** Sends one request head; `headers` are written as given, then the empty line. */
  sendHead(method: string, target: string, headers: Record<string, string> = {}): Promise<void> {
    let s = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
    return this.write(s + "\r\n");
  }

  /**
   * Reads until a full response head arrived; rejects when the connection ends first or
   * after `timeoutMs` (the connection is closed then).
   */
  async readHead(timeoutMs = 5000): Promise<RawHead> {
    const timer = setTimeout(() => this.close(), timeoutMs);
    try {
      for (;;) {
        const end = indexOfCrlfCrlf(this.#buf);
        if (end >= 0) {
          const lines = dec.decode(this.#buf.subarray(0, end)).split("\r\n");
          this.#buf = this.#buf.slice(end + 4);
          this.bodyBytes += this.#buf.length;
          const status = Number(lines[0].match(/^HTTP\/1\.[01] (\d{3})/)?.[1] ?? 0);
          const headers = new Map<string, string>();
          for (const l of lines.slice(1)) {
            const i = l.indexOf(":");
            if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
          }
          return { status, headers };
        }
        if (!await this.#fill()) throw new Error("connection ended before a response head");
      }
    } catch (err) {
      throw new Error(`no response head within ${timeoutMs} ms: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Reads body bytes until `atLeast` more arrived or the connection ended; returns the text
   * read (decoded as UTF-8) and whether the connection ended (EOF or reset).
   */
  async readBody(atLeast = Infinity): Promise<{ text: string; ended: boolean }> {
    const chunks: Uint8Array[] = [this.#buf];
    let got = this.#buf.length;
    this.#buf = new Uint8Array(0);
    let ended = false;
    const b = new Uint8Array(64 * 1024);
    while (got < atLeast) {
      let n: number | null;
      try {
        n = await this.#conn.read(b);
      } catch {
        n = null; // reset by the server
      }
      if (n === null) {
        ended = true;
        break;
      }
      chunks.push(b.slice(0, n));
      got += n;
      this.bodyBytes += n;
    }
    return { text: chunks.map((c) => dec.decode(c, { stream: true })).join(""), ended };
  }

  /** Closes the connection (idempotent). */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #fill(): Promise<boolean> {
    const b = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(b);
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(b.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }
}

/**
 * One raw HTTP/1.1 GET (the target is sent exactly as given; `fetch` would normalise it):
 * status, headers and body text.
 *
 * @example
 * ```ts
 * const r = await rawGet(port, "/x/%2e%2e/metrics");
 * r.status; // 400
 * ```
 */
export async function rawGet(
  port: number,
  target: string,
): Promise<{ status: number; text: string; headers: Map<string, string> }> {
  const c = await RawHttp.connect(port);
  try {
    await c.sendHead("GET", target, { Connection: "close" });
    const head = await c.readHead();
    const { text } = await c.readBody(Number(head.headers.get("content-length") ?? Infinity));
    return { status: head.status, text, headers: head.headers };
  } finally {
    c.close();
  }
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}
