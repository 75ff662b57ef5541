/**
 * `GET /api/contacts` load: C concurrent keep-alive clients, each sending its next request as
 * soon as the previous answer is read, for a fixed duration, with a Bearer JWT that the server
 * verifies on every request (HS256 via jose).
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_contacts.ts [--c=50] [--seconds=10] [--warmup=2] [--wrk] \
 *   [--server=lean|deno]
 * ```
 *
 * The server is a `serve_for_bench.ts` child (simulator + MXFlex; 67 contacts). Clients are
 * raw keep-alive HTTP/1.1 sockets in this process (one request in flight per socket), which
 * costs far less CPU than `fetch` and so leaves more of the 2 cores to the server. `--wrk`
 * also runs `wrk -t1 -c<C> -d<seconds>s --latency -H "Authorization: Bearer <token>"` against
 * the same server when wrk is installed (`apt-get install wrk`).
 *
 * @module
 */
import { argNum, login, percentile, sleep, startBenchServer } from "./load_util.ts";

/** Result of one load run. */
export interface LoadResult {
  /** Concurrent clients. */
  clients: number;
  /** Measured seconds. */
  seconds: number;
  /** 200 responses. */
  ok: number;
  /** Non-200 responses and socket errors. */
  errors: number;
  /** Requests per second (ok only). */
  rps: number;
  /** Latency percentiles, ms. */
  p50: number;
  /** 99th percentile, ms. */
  p99: number;
  /** Maximum, ms. */
  max: number;
  /** Response body size, bytes. */
  bodyBytes: number;
}

const CRLF2 = new Uint8Array([13, 10, 13, 10]);

function indexOfSeq(hay: Uint8Array, needle: Uint8Array, from: number, to: number): number {
  outer: for (let i = from; i <= to - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * One keep-alive HTTP/1.1 client: sends a GET and reads one response (Content-Length or
 * chunked body) per call. Minimal by design; the server under test always answers with
 * `content-length` for this route.
 */
class KeepAliveClient {
  #conn!: Deno.TcpConn;
  #req: Uint8Array;
  #buf = new Uint8Array(64 * 1024);
  #len = 0;
  #dec = new TextDecoder();

  constructor(path: string, token: string) {
    this.#req = new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
        `Accept: application/json\r\n\r\n`,
    );
  }

  async connect(port: number): Promise<void> {
    this.#conn = await Deno.connect({ hostname: "127.0.0.1", port });
    this.#conn.setNoDelay(true);
  }

  /** Sends one request; returns the status and body length. */
  async request(): Promise<{ status: number; bodyBytes: number }> {
    await this.#conn.write(this.#req);
    for (;;) {
      const headEnd = indexOfSeq(this.#buf, CRLF2, 0, this.#len);
      if (headEnd >= 0) {
        const head = this.#dec.decode(this.#buf.subarray(0, headEnd));
        const status = Number(head.slice(9, 12));
        const m = head.match(/\r\ncontent-length:\s*(\d+)/i);
        if (!m) throw new Error("response without content-length");
        const total = headEnd + 4 + Number(m[1]);
        while (this.#len < total) await this.#fill();
        this.#buf.copyWithin(0, total, this.#len);
        this.#len -= total;
        return { status, bodyBytes: Number(m[1]) };
      }
      await this.#fill();
    }
  }

  async #fill(): Promise<void> {
    if (this.#len === this.#buf.length) throw new Error("response too large");
    const n = await this.#conn.read(this.#buf.subarray(this.#len));
    if (n === null) throw new Error("connection closed");
    this.#len += n;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** Runs `clients` loops for `seconds` (after `warmup` seconds not counted). */
export async function loadContacts(
  url: string,
  token: string,
  clients: number,
  seconds: number,
  warmup: number,
): Promise<LoadResult> {
  const port = Number(new URL(url).port);
  const lat: number[] = [];
  let ok = 0, errors = 0, bodyBytes = 0;
  const start = performance.now();
  const measureFrom = start + warmup * 1000;
  const stopAt = measureFrom + seconds * 1000;
  const worker = async () => {
    let c: KeepAliveClient | undefined;
    while (performance.now() < stopAt) {
      try {
        if (!c) {
          c = new KeepAliveClient("/api/contacts", token);
          await c.connect(port);
        }
        const t0 = performance.now();
        const r = await c.request();
        const t1 = performance.now();
        if (t0 < measureFrom || t1 > stopAt) continue;
        if (r.status === 200) {
          ok++;
          bodyBytes = r.bodyBytes;
          lat.push(t1 - t0);
        } else {
          errors++;
        }
      } catch {
        if (performance.now() >= measureFrom) errors++;
        c?.close();
        c = undefined;
        await sleep(10);
      }
    }
    c?.close();
  };
  await Promise.all(Array.from({ length: clients }, worker));
  lat.sort((a, b) => a - b);
  return {
    clients,
    seconds,
    ok,
    errors,
    rps: ok / seconds,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    bodyBytes,
  };
}

async function runWrk(url: string, token: string, clients: number, seconds: number) {
  const args = [
    "-t1",
    `-c${clients}`,
    `-d${seconds}s`,
    "--latency",
    "-H",
    `Authorization: Bearer ${token}`,
    `${url}/api/contacts`,
  ];
  console.log(`\n$ wrk ${args.map((a) => a.includes(" ") ? `"${a}"` : a).join(" ")}`);
  try {
    const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" })
      .output();
    console.log(new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr));
  } catch (err) {
    console.log(`wrk not available: ${(err as Error).message}`);
  }
}

if (import.meta.main) {
  const clients = argNum("c", 50);
  const seconds = argNum("seconds", 10);
  const warmup = argNum("warmup", 2);
  const srv = await startBenchServer();
  try {
    const token = await login(srv.url);
    const r = await loadContacts(srv.url, token, clients, seconds, warmup);
    console.log(
      `GET /api/contacts, ${clients} keep-alive clients, ${seconds}s (+${warmup}s warm-up): ` +
        `${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ` +
        `max ${r.max.toFixed(2)} ms, ok ${r.ok}, errors ${r.errors}, body ${r.bodyBytes} B`,
    );
    console.log(`JSON ${JSON.stringify(r)}`);
    if (Deno.args.includes("--wrk")) await runWrk(srv.url, token, clients, seconds);
  } finally {
    await srv.close();
  }
}
