import assert from "node:assert/strict";
import { type H1Handler, type H1Options, serveH1 } from "../lib/http/h1_server.ts";
import { SseHub, sseResponse } from "../lib/sse/hub.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Safety net so a broken server fails a test instead of hanging it (not a timing assertion). */
const SAFETY_MS = 10_000;

interface Srv {
  port: number;
  /** Paths the handler saw, in order. */
  seen: string[];
  close(): Promise<void>;
}

/** An echo-ish test app: routes by path. */
const app: H1Handler = async (req, info) => {
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/echo": {
      const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array(0);
      return Response.json({
        method: req.method,
        url: req.url,
        length: body.length,
        text: dec.decode(body),
        host: req.headers.get("host"),
        x: req.headers.get("x-test"),
        remote: info.remoteAddr.hostname,
      });
    }
    case "/no-content":
      return new Response(null, { status: 204 });
    case "/not-modified":
      return new Response(null, { status: 304, headers: { etag: '"a"' } });
    case "/throw":
      throw new Error("secret stack detail");
    case "/big":
      return new Response("x".repeat(200_000));
    case "/known": {
      const chunks = ["hello ", "known ", "length"];
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          const next = chunks.shift();
          if (next === undefined) c.close();
          else c.enqueue(enc.encode(next));
        },
      });
      return new Response(stream, { headers: { "content-length": "18" } });
    }
    case "/hop":
      return new Response("ok", {
        headers: { connection: "upgrade", "keep-alive": "timeout=1", "x-app": "1" },
      });
    default:
      return new Response(`path ${url.pathname}`, { headers: { "content-type": "text/plain" } });
  }
};

function start(handler: H1Handler = app, opts: Partial<H1Options> = {}): Srv {
  const seen: string[] = [];
  const srv = serveH1((req, info) => {
    seen.push(new URL(req.url).pathname);
    return handler(req, info);
  }, { hostname: "127.0.0.1", port: 0, ...opts });
  return {
    port: srv.addr.port,
    seen,
    close: () => srv.shutdown(),
  };
}

/** A raw client socket with a byte buffer. */
class Raw {
  #buf = new Uint8Array(0);
  eof = false;

  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(data: string | Uint8Array): Promise<void> {
    const b = typeof data === "string" ? enc.encode(data) : data;
    let o = 0;
    while (o < b.length) o += await this.conn.write(b.subarray(o));
  }

  /** Reads more; false on EOF or reset. */
  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let n: number | null;
    try {
      n = await Promise.race([
        this.conn.read(chunk),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error("raw read safety timeout")), SAFETY_MS);
        }),
      ]);
    } catch (err) {
      if (err instanceof Error && err.message.includes("safety")) throw err;
      n = null;
    } finally {
      clearTimeout(timer);
    }
    if (n === null) {
      this.eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** Everything until the server closes. */
  async readAll(): Promise<string> {
    while (await this.#more()) { /* keep reading */ }
    const s = dec.decode(this.#buf);
    this.#buf = new Uint8Array(0);
    return s;
  }

  /** Reads until `text` has arrived; returns (and consumes) everything up to and including it. */
  async readUntil(text: string): Promise<string> {
    for (;;) {
      const s = dec.decode(this.#buf);
      const i = s.indexOf(text);
      if (i >= 0) {
        const upto = s.slice(0, i + text.length);
        this.#buf = enc.encode(s.slice(i + text.length));
        return upto;
      }
      if (!await this.#more()) throw new Error(`EOF before ${JSON.stringify(text)}: ${s}`);
    }
  }

  /** Reads one response (head + content-length body). */
  async response(): Promise<{ status: number; headers: Map<string, string>; body: string }> {
    const head = await this.readUntil("\r\n\r\n");
    const [statusLine, ...lines] = head.slice(0, -4).split("\r\n");
    const status = Number(statusLine.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const l of lines) {
      const i = l.indexOf(":");
      headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    const len = Number(headers.get("content-length") ?? "0");
    while (this.#buf.length < len) {
      if (!await this.#more()) break;
    }
    const body = dec.decode(this.#buf.subarray(0, len));
    this.#buf = this.#buf.subarray(len);
    return { status, headers, body };
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** One-shot exchange: send, read until the server closes. */
async function exchange(port: number, data: string | Uint8Array): Promise<string> {
  const r = await Raw.open(port);
  try {
    await r.send(data);
    return await r.readAll();
  } finally {
    r.close();
  }
}

function statusLines(raw: string): string[] {
  return raw.split("\r\n").filter((l) => /^HTTP\/1\.1 \d{3} /.test(l));
}

Deno.test("h1: GET and POST with content-length and chunked bodies", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send("GET /hello?q=1 HTTP/1.1\r\nHost: example.test:8080\r\n\r\n");
    const a = await r.response();
    assert.equal(a.status, 200);
    assert.equal(a.body, "path /hello");
    assert.equal(a.headers.get("content-length"), "11");
    assert.equal(a.headers.get("content-type"), "text/plain");
    assert.ok(a.headers.get("date"));
    assert.equal(a.headers.get("connection"), undefined);

    await r.send(
      "POST /echo HTTP/1.1\r\nHost: example.test\r\nContent-Length: 11\r\nX-Test: yes\r\n\r\nhello world",
    );
    const b = await r.response();
    const jb = JSON.parse(b.body);
    assert.equal(b.status, 200);
    assert.equal(jb.method, "POST");
    assert.equal(jb.url, "http://example.test/echo");
    assert.equal(jb.text, "hello world");
    assert.equal(jb.x, "yes");
    assert.equal(jb.remote, "127.0.0.1");

    await r.send(
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5;ext=1\r\nhello\r\n6\r\n chunk\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    const c = await r.response();
    assert.equal(c.status, 200);
    assert.equal(JSON.parse(c.body).text, "hello chunk");
    r.close();
  } finally {
    await s.close();
  }
});

Deno.test("h1: bodies and heads split across many small writes and large chunked bodies", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    const body = "0123456789".repeat(30);
    const chunked = body.match(/.{1,37}/g)!.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`)
      .join("");
    const msg = "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
      chunked + "0\r\n\r\n" +
      `POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const bytes = enc.encode(msg);
    for (let i = 0; i < bytes.length; i += 7) await r.send(bytes.subarray(i, i + 7));
    assert.equal(JSON.parse((await r.response()).body).text, body);
    assert.equal(JSON.parse((await r.response()).body).text, body);
    r.close();

    // 320 KiB in 16 KiB chunks from fetch (chunk-size lines land anywhere in the reads).
    const res = await fetch(`http://127.0.0.1:${s.port}/echo`, {
      method: "POST",
      body: new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(16 * 1024).fill(0x61 + i));
          c.close();
        },
      }),
    });
    const j = await res.json();
    assert.equal(j.length, 320 * 1024);
    assert.equal(j.text.slice(16 * 1024 - 1, 16 * 1024 + 1), "ab");
  } finally {
    await s.close();
  }
});

Deno.test("h1: two pipelined keep-alive requests are answered in order", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send(
      "GET /one HTTP/1.1\r\nHost: h\r\n\r\n" +
        "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
    );
    const a = await r.response();
    const b = await r.response();
    assert.equal(a.body, "path /one");
    assert.equal(JSON.parse(b.body).text, "abc");
    // Still open: a third request with Connection: close ends it.
    await r.send("GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const c = await r.response();
    assert.equal(c.body, "path /three");
    assert.equal(c.headers.get("connection"), "close");
    assert.equal(await r.readAll(), "");
    assert.ok(r.eof);
    r.close();
    assert.deepEqual(s.seen, ["/one", "/echo", "/three"]);
  } finally {
    await s.close();
  }
});

Deno.test("h1: HTTP/1.0 closes unless keep-alive is asked for", async () => {
  const s = start();
  try {
    const raw = await exchange(s.port, "GET /a HTTP/1.0\r\n\r\n");
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(raw, /connection: close/);
    assert.ok(raw.endsWith("path /a"));

    const r = await Raw.open(s.port);
    await r.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const a = await r.response();
    assert.equal(a.headers.get("connection"), "keep-alive");
    await r.send("GET /c HTTP/1.0\r\n\r\n");
    const b = await r.response();
    assert.equal(b.body, "path /c");
    assert.equal(await r.readAll(), "");
    r.close();
  } finally {
    await s.close();
  }
});

Deno.test("h1: HEAD sends headers only, 204/304 have no body, framing stays intact", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send(
      "HEAD /known HTTP/1.1\r\nHost: h\r\n\r\n" +
        "GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n" +
        "GET /not-modified HTTP/1.1\r\nHost: h\r\n\r\n" +
        "GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    const all = await r.readAll();
    r.close();
    const parts = all.split("\r\n\r\n");
    // HEAD: the declared length, no body.
    assert.match(parts[0], /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(parts[0], /content-length: 18/);
    assert.match(parts[1], /^HTTP\/1\.1 204 No Content\r\n/);
    assert.doesNotMatch(parts[1], /content-length/);
    assert.match(parts[2], /^HTTP\/1\.1 304 Not Modified\r\n/);
    assert.match(parts[2], /etag: "a"/);
    assert.match(parts[3], /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(parts[4], "path /after");
  } finally {
    await s.close();
  }
});

Deno.test("h1: Expect: 100-continue gets an interim response before the body is read", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send(
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    assert.equal(await r.readUntil("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
    await r.send("ping");
    const res = await r.response();
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).text, "ping");
    r.close();
  } finally {
    await s.close();
  }
});

Deno.test("h1: hop-by-hop headers from the app are dropped; handler errors are a JSON 500", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send("GET /hop HTTP/1.1\r\nHost: h\r\n\r\nGET /throw HTTP/1.1\r\nHost: h\r\n\r\n");
    const a = await r.response();
    assert.equal(a.headers.get("connection"), undefined);
    assert.equal(a.headers.get("keep-alive"), undefined);
    assert.equal(a.headers.get("x-app"), "1");
    const b = await r.response();
    assert.equal(b.status, 500);
    assert.equal(b.body, '{"error":"internal error"}');
    assert.equal(b.headers.get("content-type"), "application/json");
    assert.ok(!b.body.includes("secret"));
    r.close();
  } finally {
    await s.close();
  }
});

Deno.test("h1: SSE streams immediately, close-delimited; client disconnect cancels the body", async () => {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const cancelled = Promise.withResolvers<void>();
  const frame = enc.encode("data: hello\n\n");
  const s = start(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          ctl = c;
        },
        cancel() {
          cancelled.resolve();
        },
      }),
      { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } },
    )
  );
  try {
    const r = await Raw.open(s.port);
    await r.send("GET /events HTTP/1.1\r\nHost: h\r\n\r\n");
    // The head arrives before any event (nothing buffered while waiting for a body).
    const head = await r.readUntil("\r\n\r\n");
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /content-type: text\/event-stream/);
    assert.match(head, /connection: close/);
    assert.doesNotMatch(head, /content-length|transfer-encoding/);
    ctl.enqueue(frame);
    assert.equal(await r.readUntil("\n\n"), "data: hello\n\n");
    ctl.enqueue(frame);
    assert.equal(await r.readUntil("\n\n"), "data: hello\n\n");
    r.close();
    await cancelled.promise;
  } finally {
    await s.close();
  }
});

Deno.test("h1: SseHub subscriber is released when the client leaves; hub close ends the response", async () => {
  const hub = new SseHub({ heartbeatMs: 0 });
  const closed = Promise.withResolvers<void>();
  const s = start((req) =>
    sseResponse(
      hub.subscribe(new URL(req.url).searchParams.get("t") ?? "x", {
        onClose: () => closed.resolve(),
      }),
    )
  );
  try {
    const a = await Raw.open(s.port);
    await a.send("GET /?t=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    await a.readUntil("retry: 3000\n\n");
    hub.publish("1", "Ev", "{}");
    assert.match(await a.readUntil("\n\n"), /event: Ev\ndata: \{\}/);
    assert.equal(hub.subscriberCount(), 1);
    a.close();
    await closed.promise;
    assert.equal(hub.subscriberCount(), 0);

    const b = await Raw.open(s.port);
    await b.send("GET /?t=2 HTTP/1.1\r\nHost: h\r\n\r\n");
    await b.readUntil("retry: 3000\n\n");
    hub.closeTopic("2");
    assert.equal(await b.readAll(), "");
    assert.ok(b.eof);
    b.close();
  } finally {
    hub.close();
    await s.close();
  }
});

Deno.test("h1: request smuggling and malformed heads are refused and the connection closed", async () => {
  const s = start();
  const second = "GET /second HTTP/1.1\r\nHost: h\r\n\r\n";
  const cases: [string, string, number][] = [
    [
      "CL + TE",
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "TE + CL",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "double CL (same)",
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      400,
    ],
    [
      "double CL (different)",
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 0\r\n\r\nabc",
      400,
    ],
    ["CL list", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400],
    ["negative CL", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400],
    ["signed CL", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400],
    ["hex CL", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc", 400],
    [
      "huge CL",
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
      400,
    ],
    ["TE gzip", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
    [
      "TE chunked, chunked",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "TE twice",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "TE gzip, chunked",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "TE with obs-fold",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "TE in HTTP/1.0",
      "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "chunk size not hex",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      400,
    ],
    [
      "negative chunk size",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
      400,
    ],
    [
      "0x chunk size",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
      400,
    ],
    [
      "empty chunk size",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n",
      400,
    ],
    [
      "overlong chunk size",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n",
      400,
    ],
    [
      "chunk data longer than its size",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
      400,
    ],
    [
      "chunk size with bare LF",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
      400,
    ],
    ["bare LF in head", "GET /echo HTTP/1.1\nHost: h\n\n", 400],
    ["obs-fold", "GET /echo HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400],
    ["space before colon", "GET /echo HTTP/1.1\r\nHost: h\r\nX-A : a\r\n\r\n", 400],
    ["bad header name", "GET /echo HTTP/1.1\r\nHost: h\r\nX(A): a\r\n\r\n", 400],
    ["NUL in value", "GET /echo HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", 400],
    ["CR in value", "GET /echo HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400],
    ["absolute-form", "GET http://h/echo HTTP/1.1\r\nHost: h\r\n\r\n", 400],
    ["authority-form", "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400],
    ["star for GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400],
    ["two spaces", "GET  /echo HTTP/1.1\r\nHost: h\r\n\r\n", 400],
    ["bad method", "G(T /echo HTTP/1.1\r\nHost: h\r\n\r\n", 400],
    ["bad version", "GET /echo HTTP/1.x\r\nHost: h\r\n\r\n", 400],
    ["HTTP/2.0", "GET /echo HTTP/2.0\r\nHost: h\r\n\r\n", 505],
    ["HTTP/0.9 style", "GET /echo\r\n\r\n", 400],
    ["missing Host", "GET /echo HTTP/1.1\r\nX-A: a\r\n\r\n", 400],
    ["repeated Host", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["Host with userinfo", "GET /echo HTTP/1.1\r\nHost: a@b\r\n\r\n", 400],
    ["Host with path", "GET /echo HTTP/1.1\r\nHost: a/b\r\n\r\n", 400],
    ["TRACE", "TRACE /echo HTTP/1.1\r\nHost: h\r\n\r\n", 501],
    ["unknown expectation", "GET /echo HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417],
  ];
  try {
    for (const [name, req, status] of cases) {
      const raw = await exchange(s.port, req + second);
      const lines = statusLines(raw);
      assert.equal(lines.length, 1, `${name}: one response only, got ${JSON.stringify(raw)}`);
      assert.match(lines[0], new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${lines[0]}`);
      assert.match(raw, /connection: close/, name);
      assert.match(raw, /\r\n\r\n\{"error":"[^"]+"\}$/, name);
      assert.ok(!s.seen.includes("/second"), `${name}: second request processed`);
    }
    // None of them reached the app.
    assert.deepEqual(s.seen, []);
  } finally {
    await s.close();
  }
});

Deno.test("h1: head over maxHeaderBytes -> 431; body over maxBodyBytes -> 413", async () => {
  const s = start(app, { maxHeaderBytes: 1024, maxBodyBytes: 100 });
  try {
    const big = await exchange(
      s.port,
      `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    // Without the end of the head ever arriving.
    const endless = await exchange(
      s.port,
      `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${"a".repeat(5000)}`,
    );
    assert.match(endless, /^HTTP\/1\.1 431 /);

    const cl = await exchange(
      s.port,
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n",
    );
    assert.match(cl, /^HTTP\/1\.1 413 Content Too Large\r\n/);
    // 100-continue is not sent for a body that will be refused.
    const expect = await exchange(
      s.port,
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
    );
    assert.match(expect, /^HTTP\/1\.1 413 /);
    const chunked = await exchange(
      s.port,
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
        `40\r\n${"a".repeat(64)}\r\n40\r\n${"b".repeat(64)}\r\n0\r\n\r\n`,
    );
    assert.match(chunked, /^HTTP\/1\.1 413 /);
    // Exactly at the limit is fine.
    const ok = await exchange(
      s.port,
      `POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\nConnection: close\r\n\r\n${
        "c".repeat(100)
      }`,
    );
    assert.match(ok, /^HTTP\/1\.1 200 /);
    assert.deepEqual(s.seen, ["/echo"]);
  } finally {
    await s.close();
  }
});

Deno.test("h1: slowloris head is cut after headerTimeoutMs; idle keep-alive after idleTimeoutMs", async () => {
  const s = start(app, { headerTimeoutMs: 100, idleTimeoutMs: 150 });
  try {
    const r = await Raw.open(s.port);
    await r.send("GET / HTTP/1.1\r\nHost: h\r\n");
    // The server closes without answering (read returns EOF; the safety net would fail the test).
    assert.equal(await r.readAll(), "");
    assert.ok(r.eof);
    r.close();

    const k = await Raw.open(s.port);
    await k.send("GET /once HTTP/1.1\r\nHost: h\r\n\r\n");
    assert.equal((await k.response()).body, "path /once");
    assert.equal(await k.readAll(), "");
    assert.ok(k.eof);
    k.close();
    assert.deepEqual(s.seen, ["/once"]);
  } finally {
    await s.close();
  }
});

Deno.test("h1: fetch() from Deno works (small, large, known-length and posted bodies)", async () => {
  const s = start();
  const base = `http://127.0.0.1:${s.port}`;
  try {
    const a = await fetch(`${base}/hello`);
    assert.equal(a.status, 200);
    assert.equal(await a.text(), "path /hello");

    const b = await fetch(`${base}/echo`, { method: "POST", body: "x=1&y=2" });
    const jb = await b.json();
    assert.equal(jb.text, "x=1&y=2");
    assert.equal(jb.url, `${base}/echo`);

    const big = await fetch(`${base}/big`);
    assert.equal(big.headers.get("content-length"), null);
    assert.equal((await big.text()).length, 200_000);

    const known = await fetch(`${base}/known`);
    assert.equal(known.headers.get("content-length"), "18");
    assert.equal(await known.text(), "hello known length");

    // A streamed request body (fetch sends it chunked).
    const streamed = await fetch(`${base}/echo`, {
      method: "POST",
      body: new ReadableStream({
        start(c) {
          c.enqueue(enc.encode("part1-"));
          c.enqueue(enc.encode("part2"));
          c.close();
        },
      }),
    });
    assert.equal((await streamed.json()).text, "part1-part2");

    const err = await fetch(`${base}/throw`);
    assert.equal(err.status, 500);
    assert.deepEqual(await err.json(), { error: "internal error" });
  } finally {
    await s.close();
  }
});

Deno.test("h1: 50 concurrent clients", async () => {
  const s = start(async (req) => {
    const body = await req.text();
    await new Promise((r) => setTimeout(r, 1));
    return new Response(`${new URL(req.url).pathname}:${body}`);
  });
  try {
    const fetches = Array.from({ length: 50 }, async (_, i) => {
      const res = await fetch(`http://127.0.0.1:${s.port}/f${i}`, { method: "POST", body: `${i}` });
      return await res.text();
    });
    const raws = Array.from({ length: 50 }, async (_, i) => {
      const raw = await exchange(
        s.port,
        `POST /r${i} HTTP/1.1\r\nHost: h\r\nContent-Length: ${String(i).length}\r\n` +
          `Connection: close\r\n\r\n${i}`,
      );
      return raw.slice(raw.indexOf("\r\n\r\n") + 4);
    });
    const got = await Promise.all([...fetches, ...raws]);
    for (let i = 0; i < 50; i++) {
      assert.equal(got[i], `/f${i}:${i}`);
      assert.equal(got[50 + i], `/r${i}:${i}`);
    }
  } finally {
    await s.close();
  }
});

Deno.test("h1: shutdown closes idle connections, cancels streams and resolves finished", async () => {
  const cancelled = Promise.withResolvers<void>();
  const srv = serveH1((req) => {
    if (new URL(req.url).pathname === "/sse") {
      return new Response(
        new ReadableStream<Uint8Array>({
          cancel() {
            cancelled.resolve();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    return new Response("ok");
  }, { hostname: "127.0.0.1", port: 0 });
  const idle = await Raw.open(srv.addr.port);
  await idle.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  await idle.response();
  const sse = await Raw.open(srv.addr.port);
  await sse.send("GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
  await sse.readUntil("\r\n\r\n");
  await srv.shutdown();
  await srv.finished;
  await cancelled.promise;
  assert.equal(await idle.readAll(), "");
  assert.equal(await sse.readAll(), "");
  idle.close();
  sse.close();
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port }));
});

Deno.test("h1: abort signal shuts down; onListen reports the address", async () => {
  const ac = new AbortController();
  let listened: Deno.NetAddr | undefined;
  const srv = serveH1(() => new Response("ok"), {
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (a) => (listened = a),
  });
  assert.equal(listened?.port, srv.addr.port);
  const res = await fetch(`http://127.0.0.1:${srv.addr.port}/`);
  assert.equal(await res.text(), "ok");
  ac.abort();
  await srv.finished;
});

Deno.test("h1: a header value with a long run of spaces is parsed in linear time", async () => {
  const s = start(async (req) => {
    const x = req.headers.get("x-test") ?? "";
    const t = req.body ? await req.text() : "";
    return new Response(`${x.length}:${x.slice(0, 2)}|${x.slice(-2)}:${t}`);
  }, { maxHeaderBytes: 96 * 1024 });
  try {
    const r = await Raw.open(s.port);
    const spaces = " ".repeat(70_000);
    const t0 = performance.now();
    await r.send(`GET /echo HTTP/1.1\r\nHost: h\r\nX-Test: \t a${spaces}b \t\r\n\r\n`);
    const a = await r.response();
    // A bound against quadratic backtracking (seconds), not a performance measurement.
    assert.ok(performance.now() - t0 < 2000, "answers within 2 s");
    assert.equal(a.status, 200);
    assert.equal(a.body, `70002:a | b:`);
    // Same for a trailer, and trimming still works on both ends.
    await r.send(
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Test:  v \r\n\r\n" +
        `2\r\nok\r\n0\r\nX-T: a${spaces}b\r\n\r\n`,
    );
    const b = await r.response();
    assert.ok(performance.now() - t0 < 4000, "answers within 4 s");
    assert.equal(b.status, 200);
    assert.equal(b.body, "1:v|v:ok");
    // Malformed names are still refused.
    await r.send("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n");
    assert.equal((await r.response()).status, 400);
    r.close();
  } finally {
    await s.close();
  }
});

/** Resolves with true when `p` settles, false after the safety net (not a timing assertion). */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), SAFETY_MS)));
  try {
    return await Promise.race([p.then(() => true), t]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("h1: a failed head write cancels the response body (no leaked source)", async () => {
  for (const kind of ["sse", "known", "unknown"]) {
    const cancelled = Promise.withResolvers<void>();
    const called = Promise.withResolvers<void>();
    const go = Promise.withResolvers<void>();
    const s = start(async (req) => {
      if (new URL(req.url).pathname === "/small") return new Response("small");
      called.resolve();
      await go.promise;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          if (kind === "unknown") c.enqueue(new Uint8Array(100_000));
        },
        cancel() {
          cancelled.resolve();
        },
      });
      const headers: Record<string, string> = kind === "sse"
        ? { "content-type": "text/event-stream" }
        : kind === "known"
        ? { "content-length": "1000" }
        : {};
      return new Response(stream, { headers });
    });
    try {
      const r = await Raw.open(s.port);
      await r.send("GET /small HTTP/1.1\r\nHost: h\r\n\r\nGET /stream HTTP/1.1\r\nHost: h\r\n\r\n");
      assert.ok(await settles(called.promise), `${kind}: handler called`);
      // Unread input (the /small response) makes this close a reset.
      r.close();
      await new Promise((res) => setTimeout(res, 100));
      go.resolve();
      assert.ok(await settles(cancelled.promise), `${kind}: body cancelled`);
    } finally {
      go.resolve();
      await s.close();
    }
  }
});

Deno.test("h1: many one-byte chunks are decoded without a per-chunk allocation", async () => {
  const N = 500_000;
  let expected = "";
  for (let i = 0; i < N; i++) expected += String.fromCharCode(0x61 + (i % 26));
  const s = start(async (req) => {
    const t = await req.text();
    return new Response(`${t.length}:${t === expected}`);
  });
  try {
    const r = await Raw.open(s.port);
    let msg = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (let i = 0; i < N; i++) msg += `1\r\n${expected[i]}\r\n`;
    msg += "0\r\n\r\n";
    const bytes = enc.encode(msg);
    const before = Deno.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 5);
    try {
      await r.send(bytes);
      const a = await r.response();
      assert.equal(a.status, 200);
      assert.equal(a.body, `${N}:true`);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, Deno.memoryUsage().rss);
    // Rough bound: per-chunk buffers cost ~1 KB each (hundreds of MB here).
    assert.ok(peak - before < 64 * 1024 * 1024, `rss grew by ${peak - before}`);
    r.close();
  } finally {
    await s.close();
  }
});

Deno.test("h1: a declared Content-Length is not allocated before the bytes arrive", async () => {
  const s = start(app, { maxBodyBytes: 1024 * 1024 * 1024 });
  const conns: Raw[] = [];
  try {
    const before = Deno.memoryUsage();
    for (let i = 0; i < 4; i++) {
      const r = await Raw.open(s.port);
      conns.push(r);
      await r.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 500000000\r\n\r\nabc");
    }
    // Let the server read the heads (a settle delay, not a timing assertion).
    await new Promise((res) => setTimeout(res, 200));
    const after = Deno.memoryUsage();
    const grown = Math.max(after.rss - before.rss, after.external - before.external);
    assert.ok(grown < 64 * 1024 * 1024, `memory grew by ${grown}`);
  } finally {
    for (const r of conns) r.close();
    await s.close();
  }
});

/** A lazily produced known-length body of `size` bytes that records its cancellation. */
function bigBody(size: number, cancelled: PromiseWithResolvers<void>): Response {
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024).fill(0x78);
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= size) return c.close();
      const n = Math.min(chunk.length, size - sent);
      sent += n;
      c.enqueue(chunk.subarray(0, n));
    },
    cancel() {
      cancelled.resolve();
    },
  });
  return new Response(stream, { headers: { "content-length": String(size) } });
}

Deno.test("h1: a client that never reads is cut after writeTimeoutMs; shutdown resolves", async () => {
  const cancelled = Promise.withResolvers<void>();
  const srv = serveH1(() => bigBody(64 * 1024 * 1024, cancelled), {
    hostname: "127.0.0.1",
    port: 0,
    writeTimeoutMs: 200,
  });
  const r = await Raw.open(srv.addr.port);
  try {
    await r.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    // Nothing is read: the socket buffers fill and the server's write stalls.
    assert.ok(await settles(cancelled.promise), "body cancelled after the write timeout");
    assert.ok(await settles(srv.shutdown()), "shutdown resolves");
  } finally {
    r.close();
    await srv.shutdown();
  }
});

Deno.test("h1: shutdown cuts a stuck writer after a short grace period", async () => {
  const cancelled = Promise.withResolvers<void>();
  const srv = serveH1(() => bigBody(64 * 1024 * 1024, cancelled), {
    hostname: "127.0.0.1",
    port: 0,
  });
  const r = await Raw.open(srv.addr.port);
  try {
    await r.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    await r.readUntil("\r\n\r\n");
    assert.ok(await settles(srv.shutdown()), "shutdown resolves");
    assert.ok(await settles(cancelled.promise), "body cancelled");
  } finally {
    r.close();
    await srv.shutdown();
  }
});

Deno.test("h1: Response.error() from the app is a JSON 500", async () => {
  const s = start(() => Response.error());
  try {
    const r = await Raw.open(s.port);
    await r.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    const a = await r.response();
    assert.equal(a.status, 500);
    assert.equal(a.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(a.body), { error: "internal error" });
    r.close();
  } finally {
    await s.close();
  }
});

Deno.test("h1: a lower-case head method is a HEAD (no body sent)", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send("head /hello HTTP/1.1\r\nHost: h\r\n\r\nGET /again HTTP/1.1\r\nHost: h\r\n\r\n");
    const first = await r.readUntil("\r\n\r\n");
    assert.match(first, /^HTTP\/1\.1 200 OK\r\n/);
    const second = await r.response();
    assert.equal(second.status, 200);
    assert.equal(second.body, "path /again");
    r.close();
  } finally {
    await s.close();
  }
});

/** Decodes a complete chunked body; throws on bad framing or a missing last chunk. */
function dechunk(s: string): string {
  let out = "";
  let i = 0;
  for (;;) {
    const eol = s.indexOf("\r\n", i);
    if (eol < 0) throw new Error("truncated chunked body");
    const size = parseInt(s.slice(i, eol), 16);
    if (Number.isNaN(size)) throw new Error("bad chunk size line");
    if (size === 0) {
      if (s.slice(eol, eol + 4) !== "\r\n\r\n") throw new Error("bad last chunk");
      return out;
    }
    out += s.slice(eol + 2, eol + 2 + size);
    if (s.slice(eol + 2 + size, eol + 4 + size) !== "\r\n") throw new Error("bad chunk end");
    i = eol + 4 + size;
  }
}

Deno.test("h1: long bodies of unknown length are chunked for HTTP/1.1 (keep-alive)", async () => {
  const s = start();
  try {
    const r = await Raw.open(s.port);
    await r.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    const head = await r.readUntil("\r\n\r\n");
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /\r\ntransfer-encoding: chunked\r\n/);
    assert.doesNotMatch(head, /content-length|connection: close/);
    const body = await r.readUntil("\r\n0\r\n\r\n");
    assert.equal(dechunk(body), "x".repeat(200_000));
    // The connection is still usable.
    await r.send("GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
    assert.equal((await r.response()).body, "path /after");
    r.close();

    // HTTP/1.0 keeps the close-delimited framing.
    const raw = await exchange(s.port, "GET /big HTTP/1.0\r\n\r\n");
    const [h10, b10] = [
      raw.slice(0, raw.indexOf("\r\n\r\n")),
      raw.slice(raw.indexOf("\r\n\r\n") + 4),
    ];
    assert.match(h10, /\r\nconnection: close/);
    assert.doesNotMatch(h10, /transfer-encoding/);
    assert.equal(b10, "x".repeat(200_000));
  } finally {
    await s.close();
  }
});

Deno.test("h1: a producer error mid-body leaves the chunked response visibly truncated", async () => {
  let pulls = 0;
  const s = start(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(100_000).fill(0x79));
        },
        pull(c) {
          // Runs once the first chunk has been taken.
          if (pulls++ > 0) c.error(new Error("producer failed"));
        },
      }),
    )
  );
  try {
    const raw = await exchange(s.port, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    const i = raw.indexOf("\r\n\r\n");
    assert.match(raw.slice(0, i), /\r\ntransfer-encoding: chunked/);
    const body = raw.slice(i + 4);
    assert.ok(!body.endsWith("0\r\n\r\n"), "no last chunk after an error");
    assert.throws(() => dechunk(body));
  } finally {
    await s.close();
  }
});

Deno.test("h1: a client half-close does not cut a non-SSE streamed body", async () => {
  const go = Promise.withResolvers<void>();
  const s = start(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          c.enqueue(new Uint8Array(100_000).fill(0x7a));
          await go.promise;
          c.enqueue(enc.encode("END"));
          c.close();
        },
      }),
    )
  );
  try {
    const r = await Raw.open(s.port);
    await r.send("GET / HTTP/1.0\r\n\r\n");
    await r.conn.closeWrite();
    await r.readUntil("\r\n\r\n");
    // Let the server see the EOF (a settle delay, not a timing assertion).
    await new Promise((res) => setTimeout(res, 100));
    go.resolve();
    const rest = await r.readAll();
    assert.ok(rest.endsWith("zzzEND"), "the whole body arrives");
    r.close();
  } finally {
    go.resolve();
    await s.close();
  }
});
