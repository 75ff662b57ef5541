/**
 * Server memory per idle SSE connection: the lean HTTP/1.1 server (`serveH1`) against
 * `Deno.serve`. The server runs in a child process; this process opens N raw TCP connections,
 * each holding an SSE stream that has delivered its first frame (`retry:`), then the child
 * reports its RSS after a full GC. Per-connection cost = (RSS with N streams - RSS before) / N;
 * the marginal cost is the RSS growth from N/2 to N streams, per stream. The two differ by a
 * one-off growth of V8's young generation (it grows while many objects survive scavenges and
 * is not given back), which the average spreads over N and the marginal figure leaves out.
 * `--server=raw` (with `--server=all`) adds the floor: a bare `Deno.listen` SSE pump.
 *
 * ```sh
 * deno run -A --unstable-kv bench/h1_sse_memory.ts [--n=2000] [--stack=mxflex|hub|both] \
 *   [--server=lean|deno|raw|both|all] [--settle=ms]
 * ```
 *
 * Stacks: `mxflex` is the real path (MX simulator over TLS + MxFlexServer via the test harness,
 * one login, then `GET /api/events?access_token=…` N times); `hub` is an `SseHub` served
 * directly (`sseResponse(hub.subscribe(topic))`, no hono, no auth).
 *
 * Child protocol (internal): `--child --server=… --stack=…` prints `{"url","pid"}`, then answers
 * each stdin line `gc` with `{rss, heapUsed, external, subscribers}` after a full GC.
 *
 * @module
 */
import { serveH1 } from "../lib/http/h1_server.ts";
import { SseHub, sseResponse } from "../lib/sse/hub.ts";
import { flexLogin, startHarness } from "../tests/helpers/harness.ts";

type ServerKind = "lean" | "deno" | "raw";
type Stack = "mxflex" | "hub";

/** One `gc` reply from the child. */
export interface MemSample {
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
  /** V8 heap reserved, bytes. */
  heapTotal: number;
  /** Memory of JS objects bound to native memory, bytes. */
  external: number;
  /** SSE subscribers the server's hub counts. */
  subscribers: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function arg(name: string, dflt: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

// ---------------------------------------------------------------------------------------------
// Child: the server under test.

async function child(kind: ServerKind, stack: Stack): Promise<void> {
  let url: string;
  let hub: SseHub;
  let token = "";
  if (stack === "mxflex") {
    const h = await startHarness({ lean: kind === "lean" });
    url = h.url;
    hub = h.server.hub;
    token = await flexLogin(h.url);
  } else {
    hub = new SseHub({ heartbeatMs: 60_000 });
    const handler = (req: Request) =>
      sseResponse(hub.subscribe(new URL(req.url).searchParams.get("t") ?? "t"));
    const listenOn = { hostname: "127.0.0.1", port: 0 };
    if (kind === "raw") {
      url = rawSse(hub);
    } else {
      const srv = kind === "lean"
        ? serveH1(handler, listenOn)
        : Deno.serve({ ...listenOn, onListen() {} }, handler);
      url = `http://127.0.0.1:${srv.addr.port}`;
    }
  }
  const out = (o: unknown) => Deno.stdout.writeSync(enc.encode(JSON.stringify(o) + "\n"));
  out({ url, pid: Deno.pid, token });
  const gc = (globalThis as { gc?: () => void }).gc;
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (cmd === "quit") Deno.exit(0);
      if (gc) { for (let i = 0; i < 3; i++) gc(); }
      // Let finalizers and freed resources settle before sampling.
      await new Promise((r) => setTimeout(r, Number(arg("settle", "200"))));
      if (gc) gc();
      const m = Deno.memoryUsage();
      out(
        {
          rss: m.rss,
          heapUsed: m.heapUsed,
          heapTotal: m.heapTotal,
          external: m.external,
          subscribers: hub.subscriberCount(),
        } satisfies MemSample,
      );
    }
  }
}

/**
 * The floor: a bare `Deno.listen` loop that reads a head, writes a fixed SSE head and pumps a
 * hub stream into the socket (no parsing, no Request/Response), with a 16-byte EOF watch.
 */
function rawSse(hub: SseHub): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const head = enc.encode(
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
  );
  const serve = async (conn: Deno.TcpConn) => {
    const buf = new Uint8Array(1024);
    let got = "";
    while (!got.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return conn.close();
      got += dec.decode(buf.subarray(0, n));
    }
    await conn.write(head);
    const reader = hub.subscribe("bench").getReader();
    (async () => {
      const tiny = new Uint8Array(16);
      try {
        while (await conn.read(tiny) !== null) { /* discard */ }
      } catch { /* closed */ }
      reader.cancel().catch(() => {});
    })();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        await conn.write(r.value);
      }
    } catch { /* gone */ }
    try {
      conn.close();
    } catch { /* closed */ }
  };
  (async () => {
    for await (const conn of listener) serve(conn).catch(() => {});
  })();
  return `http://127.0.0.1:${listener.addr.port}`;
}

// ---------------------------------------------------------------------------------------------
// Parent: the load generator.

interface Child {
  url: string;
  token: string;
  sample(): Promise<MemSample>;
  close(): Promise<void>;
}

async function spawnChild(kind: ServerKind, stack: Stack): Promise<Child> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-kv",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--child",
      `--server=${kind}`,
      `--stack=${stack}`,
      `--settle=${arg("settle", "200")}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = proc.stdin.getWriter();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const line = async (): Promise<string> => {
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return l;
      }
      const r = await reader.read();
      if (r.done) throw new Error("child exited");
      buf += r.value;
    }
  };
  const hello = JSON.parse(await line());
  return {
    url: hello.url,
    token: hello.token,
    async sample() {
      await writer.write(enc.encode("gc\n"));
      return JSON.parse(await line());
    },
    async close() {
      await writer.write(enc.encode("quit\n")).catch(() => {});
      await writer.close().catch(() => {});
      await proc.status;
      await reader.cancel().catch(() => {});
    },
  };
}

/** Opens one SSE connection and waits for its first frame. */
async function openSse(port: number, path: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    enc.encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`),
  );
  const buf = new Uint8Array(4096);
  let got = "";
  while (!got.includes("retry:")) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`stream closed early: ${got}`);
    got += dec.decode(buf.subarray(0, n));
  }
  if (!got.startsWith("HTTP/1.1 200")) throw new Error(`unexpected response: ${got}`);
  return conn;
}

interface Result {
  server: ServerKind;
  stack: Stack;
  n: number;
  baseRssMb: number;
  rssMb: number;
  kbPerConn: number;
  /** RSS growth per connection between N/2 and N connections (the marginal cost). */
  marginalKbPerConn: number;
  heapKbPerConn: number;
  heapTotalKbPerConn: number;
  externalKbPerConn: number;
}

async function measure(kind: ServerKind, stack: Stack, n: number): Promise<Result> {
  const c = await spawnChild(kind, stack);
  const port = Number(new URL(c.url).port);
  const path = stack === "mxflex"
    ? `/api/events?access_token=${encodeURIComponent(c.token)}`
    : "/events?t=bench";
  const conns: Deno.TcpConn[] = [];
  try {
    // Warm up code paths so the baseline is not inflated by first-use compilation.
    const warm = await Promise.all(Array.from({ length: 50 }, () => openSse(port, path)));
    for (const w of warm) w.close();
    while ((await c.sample()).subscribers !== 0) { /* wait for cancellation */ }
    const base = await c.sample();
    const half = Math.floor(n / 2);
    let mid: MemSample | undefined;
    for (let i = 0; i < n; i += 100) {
      const batch = Math.min(100, n - i, i < half ? half - i : n - i);
      conns.push(...await Promise.all(Array.from({ length: batch }, () => openSse(port, path))));
      if (conns.length === half) {
        mid = await c.sample();
        while (mid.subscribers < half) mid = await c.sample();
      }
    }
    let m = await c.sample();
    while (m.subscribers < n) m = await c.sample();
    return {
      server: kind,
      stack,
      n,
      baseRssMb: +(base.rss / 2 ** 20).toFixed(1),
      rssMb: +(m.rss / 2 ** 20).toFixed(1),
      kbPerConn: +((m.rss - base.rss) / n / 1024).toFixed(1),
      marginalKbPerConn: +((m.rss - mid!.rss) / (n - half) / 1024).toFixed(1),
      heapKbPerConn: +((m.heapUsed - base.heapUsed) / n / 1024).toFixed(2),
      heapTotalKbPerConn: +((m.heapTotal - base.heapTotal) / n / 1024).toFixed(2),
      externalKbPerConn: +((m.external - base.external) / n / 1024).toFixed(2),
    };
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // ignore
      }
    }
    await c.close();
  }
}

async function main(): Promise<void> {
  if (Deno.args.includes("--child")) {
    await child(arg("server", "lean") as ServerKind, arg("stack", "mxflex") as Stack);
    return;
  }
  const n = Number(arg("n", "2000"));
  const stackArg = arg("stack", "both");
  const serverArg = arg("server", "both");
  const stacks: Stack[] = stackArg === "both" ? ["mxflex", "hub"] : [stackArg as Stack];
  const kinds: ServerKind[] = serverArg === "both"
    ? ["lean", "deno"]
    : serverArg === "all"
    ? ["lean", "deno", "raw"]
    : [serverArg as ServerKind];
  const results: Result[] = [];
  for (const stack of stacks) {
    for (const kind of kinds) {
      // The raw floor exists for the hub stack only.
      if (kind === "raw" && stack !== "hub") continue;
      const r = await measure(kind, stack, n);
      console.log(JSON.stringify(r));
      results.push(r);
    }
  }
  console.table(results);
}

if (import.meta.main) await main();
