/**
 * Helpers for the load scripts (`bench/load_*.ts`): start `serve_for_bench.ts` in a child
 * process and talk to it line by line, read a process's memory from `/proc`, percentiles.
 *
 * @module
 */
import type { ServeHello } from "./serve_for_bench.ts";

export type { MemReply, ServeHello } from "./serve_for_bench.ts";
export { wallMs } from "./serve_for_bench.ts";
import { wallMs } from "./serve_for_bench.ts";

/** A running `serve_for_bench.ts` child. */
export interface BenchServer {
  /** Base URL. */
  url: string;
  /** Child pid. */
  pid: number;
  /** Sends one command line and resolves with its JSON reply. */
  cmd<T = Record<string, unknown>>(line: string): Promise<T>;
  /** Asks the child to quit and waits for it (at most 5 s, then kills it). */
  close(): Promise<void>;
}

/**
 * Starts the benchmark server child (`Deno.serve`; `opts.tls`: HTTPS with HTTP/2 by ALPN on
 * `https://localhost:<port>`, clients need the fixture certificate `CERT` as CA).
 *
 * @example
 * ```ts
 * const srv = await startBenchServer();
 * const m = await srv.cmd<MemReply>("gc");
 * await srv.close();
 * ```
 */
export async function startBenchServer(
  opts: { bare?: boolean; simOnly?: boolean; sim?: string; tls?: boolean; users?: number } = {},
): Promise<BenchServer & { simPort?: number }> {
  const args = [
    "run",
    "-A",
    "--unstable-kv",
    "--v8-flags=--expose-gc",
    new URL("./serve_for_bench.ts", import.meta.url).pathname,
  ];
  if (opts.bare) args.push("--bare");
  if (opts.simOnly) args.push("--sim-only");
  if (opts.sim) args.push(`--sim=${opts.sim}`);
  if (opts.tls) args.push("--tls");
  if (opts.users) args.push(`--users=${opts.users}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const readLine = async (): Promise<string> => {
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return line;
      }
      const { done, value } = await lines.read();
      if (done) throw new Error("bench server exited");
      buf += value;
    }
  };
  const hello = JSON.parse(await readLine()) as ServeHello;
  // Commands are strictly sequential: chain them so replies match requests.
  let chain: Promise<unknown> = Promise.resolve();
  const enc = new TextEncoder();
  const cmd = <T>(line: string): Promise<T> => {
    const p = chain.then(async () => {
      await writer.write(enc.encode(line + "\n"));
      const r = JSON.parse(await readLine());
      if (r.error) throw new Error(`bench server: ${r.error}`);
      return r as T;
    });
    chain = p.catch(() => {});
    return p;
  };
  return {
    url: hello.url,
    pid: hello.pid,
    simPort: hello.simPort,
    cmd,
    async close() {
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      try {
        await cmd("quit");
      } catch {
        // exited already
      }
      await writer.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.status;
      clearTimeout(timer);
    },
  };
}

/** `VmRSS` and `VmHWM` of a process from `/proc/<pid>/status`, in bytes. */
export function procMem(pid: number): { rss: number; hwm: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
  return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
}

/** User + system CPU time of a process from `/proc/<pid>/stat`, in ms (10 ms resolution). */
export function procCpuMs(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Resets `VmHWM` (peak RSS) of a process to its current RSS (Linux `clear_refs` = 5). */
export function resetPeakRss(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** The `p`-th percentile (0–100, nearest rank) of ascending-sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Logs in with the Flex API and returns the access token. */
export async function login(url: string, user = "dmitry", password = "secret"): Promise<string> {
  const res = await fetch(`${url}/api/login`, {
    method: "POST",
    body: new URLSearchParams({ login: user, password }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token as string;
}

/** Formats bytes as MiB with one decimal. */
export function mib(n: number): string {
  return (n / 1024 / 1024).toFixed(1);
}

/** Reads `--name=value` from `Deno.args`, with a default. */
export function argNum(name: string, def: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : def;
}

/** Reads `--name=a,b,c` from `Deno.args` as numbers, with a default. */
export function argList(name: string, def: number[]): number[] {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3).split(",").map(Number) : def;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const CRLF2 = new Uint8Array([13, 10, 13, 10]);

/** Index of `needle` in `hay[0, to)`, or -1. */
function indexOfSeq(hay: Uint8Array, needle: Uint8Array, to: number): number {
  outer: for (let i = 0; i <= to - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * One keep-alive raw HTTP/1.1 client for load scripts: GET with a Bearer token, one response
 * per call (`content-length` bodies only, which is what the measured routes send). Raw
 * sockets instead of `fetch` keep the client's CPU cost small next to the server's.
 * Connects on the first request and again after {@link close}.
 */
export class KeepAliveGet {
  #conn?: Deno.TcpConn;
  #req: Uint8Array;
  #buf = new Uint8Array(64 * 1024);
  #len = 0;
  #dec = new TextDecoder();

  /** @param path request target; @param token Bearer token */
  constructor(path: string, token: string) {
    this.#req = new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
        `Accept: application/json\r\n\r\n`,
    );
  }

  /** Sends one request and reads its response; returns the status and body length. */
  async request(port: number): Promise<{ status: number; bodyBytes: number }> {
    if (!this.#conn) {
      this.#conn = await Deno.connect({ hostname: "127.0.0.1", port });
      this.#conn.setNoDelay(true);
      this.#len = 0;
    }
    await this.#conn.write(this.#req);
    for (;;) {
      const headEnd = indexOfSeq(this.#buf, CRLF2, this.#len);
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
    const n = await this.#conn!.read(this.#buf.subarray(this.#len));
    if (n === null) throw new Error("connection closed by server");
    this.#len += n;
  }

  /** Closes the socket (the next request reconnects). */
  close(): void {
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    this.#conn = undefined;
  }
}

/**
 * Receive times of one kind of SSE frame across many streams, by a key the frame carries (a
 * call id, a presence note): a load script waits until `want` streams have a key, then reads
 * the latencies.
 *
 * @example
 * ```ts
 * const sink = new Deliveries<number>();
 * const s = new RawSseStream((text, t) => sink.add(callIdIn(text), t));
 * await sink.wait(39, 1000, 15_000);
 * sink.byKey.get(39); // receive times (wallMs)
 * ```
 */
export class Deliveries<K> {
  /** Receive times (`wallMs`) per key. */
  readonly byKey = new Map<K, number[]>();
  #waiters = new Map<K, { want: number; resolve: () => void }>();

  /** Records that one stream received `key` at `t`. */
  add(key: K, t: number): void {
    let a = this.byKey.get(key);
    if (!a) this.byKey.set(key, a = []);
    a.push(t);
    const w = this.#waiters.get(key);
    if (w && a.length >= w.want) {
      this.#waiters.delete(key);
      w.resolve();
    }
  }

  /** Resolves when `want` deliveries of `key` arrived, or after `ms` (the caller counts). */
  wait(key: K, want: number, ms: number): Promise<void> {
    if ((this.byKey.get(key)?.length ?? 0) >= want) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        resolve();
      }, ms);
      this.#waiters.set(key, {
        want,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/**
 * One raw-socket SSE stream for load scripts: a minimal HTTP/1.1 GET, then `onFrames` with the
 * text of every batch of complete frames and the wall-clock time (`wallMs`) it was read.
 * Raw sockets keep the client's cost small next to the server's.
 *
 * @example
 * ```ts
 * const s = new RawSseStream((text, t) => count += text.split("event: presence").length - 1);
 * await s.open(port, `/api/events?access_token=${token}`);
 * s.close();
 * ```
 */
export class RawSseStream {
  #conn!: Deno.TcpConn;
  #buf = new Uint8Array(16384);
  #dec = new TextDecoder();
  #carry = "";
  #onFrames: (text: string, t: number) => void;
  /** The stream has ended (closed here, by the server, or on a read error). */
  closed = false;
  /** The read error that ended it, if any. */
  error = "";

  /** @param onFrames called with complete frames (without the final blank line) */
  constructor(onFrames: (text: string, t: number) => void) {
    this.#onFrames = onFrames;
  }

  /** Connects and resolves once the response head and the `retry:` frame have arrived. */
  async open(port: number, path: string): Promise<void> {
    this.#conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await this.#conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`,
      ),
    );
    let head = "";
    while (!head.includes("retry:")) {
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error("closed before retry frame");
      head += this.#dec.decode(this.#buf.subarray(0, n), { stream: true });
      if (head.length > 12 && !head.startsWith("HTTP/1.1 200")) {
        throw new Error(`bad response: ${head.split("\r\n")[0]}`);
      }
    }
    this.#carry = head.slice(head.indexOf("retry:"));
    void this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      for (;;) {
        const n = await this.#conn.read(this.#buf);
        if (n === null) break;
        const t = wallMs();
        const text = this.#carry + this.#dec.decode(this.#buf.subarray(0, n), { stream: true });
        const end = text.lastIndexOf("\n\n");
        if (end < 0) {
          this.#carry = text;
          continue;
        }
        this.#carry = text.slice(end + 2);
        this.#onFrames(text.slice(0, end), t);
      }
    } catch (err) {
      if (!this.closed) this.error = (err as Error).message;
    }
    this.closed = true;
  }

  /** Closes the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
