/**
 * Server memory per idle SSE stream under `Deno.serve`, over HTTP/1.1 (one TCP connection per
 * stream, as a plain-HTTP deployment or a proxy hop gets them) and over HTTP/2 via HTTPS (many
 * streams multiplexed on each connection, as browsers and mobile HTTP stacks do), for MXFlex
 * (`GET /api/events`) and for a bare `Deno.serve` SSE endpoint (one `ReadableStream` per
 * client, no hono, no hub, no auth) in the same run.
 *
 * ```sh
 * deno run -A --unstable-kv bench/sse_memory.ts [--n=2000] [--per-conn=100] \
 *   [--stack=mxflex,bare] [--proto=h1,h2] [--settle=200]
 * ```
 *
 * Each case starts a fresh `serve_for_bench.ts` child (`--tls` for HTTP/2, `--bare` for the
 * bare endpoint), warms the code paths up with 50 streams, samples the child's RSS after a full
 * GC (`gc <settle>`), opens N streams (each has delivered its first frame, `retry:`) and samples
 * again at N/2 and N. Per-stream cost = (RSS with N streams - RSS before) / N; the marginal
 * cost is the growth from N/2 to N, per stream (it leaves out one-off growth such as V8's young
 * generation). HTTP/2 clients are `node:http2` sessions (ALPN is checked to be `h2`), each
 * carrying `--per-conn` streams; HTTP/1.1 clients are raw TCP sockets. Clients run in this
 * process, so the child's RSS is the server's alone. Needs `ulimit -n` above N + a few hundred.
 *
 * @module
 */
import http2 from "node:http2";
import { CERT } from "../tests/helpers/harness.ts";
import { argNum, login, type MemReply, startBenchServer } from "./load_util.ts";

type Stack = "mxflex" | "bare";
type Proto = "h1" | "h2";

/** One measured case. */
export interface SseMemoryResult {
  stack: Stack;
  proto: Proto;
  /** Streams open at the last sample. */
  streams: number;
  /** TCP connections carrying them. */
  connections: number;
  baseRssMiB: number;
  rssMiB: number;
  /** (RSS with N streams - RSS before) / N, KiB. */
  kibPerStream: number;
  /** RSS growth from N/2 to N streams, per stream, KiB. */
  marginalKibPerStream: number;
  /** V8 heap in use per stream, KiB. */
  heapKibPerStream: number;
}

function argStrings<T extends string>(name: string, def: T[]): T[] {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3).split(",") as T[] : def;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Open streams of one protocol; `open(k)` adds k streams, each past its first frame. */
interface Streams {
  open(k: number): Promise<void>;
  readonly count: number;
  readonly connections: number;
  close(): void;
}

/** HTTP/1.1: one raw TCP connection per stream. */
function h1Streams(url: string, path: string): Streams {
  const port = Number(new URL(url).port);
  const conns: Deno.TcpConn[] = [];
  const openOne = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      enc.encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`),
    );
    const buf = new Uint8Array(4096);
    let got = "";
    while (!got.includes("retry:")) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`stream closed early: ${got.slice(0, 200)}`);
      got += dec.decode(buf.subarray(0, n));
    }
    if (!got.startsWith("HTTP/1.1 200")) throw new Error(`unexpected response: ${got}`);
    conns.push(conn);
  };
  return {
    async open(k) {
      for (let i = 0; i < k; i += 200) {
        await Promise.all(Array.from({ length: Math.min(200, k - i) }, openOne));
      }
    },
    get count() {
      return conns.length;
    },
    get connections() {
      return conns.length;
    },
    close() {
      for (const c of conns.splice(0)) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

/** HTTP/2 over TLS: `perConn` streams per `node:http2` session; ALPN must be `h2`. */
function h2Streams(url: string, path: string, perConn: number): Streams {
  type Session = { s: http2.ClientHttp2Session; streams: number; ready: Promise<void> };
  const sessions: Session[] = [];
  const streams: http2.ClientHttp2Stream[] = [];
  /** The session the next stream goes on (a new one when the last is full). */
  const pick = (): Session => {
    let last = sessions.at(-1);
    if (!last || last.streams >= perConn) {
      const s = http2.connect(url, { ca: CERT });
      const ready = new Promise<void>((resolve, reject) => {
        s.once("connect", () => {
          if (s.alpnProtocol === "h2") resolve();
          else reject(new Error(`ALPN negotiated ${s.alpnProtocol}, not h2`));
        });
        s.once("error", reject);
      });
      s.on("error", () => {});
      last = { s, streams: 0, ready };
      sessions.push(last);
    }
    last.streams++;
    return last;
  };
  const openOne = async (entry: Session) => {
    await entry.ready;
    await new Promise<void>((resolve, reject) => {
      const req = entry.s.request({ ":method": "GET", ":path": path, accept: "text/event-stream" });
      let got = "";
      req.on("response", (h) => {
        if (h[":status"] !== 200) reject(new Error(`status ${h[":status"]}`));
      });
      req.setEncoding("utf8");
      const onData = (d: string) => {
        got += d;
        if (got.includes("retry:")) {
          req.off("data", onData);
          req.on("data", () => {}); // keep reading heartbeats
          streams.push(req);
          resolve();
        }
      };
      req.on("data", onData);
      req.on("error", reject);
      req.on("end", () => reject(new Error(`stream ended early: ${got.slice(0, 200)}`)));
    });
  };
  return {
    async open(k) {
      for (let i = 0; i < k; i += perConn) {
        const batch: Promise<void>[] = [];
        for (let j = i; j < Math.min(k, i + perConn); j++) batch.push(openOne(pick()));
        await Promise.all(batch);
      }
    },
    get count() {
      return streams.length;
    },
    get connections() {
      return sessions.length;
    },
    close() {
      for (const r of streams.splice(0)) r.close(http2.constants.NGHTTP2_CANCEL);
      for (const { s } of sessions.splice(0)) s.destroy();
    },
  };
}

async function measure(
  stack: Stack,
  proto: Proto,
  n: number,
  perConn: number,
  settle: number,
): Promise<SseMemoryResult> {
  const srv = await startBenchServer({ bare: stack === "bare", tls: proto === "h2" });
  const client = proto === "h2" ? Deno.createHttpClient({ caCerts: [CERT] }) : undefined;
  const make = (path: string) =>
    proto === "h1" ? h1Streams(srv.url, path) : h2Streams(srv.url, path, perConn);
  try {
    let path = "/";
    if (stack === "mxflex") {
      const token = client ? await loginWith(srv.url, client) : await login(srv.url);
      path = `/api/events?access_token=${encodeURIComponent(token)}`;
    }
    const sample = async (want?: number): Promise<MemReply> => {
      let m = await srv.cmd<MemReply>(`gc ${settle}`);
      for (let i = 0; want !== undefined && m.subscribers !== want && i < 100; i++) {
        m = await srv.cmd<MemReply>(`gc ${settle}`);
      }
      if (want !== undefined && m.subscribers !== want) {
        throw new Error(`server counts ${m.subscribers} subscribers, expected ${want}`);
      }
      return m;
    };
    // Warm up code paths (and the TLS/HTTP-2 machinery) so the baseline is not inflated.
    const warm = make(path);
    await warm.open(Math.min(50, n));
    warm.close();
    const base = await sample(0);
    const s = make(path);
    const half = Math.floor(n / 2);
    await s.open(half);
    const mid = await sample(half);
    await s.open(n - half);
    const full = await sample(n);
    const kib = (bytes: number, per: number) => +(bytes / per / 1024).toFixed(1);
    const result: SseMemoryResult = {
      stack,
      proto,
      streams: s.count,
      connections: s.connections,
      baseRssMiB: +(base.rss / 2 ** 20).toFixed(1),
      rssMiB: +(full.rss / 2 ** 20).toFixed(1),
      kibPerStream: kib(full.rss - base.rss, n),
      marginalKibPerStream: kib(full.rss - mid.rss, n - half),
      heapKibPerStream: +((full.heapUsed - base.heapUsed) / n / 1024).toFixed(2),
    };
    s.close();
    return result;
  } finally {
    client?.close();
    await srv.close();
  }
}

async function loginWith(url: string, client: Deno.HttpClient): Promise<string> {
  const res = await fetch(`${url}/api/login`, {
    method: "POST",
    body: new URLSearchParams({ login: "dmitry", password: "secret" }),
    client,
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token as string;
}

async function main(): Promise<void> {
  const n = argNum("n", 2000);
  const perConn = argNum("per-conn", 100);
  const settle = argNum("settle", 200);
  const stacks = argStrings<Stack>("stack", ["mxflex", "bare"]);
  const protos = argStrings<Proto>("proto", ["h1", "h2"]);
  const results: SseMemoryResult[] = [];
  for (const stack of stacks) {
    for (const proto of protos) {
      const r = await measure(stack, proto, n, perConn, settle);
      console.log(JSON.stringify(r));
      results.push(r);
    }
  }
  console.table(results);
  for (const r of results) {
    console.log(
      `${r.stack} over ${r.proto === "h1" ? "HTTP/1.1" : "HTTP/2"}: ${r.kibPerStream} KiB per ` +
        `stream (${r.marginalKibPerStream} KiB marginal), ${r.streams} streams on ` +
        `${r.connections} connections`,
    );
  }
}

if (import.meta.main) await main();
