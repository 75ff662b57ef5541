/**
 * A small, strict HTTP/1.1 server on a raw `Deno.listen` TCP socket, used for plain-HTTP mode.
 *
 * Why: `Deno.serve` costs ~60 KB of RSS per idle SSE connection (hyper/tokio buffers that
 * cannot be tuned), while a raw TCP connection holding an SSE stream costs a few KB. This
 * server keeps per-connection state minimal: one read buffer while a request head or body is
 * being read, released when a response starts streaming; a streaming response is written
 * chunk by chunk (`conn.write` of the very `Uint8Array` the producer enqueued, no copies) and
 * the socket is watched for EOF through a 16-byte read so the body stream is cancelled when
 * the client leaves.
 *
 * Parsing is strict (RFC 9110/9112): origin-form targets only, HTTP/1.0 and 1.1 only, no
 * obs-fold, validated header names and values, one `Host` for HTTP/1.1, and the request
 * smuggling defences: `Content-Length` together with `Transfer-Encoding`, repeated or
 * malformed `Content-Length`, or any `Transfer-Encoding` other than `chunked` is refused and
 * the connection closed. Bodies are limited (`maxBodyBytes`, 413), heads too
 * (`maxHeaderBytes`, 431), and slow heads are cut after `headerTimeoutMs`.
 *
 * Response framing:
 *
 * - no body (HEAD, 204, 304, or a null body): head only (`content-length: 0` for a null body);
 * - `text/event-stream`: streamed at once, close-delimited (`connection: close`);
 * - a body with a `Content-Length` header: streamed with that length, keep-alive;
 * - any other body: up to 64 KiB is buffered; a body ending within that is sent with
 *   `content-length` and keep-alive, a longer one is streamed with `transfer-encoding:
 *   chunked` (keep-alive) to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones. When the
 *   producer fails mid-body, a chunked response is closed without its last chunk so the
 *   truncation is visible.
 *
 * A client that stops reading is disconnected after `writeTimeoutMs`; after `shutdown()`,
 * in-flight responses get a short grace period before their connections are cut.
 *
 * TLS and HTTP/2 are out of scope (`Deno.serve` handles those modes).
 *
 * @example
 * ```ts
 * const srv = serveH1((req) => new Response(`hello ${new URL(req.url).pathname}`), {
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * console.log(`listening on ${srv.addr.port}`);
 * await srv.shutdown();
 * ```
 *
 * @module
 */

/** Handler information passed with each request (compatible with `Deno.ServeHandlerInfo`). */
export type H1HandlerInfo = Deno.ServeHandlerInfo<Deno.NetAddr>;

/** A request handler for {@linkcode serveH1}. */
export type H1Handler = (
  req: Request,
  info: H1HandlerInfo,
) => Response | Promise<Response>;

/** Options for {@linkcode serveH1}. */
export interface H1Options {
  /** Address to bind, e.g. `"127.0.0.1"` or `"0.0.0.0"`. */
  hostname: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Aborting it shuts the server down (like {@linkcode H1Server.shutdown}). */
  signal?: AbortSignal;
  /** Called once with the bound address. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Largest request head (request line + header section), bytes; default 16 KiB (431 beyond). */
  maxHeaderBytes?: number;
  /** Largest request body, bytes; default 1 MiB (413 beyond). */
  maxBodyBytes?: number;
  /** Time allowed to receive a complete request head, ms; default 10 s (slowloris). */
  headerTimeoutMs?: number;
  /** Keep-alive idle time between requests (and the limit for receiving a body), ms; default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Time a single socket write may take to complete, ms; default 30 s. A client that stops
   * reading is disconnected after it (which cancels the response body).
   */
  writeTimeoutMs?: number;
}

/** A running server; same `addr` / `finished` / `shutdown()` shape as `Deno.HttpServer`. */
export interface H1Server {
  /** The bound address. */
  addr: Deno.NetAddr;
  /** Settles when the server has shut down and every connection is closed. */
  finished: Promise<void>;
  /**
   * Stops accepting, closes idle connections, cancels streaming response bodies, lets
   * in-flight requests finish (then closes their connections) and resolves with `finished`.
   * Connections still busy after a short grace period (1 s) are cut, their bodies cancelled.
   */
  shutdown(): Promise<void>;
}

const CR = 13;
const LF = 10;
const READ_BUFFER = 4096;
const BUFFER_LIMIT = 64 * 1024;
const LINGER_MS = 2000;
/** After `shutdown()`, time left to in-flight responses before their connections are cut. */
const SHUTDOWN_GRACE_MS = 1000;
const LINGER_BYTES = 256 * 1024;
const MAX_CHUNK_LINE = 4096;
const EMPTY = new Uint8Array(0);
/** Chunks up to this size are framed in one write (a copy); larger ones in three writes. */
const CHUNK_COPY_LIMIT = 16 * 1024;

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: HTAB, SP, VCHAR, obs-text. No NUL, CR, LF or other controls.
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET_RE = /^\/[\x21-\x7e]*$/;
const VERSION_RE = /^HTTP\/(\d)\.(\d)$/;
const DIGITS_RE = /^\d+$/;
// Host = uri-host [ ":" port ]: an IP-literal in brackets or a reg-name / IPv4 address.
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::\d{0,5})?$/;
const CHUNK_SIZE_RE = /^([0-9A-Fa-f]{1,16})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
// Methods `new Request` upper-cases; anything else is kept as sent (methods are case-sensitive).
const NORMALIZED = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
// Hop-by-hop and framing headers the app may set; this server writes its own.
const DROP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "proxy-connection",
  "upgrade",
]);

const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

const enc = new TextEncoder();
const CONTINUE = enc.encode("HTTP/1.1 100 Continue\r\n\r\n");
const CRLF = enc.encode("\r\n");
const LAST_CHUNK = enc.encode("0\r\n\r\n");

/** A protocol error answered by the server itself; the connection is closed afterwards. */
class Refuse {
  constructor(readonly status: number, readonly message: string) {}
}

let dateValue = "";
let dateAt = 0;

/** The `date` header value, recomputed at most once a second. */
function httpDate(): string {
  const now = Date.now();
  if (now - dateAt >= 1000 || dateValue === "") {
    dateAt = now - (now % 1000);
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** Bytes -> string, one char per byte (ISO-8859-1), as header fields are defined. */
function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

/** String -> bytes, one byte per char up to U+00FF (UTF-8 beyond, which `Headers` never holds). */
function toBytes(s: string): Uint8Array {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return enc.encode(s);
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c <= 0xff) out.push(c);
    else out.push(...enc.encode(ch));
  }
  return new Uint8Array(out);
}

/**
 * Splits a field line into a lower-cased name and a value trimmed of SP/HTAB on both ends;
 * null when the name is not a token. Linear time (no backtracking regex).
 */
function splitField(line: string): [string, string] | null {
  const colon = line.indexOf(":");
  if (colon <= 0) return null;
  const name = line.slice(0, colon);
  if (!TOKEN_RE.test(name)) return null;
  let a = colon + 1;
  let b = line.length;
  while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++;
  while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--;
  return [name.toLowerCase(), line.slice(a, b)];
}

/** `b`, or a copy of it with room for at least `min` bytes (doubling, capped at `cap`). */
function grow(b: Uint8Array, min: number, cap: number): Uint8Array {
  if (b.length >= min) return b;
  const next = new Uint8Array(Math.min(Math.max(min, b.length * 2, READ_BUFFER), cap));
  next.set(b);
  return next;
}

/** `completed` of the handler info, created only when someone asks for it. */
class Info implements H1HandlerInfo {
  #done?: PromiseWithResolvers<void>;
  #outcome?: boolean;

  constructor(readonly remoteAddr: Deno.NetAddr) {}

  get completed(): Promise<void> {
    if (!this.#done) {
      this.#done = Promise.withResolvers<void>();
      // Like Deno.serve: a failure nobody observes is not an unhandled rejection.
      this.#done.promise.catch(() => {});
      if (this.#outcome !== undefined) this.settle(this.#outcome);
    }
    return this.#done.promise;
  }

  settle(ok: boolean): void {
    this.#outcome = ok;
    if (!this.#done) return;
    if (ok) this.#done.resolve();
    else this.#done.reject(new Deno.errors.Interrupted("response not delivered"));
  }
}

interface Limits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
}

/** A close-delimited response whose head has been written; see `Server.stream`. */
interface StreamJob {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Body bytes read already (while deciding how to frame the response). */
  pending: Uint8Array[];
  info: Info;
  /** An event stream: the client half-closing counts as leaving. */
  sse: boolean;
}

/** A parsed request head. */
interface Head {
  method: string;
  target: string;
  minor: 0 | 1;
  headers: [string, string][];
  host: string | undefined;
  keepAlive: boolean;
  contentLength: number | undefined;
  chunked: boolean;
  expectContinue: boolean;
}

type ConnState = "reading" | "handling" | "streaming" | "closed";

/** One accepted TCP connection. */
class H1Conn {
  buf: Uint8Array = EMPTY;
  start = 0;
  end = 0;
  state: ConnState = "reading";
  timer: ReturnType<typeof setTimeout> | undefined;
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Rejected by `kill()`: ends writes stuck on a peer that never reads. */
  readonly #gone = Promise.withResolvers<never>();
  /** When the write in progress started (ms), 0 when not writing; read by the sweep. */
  writingSince = 0;

  constructor(
    readonly conn: Deno.TcpConn,
    readonly server: Server,
  ) {
    this.#gone.promise.catch(() => {});
  }

  /** True once the socket is closed (read through a method so TS does not narrow it away). */
  isClosed(): boolean {
    return this.state === "closed";
  }

  arm(ms: number): void {
    this.disarm();
    this.timer = setTimeout(() => this.kill(), ms);
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  kill(): void {
    this.disarm();
    if (this.state === "closed") return;
    this.state = "closed";
    this.buf = EMPTY;
    this.#gone.reject(new Deno.errors.BadResource("connection closed"));
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  /** Reads more bytes into the buffer; false on EOF, error or kill. */
  async fill(limit: number): Promise<boolean> {
    if (this.isClosed()) return false;
    if (this.start === this.end) {
      this.start = this.end = 0;
    }
    if (this.end === this.buf.length) {
      const used = this.end - this.start;
      if (this.start > 0 && used < this.buf.length / 2) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        // `limit` bounds the buffer; callers refuse oversized input before it is reached.
        const size = Math.max(
          Math.min(Math.max(READ_BUFFER, this.buf.length * 2), limit),
          used + 1,
        );
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.start = 0;
      this.end = used;
    }
    let n: number | null;
    try {
      n = await this.conn.read(this.buf.subarray(this.end));
    } catch {
      return false;
    }
    if (n === null || this.isClosed()) return false;
    this.end += n;
    return true;
  }

  /**
   * Writes all of `data`, awaiting each write (backpressure). A write that does not complete
   * within `writeTimeoutMs` (a client that stopped reading) closes the connection; a write
   * pending when the connection is closed rejects.
   */
  async writeAll(data: Uint8Array): Promise<void> {
    let p = data;
    while (p.length > 0) {
      if (this.isClosed()) throw new Deno.errors.BadResource("connection closed");
      const w = this.conn.write(p);
      w.catch(() => {});
      // No timer per write (SSE fan-out writes to thousands of sockets per event): the
      // server's single sweep closes connections whose current write started too long ago.
      this.writingSince = Date.now();
      let n: number;
      try {
        n = await Promise.race([w, this.#gone.promise]);
      } finally {
        this.writingSince = 0;
      }
      p = p.subarray(n);
    }
  }

  /**
   * Appends `n` buffered-or-incoming bytes to `out` at `at`, growing it as data arrives
   * (doubling, never beyond `cap`, which must be at least `at + n`). Returns the buffer.
   */
  async readGrow(out: Uint8Array, at: number, n: number, cap: number): Promise<Uint8Array> {
    const need = at + n;
    const have = Math.min(this.end - this.start, n);
    out = grow(out, at + have, cap);
    out.set(this.buf.subarray(this.start, this.start + have), at);
    this.start += have;
    at += have;
    while (at < need) {
      if (at === out.length) out = grow(out, at + 1, cap);
      let r: number | null;
      try {
        r = await this.conn.read(out.subarray(at, Math.min(out.length, need)));
      } catch {
        r = null;
      }
      if (r === null || this.isClosed()) throw new Refuse(0, "eof");
      at += r;
    }
    return out;
  }

  /** Consumes a CRLF (without allocating); a Refuse when something else comes. */
  async expectCrlf(): Promise<void> {
    while (this.end - this.start < 2) {
      if (!await this.fill(MAX_CHUNK_LINE + 2)) throw new Refuse(0, "eof");
    }
    if (this.buf[this.start] !== CR || this.buf[this.start + 1] !== LF) {
      throw new Refuse(400, "bad chunk terminator");
    }
    this.start += 2;
  }

  /** Reads one CRLF-terminated line (without the CRLF). */
  async readLine(max: number): Promise<string> {
    // Scan position relative to `start`: fill() may move the data to the buffer's front.
    let scanned = 0;
    for (;;) {
      const i = this.buf.subarray(this.start + scanned, this.end).indexOf(LF);
      if (i >= 0) {
        const lf = this.start + scanned + i;
        if (lf === this.start || this.buf[lf - 1] !== CR) throw new Refuse(400, "bad line ending");
        const line = latin1(this.buf.subarray(this.start, lf - 1));
        this.start = lf + 1;
        return line;
      }
      scanned = this.end - this.start;
      if (scanned > max) throw new Refuse(400, "line too long");
      if (!await this.fill(max + 2)) throw new Refuse(0, "eof");
    }
  }
}

/** The listener, its connections and shutdown bookkeeping. */
class Server {
  readonly conns = new Set<H1Conn>();
  closing = false;
  acceptDone = false;
  readonly done = Promise.withResolvers<void>();
  graceTimer: ReturnType<typeof setTimeout> | undefined;

  readonly writeSweep: ReturnType<typeof setInterval>;

  constructor(
    readonly listener: Deno.TcpListener,
    readonly handler: H1Handler,
    readonly limits: Limits,
  ) {
    // One timer for the whole server enforces `writeTimeoutMs` on every connection.
    const every = Math.max(10, Math.min(1_000, Math.floor(limits.writeTimeoutMs / 4)));
    this.writeSweep = setInterval(() => this.sweepWrites(), every);
    Deno.unrefTimer(this.writeSweep);
  }

  /** Closes connections whose current write has made no progress for `writeTimeoutMs`. */
  sweepWrites(): void {
    const limit = Date.now() - this.limits.writeTimeoutMs;
    for (const c of this.conns) {
      if (c.writingSince !== 0 && c.writingSince < limit) c.kill();
    }
  }

  checkDone(): void {
    if (this.closing && this.acceptDone && this.conns.size === 0) {
      clearTimeout(this.graceTimer);
      this.graceTimer = undefined;
      clearInterval(this.writeSweep);
      this.done.resolve();
    }
  }

  async acceptLoop(): Promise<void> {
    while (!this.closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch (err) {
        if (this.closing || err instanceof Deno.errors.BadResource) break;
        // EMFILE and friends: back off briefly instead of spinning.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.closing) {
        try {
          conn.close();
        } catch {
          // ignore
        }
        break;
      }
      const c = new H1Conn(conn, this);
      this.conns.add(c);
      this.serveConn(c).catch(() => {}).finally(() => {
        c.kill();
        this.conns.delete(c);
        this.checkDone();
      });
    }
    this.acceptDone = true;
    this.checkDone();
  }

  shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      try {
        this.listener.close();
      } catch {
        // already closed
      }
      for (const c of this.conns) {
        if (c.state === "reading") c.kill();
        else if (c.state === "streaming") c.reader?.cancel().catch(() => {});
      }
      if (this.conns.size > 0) {
        this.graceTimer = setTimeout(() => this.forceClose(), SHUTDOWN_GRACE_MS);
      }
      this.checkDone();
    }
    return this.done.promise;
  }

  /** End of the shutdown grace period: cuts every remaining connection and its body. */
  forceClose(): void {
    this.graceTimer = undefined;
    for (const c of this.conns) {
      c.reader?.cancel().catch(() => {});
      c.kill();
    }
    // A handler that never returns must not hold `finished` back.
    this.conns.clear();
    this.checkDone();
  }

  async serveConn(c: H1Conn): Promise<void> {
    try {
      c.conn.setNoDelay(true);
    } catch {
      // not fatal
    }
    let first = true;
    while (!this.closing && !c.isClosed()) {
      const next = await this.exchange(c, first);
      first = false;
      if (next === false) return;
      if (next !== true) {
        // Streaming: nothing of the request (head, Request, Response) stays referenced from
        // here on, only the reader and the handler info.
        await this.stream(c, next);
        return;
      }
    }
  }

  /**
   * One request/response exchange. Returns true to serve another request on the connection,
   * false to close it, or a streaming job (the head is already written) to run until the end.
   */
  async exchange(c: H1Conn, first: boolean): Promise<boolean | StreamJob> {
    c.state = "reading";
    let head: Head | null;
    let body: Uint8Array | null = null;
    try {
      head = await this.readHead(c, first);
      if (!head) return false;
      body = await this.readBody(c, head);
    } catch (err) {
      if (err instanceof Refuse && err.status > 0) await this.refuse(c, err.status, err.message);
      return false;
    } finally {
      c.disarm();
    }
    if (c.isClosed()) return false;
    c.state = "handling";

    if (head.method === "OPTIONS" && head.target === "*") {
      await this.writeSimple(c, 200, head.keepAlive && !this.closing);
      return head.keepAlive;
    }

    let req: Request;
    try {
      req = this.buildRequest(head, body, c.conn.localAddr as Deno.NetAddr);
    } catch (err) {
      const status = err instanceof Refuse ? err.status : 400;
      await this.refuse(c, status, err instanceof Refuse ? err.message : "bad request");
      return false;
    }
    const info = new Info(c.conn.remoteAddr as Deno.NetAddr);
    let res: Response;
    try {
      const r = await this.handler(req, info);
      if (!(r instanceof Response) || r.bodyUsed || r.body?.locked) {
        throw new TypeError("handler did not return a usable Response");
      }
      // `Response.error()` (status 0) or an interim status is not a final answer.
      if (r.status < 200) {
        r.body?.cancel().catch(() => {});
        throw new TypeError("handler returned an unusable status");
      }
      res = r;
    } catch {
      res = new Response('{"error":"internal error"}', {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
    const keep = await this.respond(c, head, res, info);
    if (typeof keep === "boolean") c.reader = undefined;
    return keep === true ? !this.closing : keep;
  }

  /** Waits for and parses one request head; null when the client leaves or times out. */
  async readHead(c: H1Conn, first: boolean): Promise<Head | null> {
    const { maxHeaderBytes, headerTimeoutMs, idleTimeoutMs } = this.limits;
    if (first || c.end > c.start) c.arm(headerTimeoutMs);
    else c.arm(idleTimeoutMs);
    let idle = !first && c.end === c.start;
    let scan = c.start;
    let lineStart = c.start;
    let requestLine = false;
    for (;;) {
      for (let i = scan; i < c.end; i++) {
        if (c.buf[i] !== LF) continue;
        if (i === lineStart || c.buf[i - 1] !== CR) throw new Refuse(400, "bad line ending");
        if (i - 1 === lineStart) {
          if (!requestLine) {
            // Empty lines before the request line are ignored (RFC 9112 §2.2).
            c.start = lineStart = i + 1;
            continue;
          }
          const headBytes = c.buf.subarray(c.start, i + 1);
          c.start = i + 1;
          if (headBytes.length > maxHeaderBytes) throw new Refuse(431, "request head too large");
          return parseHead(latin1(headBytes));
        }
        requestLine = true;
        lineStart = i + 1;
      }
      scan = c.end;
      if (c.end - c.start > maxHeaderBytes) throw new Refuse(431, "request head too large");
      const before = c.start;
      if (!await c.fill(maxHeaderBytes + 4)) return null;
      // fill() may have moved the data to the front of the buffer.
      const shift = before - c.start;
      scan -= shift;
      lineStart -= shift;
      if (idle) {
        idle = false;
        c.arm(headerTimeoutMs);
      }
    }
  }

  /** Reads the request body per the head's framing. */
  async readBody(c: H1Conn, head: Head): Promise<Uint8Array | null> {
    const { maxBodyBytes, idleTimeoutMs, maxHeaderBytes } = this.limits;
    if (head.contentLength !== undefined) {
      if (head.contentLength > maxBodyBytes) throw new Refuse(413, "request body too large");
      if (head.contentLength === 0) return null;
      if (head.expectContinue) await c.writeAll(CONTINUE);
      c.arm(idleTimeoutMs);
      // Grown as the bytes arrive, not allocated up front from the declared length.
      const first = new Uint8Array(Math.min(head.contentLength, READ_BUFFER));
      return await c.readGrow(first, 0, head.contentLength, head.contentLength);
    }
    if (!head.chunked) return null;
    if (head.expectContinue) await c.writeAll(CONTINUE);
    c.arm(idleTimeoutMs);
    // One growable buffer for all chunk data (no allocation per chunk or per CRLF).
    let data: Uint8Array = EMPTY;
    let total = 0;
    for (;;) {
      const line = await c.readLine(MAX_CHUNK_LINE);
      const m = CHUNK_SIZE_RE.exec(line);
      if (!m) throw new Refuse(400, "bad chunk size");
      const size = parseInt(m[1], 16);
      if (size === 0) break;
      if (total + size > maxBodyBytes) throw new Refuse(413, "request body too large");
      data = await c.readGrow(data, total, size, maxBodyBytes);
      total += size;
      await c.expectCrlf();
    }
    // Trailer section: validated loosely and discarded.
    let trailer = 0;
    for (;;) {
      const line = await c.readLine(maxHeaderBytes);
      if (line === "") break;
      trailer += line.length + 2;
      if (trailer > maxHeaderBytes) throw new Refuse(431, "trailer section too large");
      if (!splitField(line) || !VALUE_RE.test(line)) throw new Refuse(400, "bad trailer");
    }
    return total === 0 ? null : data.subarray(0, total);
  }

  buildRequest(head: Head, body: Uint8Array | null, local: Deno.NetAddr): Request {
    const host = head.host ||
      (local.hostname.includes(":")
        ? `[${local.hostname}]:${local.port}`
        : `${local.hostname}:${local.port}`);
    const method = normalizeMethod(head.method);
    if (method === "CONNECT" || method === "TRACE" || method === "TRACK") {
      throw new Refuse(501, "method not implemented");
    }
    const noBody = method === "GET" || method === "HEAD";
    try {
      // A string, not a URL object: Request parses it once itself.
      return new Request(`http://${host}${head.target}`, {
        method,
        headers: head.headers,
        body: noBody ? null : body as Uint8Array<ArrayBuffer> | null,
      });
    } catch {
      throw new Refuse(400, "bad request");
    }
  }

  /** Writes the response; true when the connection may serve another request. */
  async respond(
    c: H1Conn,
    head: Head,
    res: Response,
    info: Info,
  ): Promise<boolean | StreamJob> {
    const status = res.status;
    let keep = head.keepAlive && !this.closing;
    const isHead = normalizeMethod(head.method) === "HEAD";
    const body = res.body;
    // Once taken, the body is locked: cancelling must go through the reader.
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      if (isHead || status === 204 || status === 304 || status < 200) {
        if (body) body.cancel().catch(() => {});
        let cl: string | undefined;
        if (isHead || status === 304) {
          const v = res.headers.get("content-length");
          if (v !== null && DIGITS_RE.test(v)) cl = v;
        }
        await c.writeAll(this.head(status, res.headers, cl, keep, head.minor));
        info.settle(true);
        return keep;
      }
      if (body === null) {
        await c.writeAll(this.head(status, res.headers, "0", keep, head.minor));
        info.settle(true);
        return keep;
      }
      const type = (res.headers.get("content-type") ?? "").toLowerCase();
      reader = body.getReader();
      c.reader = reader;
      if (type.startsWith("text/event-stream")) {
        await c.writeAll(this.head(status, res.headers, undefined, false, head.minor));
        return { reader, pending: [], info, sse: true };
      }
      const declared = res.headers.get("content-length");
      if (declared !== null && DIGITS_RE.test(declared) && declared.length <= 15) {
        return await this.sendKnownLength(c, head, res, reader, Number(declared), keep, info);
      }
      // Unknown length: buffer up to BUFFER_LIMIT, then decide.
      const parts: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch {
          // Failed before anything was sent: still a proper answer.
          info.settle(false);
          await this.refuse(c, 500, "internal error");
          return false;
        }
        if (r.done) break;
        const v = asBytes(r.value);
        parts.push(v);
        total += v.length;
        if (total > BUFFER_LIMIT) {
          if (head.minor === 1) {
            return await this.sendChunked(c, head, res, reader, parts, keep, info);
          }
          keep = false;
          await c.writeAll(this.head(status, res.headers, undefined, false, head.minor));
          return { reader, pending: parts, info, sse: false };
        }
      }
      const h = this.head(status, res.headers, String(total), keep, head.minor);
      const out = new Uint8Array(h.length + total);
      out.set(h);
      let o = h.length;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      await c.writeAll(out);
      info.settle(true);
      return keep;
    } catch {
      info.settle(false);
      (reader ? reader.cancel() : body?.cancel())?.catch(() => {});
      return false;
    }
  }

  async sendKnownLength(
    c: H1Conn,
    head: Head,
    res: Response,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    length: number,
    keep: boolean,
    info: Info,
  ): Promise<boolean> {
    let sent = 0;
    try {
      await c.writeAll(this.head(res.status, res.headers, String(length), keep, head.minor));
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        let v = asBytes(r.value);
        if (sent + v.length > length) {
          // The app lied about the length: send what was promised, then close.
          v = v.subarray(0, length - sent);
          await c.writeAll(v);
          sent = length;
          reader.cancel().catch(() => {});
          info.settle(false);
          return false;
        }
        await c.writeAll(v);
        sent += v.length;
      }
    } catch {
      reader.cancel().catch(() => {});
      info.settle(false);
      return false;
    }
    info.settle(sent === length);
    return sent === length && keep;
  }

  /**
   * Streams a body of unknown length with chunked framing (HTTP/1.1): `pending` first, then
   * every chunk as it comes. A producer error or a write failure closes the connection
   * without the last chunk, so the client sees the truncation.
   */
  async sendChunked(
    c: H1Conn,
    head: Head,
    res: Response,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    pending: Uint8Array[],
    keep: boolean,
    info: Info,
  ): Promise<boolean> {
    try {
      await c.writeAll(this.head(res.status, res.headers, undefined, keep, head.minor, true));
      for (const p of pending) await writeChunk(c, p);
      pending.length = 0;
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        await writeChunk(c, asBytes(r.value));
      }
      await c.writeAll(LAST_CHUNK);
    } catch {
      reader.cancel().catch(() => {});
      info.settle(false);
      return false;
    }
    info.settle(true);
    return keep;
  }

  /**
   * Close-delimited streaming: writes `pending`, then every chunk as it comes, while a
   * 16-byte read watches for the client leaving. Closes the connection at the end.
   */
  async stream(c: H1Conn, job: StreamJob): Promise<void> {
    const { reader, pending, info } = job;
    c.state = "streaming";
    c.reader = reader;
    // Buffered input is never needed again (the connection closes after this response).
    c.buf = EMPTY;
    c.start = c.end = 0;
    if (this.closing) reader.cancel().catch(() => {});
    void watchEof(c.conn, reader, job.sse);
    let ok = true;
    try {
      for (const p of pending) await c.writeAll(p);
      pending.length = 0;
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        await c.writeAll(asBytes(r.value));
      }
    } catch {
      ok = false;
      reader.cancel().catch(() => {});
    }
    c.reader = undefined;
    info.settle(ok && !c.isClosed());
    c.kill();
  }

  /** Answers a protocol error with a JSON body and closes the connection gracefully. */
  async refuse(c: H1Conn, status: number, message: string): Promise<void> {
    if (c.state === "closed") return;
    const body = enc.encode(JSON.stringify({ error: message }));
    const h = new Headers({ "content-type": "application/json" });
    const head = this.head(status, h, String(body.length), false, 1);
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    try {
      await c.writeAll(out);
    } catch {
      c.kill();
      return;
    }
    await linger(c);
  }

  async writeSimple(c: H1Conn, status: number, keep: boolean): Promise<void> {
    try {
      await c.writeAll(this.head(status, new Headers(), "0", keep, 1));
    } catch {
      c.kill();
    }
  }

  /** Serializes a response head. `length` undefined means no content-length header. */
  head(
    status: number,
    headers: Headers,
    length: string | undefined,
    keep: boolean,
    minor: 0 | 1,
    chunked = false,
  ): Uint8Array {
    let s = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
    let hasDate = false;
    for (const [name, value] of headers) {
      if (DROP.has(name)) continue;
      if (name === "date") hasDate = true;
      s += `${name}: ${value}\r\n`;
    }
    if (!hasDate) s += `date: ${httpDate()}\r\n`;
    if (length !== undefined) s += `content-length: ${length}\r\n`;
    if (chunked) s += "transfer-encoding: chunked\r\n";
    if (!keep) s += "connection: close\r\n";
    else if (minor === 0) s += "connection: keep-alive\r\n";
    return toBytes(s + "\r\n");
  }
}

/** The method as `new Request` spells it (some methods are upper-cased, the rest kept). */
function normalizeMethod(method: string): string {
  const upper = method.toUpperCase();
  return NORMALIZED.has(upper) ? upper : method;
}

function asBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError("response body chunk is not bytes");
}

/** Writes one non-empty chunk with its chunked framing (an empty one would end the body). */
async function writeChunk(c: H1Conn, v: Uint8Array): Promise<void> {
  if (v.length === 0) return;
  const size = enc.encode(`${v.length.toString(16)}\r\n`);
  if (v.length > CHUNK_COPY_LIMIT) {
    await c.writeAll(size);
    await c.writeAll(v);
    await c.writeAll(CRLF);
    return;
  }
  const out = new Uint8Array(size.length + v.length + 2);
  out.set(size);
  out.set(v, size.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  await c.writeAll(out);
}

/**
 * Discards input until EOF (or an error), then cancels the response body. For an event
 * stream EOF means the client left; for other bodies it may be a half-close (the client
 * still reads), so only an error (reset, or our own close) cancels.
 */
async function watchEof(
  conn: Deno.TcpConn,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  eofIsGone: boolean,
): Promise<void> {
  const tiny = new Uint8Array(16);
  try {
    while (await conn.read(tiny) !== null) {
      // Input after a close-delimited response is ignored.
    }
  } catch {
    // closed locally or reset
    reader.cancel().catch(() => {});
    return;
  }
  if (eofIsGone) reader.cancel().catch(() => {});
}

/**
 * Closes after an error response without losing it: half-close our side, discard what the
 * client still sends (bounded in time and bytes), then close. An immediate close with unread
 * input would make the kernel send RST, which can destroy the response in flight.
 */
async function linger(c: H1Conn): Promise<void> {
  try {
    await c.conn.closeWrite();
  } catch {
    c.kill();
    return;
  }
  c.buf = EMPTY;
  c.arm(LINGER_MS);
  const scratch = new Uint8Array(4096);
  let seen = 0;
  try {
    while (seen < LINGER_BYTES) {
      const n = await c.conn.read(scratch);
      if (n === null) break;
      seen += n;
    }
  } catch {
    // killed by the timer or reset
  }
  c.kill();
}

/** Parses a complete request head (latin1 text ending with CRLF CRLF). */
function parseHead(text: string): Head {
  const lines = text.slice(0, -4).split("\r\n");
  const parts = lines[0].split(" ");
  if (parts.length !== 3) throw new Refuse(400, "bad request line");
  const [method, target, version] = parts;
  if (!TOKEN_RE.test(method)) throw new Refuse(400, "bad method");
  const v = VERSION_RE.exec(version);
  if (!v) throw new Refuse(400, "bad HTTP version");
  if (v[1] !== "1" || (v[2] !== "0" && v[2] !== "1")) {
    throw new Refuse(505, "HTTP version not supported");
  }
  const minor = v[2] === "1" ? 1 : 0;
  if (!(TARGET_RE.test(target) || (target === "*" && method === "OPTIONS"))) {
    throw new Refuse(400, "bad request target");
  }
  // Pairs, not a Headers object: `new Request` builds its own from them (one copy, not two).
  const headers: [string, string][] = [];
  let host: string | undefined;
  let hosts = 0;
  const lengths: string[] = [];
  const encodings: string[] = [];
  let connection = "";
  let expect: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
      throw new Refuse(400, "obsolete line folding");
    }
    const field = splitField(line);
    if (!field) throw new Refuse(400, "bad header line");
    const [name, value] = field;
    if (!VALUE_RE.test(value)) throw new Refuse(400, "bad header value");
    switch (name) {
      case "host":
        hosts++;
        host = value;
        break;
      case "content-length":
        lengths.push(value);
        break;
      case "transfer-encoding":
        encodings.push(value);
        break;
      case "connection":
        connection += (connection ? "," : "") + value;
        break;
      case "expect":
        expect = value;
        break;
    }
    headers.push([name, value]);
  }
  if (minor === 1 && hosts !== 1) throw new Refuse(400, hosts ? "repeated Host" : "missing Host");
  if (hosts > 1) throw new Refuse(400, "repeated Host");
  if (host !== undefined && host !== "" && !HOST_RE.test(host)) {
    throw new Refuse(400, "bad Host");
  }

  let contentLength: number | undefined;
  let chunked = false;
  if (encodings.length > 0) {
    if (lengths.length > 0) throw new Refuse(400, "Content-Length with Transfer-Encoding");
    if (minor === 0) throw new Refuse(400, "Transfer-Encoding in HTTP/1.0");
    const te = encodings.join(",").trim().toLowerCase();
    if (encodings.length !== 1 || te !== "chunked") {
      throw te.split(",").some((t) => t.trim() === "chunked")
        ? new Refuse(400, "bad Transfer-Encoding")
        : new Refuse(501, "unsupported Transfer-Encoding");
    }
    chunked = true;
  } else if (lengths.length > 0) {
    if (lengths.length !== 1) throw new Refuse(400, "repeated Content-Length");
    const cl = lengths[0];
    if (!DIGITS_RE.test(cl) || cl.length > 15) throw new Refuse(400, "bad Content-Length");
    contentLength = Number(cl);
  }

  const tokens = connection.toLowerCase().split(",").map((t) => t.trim());
  const keepAlive = minor === 1 ? !tokens.includes("close") : tokens.includes("keep-alive");
  let expectContinue = false;
  if (expect !== undefined) {
    if (expect.toLowerCase() !== "100-continue") throw new Refuse(417, "unsupported Expect");
    expectContinue = minor === 1;
  }
  return {
    method,
    target,
    minor,
    headers,
    host,
    keepAlive,
    contentLength,
    chunked,
    expectContinue,
  };
}

/**
 * Serves `handler` over plain HTTP/1.1 on `opts.hostname:opts.port` (see module docs).
 * Throws like `Deno.listen` when the address cannot be bound.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const srv = serveH1(app.fetch, { hostname: "0.0.0.0", port: 8080, signal: ac.signal });
 * // later
 * ac.abort();
 * await srv.finished;
 * ```
 */
export function serveH1(handler: H1Handler, opts: H1Options): H1Server {
  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const server = new Server(listener, handler, {
    maxHeaderBytes: opts.maxHeaderBytes ?? 16 * 1024,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    headerTimeoutMs: opts.headerTimeoutMs ?? 10_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    writeTimeoutMs: opts.writeTimeoutMs ?? 30_000,
  });
  const addr = listener.addr;
  void server.acceptLoop();
  const shutdown = () => server.shutdown();
  if (opts.signal) {
    if (opts.signal.aborted) void shutdown();
    else opts.signal.addEventListener("abort", () => void shutdown(), { once: true });
  }
  opts.onListen?.(addr);
  return { addr, finished: server.done.promise, shutdown };
}
