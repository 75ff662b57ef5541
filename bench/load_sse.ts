/**
 * SSE fan-out load: N idle subscribers on `/api/events`, then K incoming calls; measures the
 * delay from the simulator emitting each DeliveredEvent to every subscriber reading it, and
 * the server's RSS per idle SSE connection.
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_sse.ts [--n=1000,5000] [--calls=20] [--bare]
 * ```
 *
 * The server (simulator + MXFlex, `serve_for_bench.ts`) is a child process; subscribers are raw
 * TCP sockets in this process sending a minimal HTTP/1.1 request, so client cost stays small
 * and the child's RSS is the server's alone. `--bare` also measures a minimal `Deno.serve` SSE
 * endpoint for comparison (memory only). Needs `ulimit -n` above N + a few hundred (the default
 * here, 20 000, is enough for 5 000).
 *
 * @module
 */
import {
  argList,
  argNum,
  type BenchServer,
  Deliveries,
  login,
  type MemReply,
  mib,
  percentile,
  procCpuMs,
  procMem,
  RawSseStream,
  sleep,
  startBenchServer,
} from "./load_util.ts";

/** Connects opened concurrently while building up N subscribers. */
const CONNECT_BATCH = 200;
/** Longest wait for one event to reach all subscribers. */
const EVENT_TIMEOUT_MS = 15_000;
/** Longest wait for N subscribers to be connected. */
const CONNECT_TIMEOUT_MS = 120_000;

const DELIVERED_RE = /event: DeliveredEvent\ndata: \{"callId":(\d+)/g;

/** Opens `n` subscribers, `CONNECT_BATCH` at a time. */
export async function openMany(
  port: number,
  path: string,
  n: number,
  sink: Deliveries<number>,
): Promise<{ subs: RawSseStream[]; errors: string[]; ms: number }> {
  const subs: RawSseStream[] = [];
  const errors: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n && performance.now() - t0 < CONNECT_TIMEOUT_MS; i += CONNECT_BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + CONNECT_BATCH); j++) {
      const s = new RawSseStream((text, t) => {
        for (const m of text.matchAll(DELIVERED_RE)) sink.add(Number(m[1]), t);
      });
      batch.push(
        s.open(port, path).then(() => subs.push(s), (e) => {
          errors.push((e as Error).message);
          s.close();
        }),
      );
    }
    await Promise.all(batch);
  }
  return { subs, errors, ms: performance.now() - t0 };
}

/** Result of one fan-out run. */
export interface SseResult {
  /** Subscribers requested. */
  n: number;
  /** Subscribers connected. */
  connected: number;
  /** Connect errors. */
  connectErrors: number;
  /** Time to connect all, ms. */
  connectMs: number;
  /** Server memory after GC with no subscriber. */
  before: MemReply;
  /** Server memory after GC with n idle subscribers. */
  after: MemReply;
  /** Calls measured (after warm-up). */
  calls: number;
  /** Deliveries expected / received. */
  expected: number;
  /** Deliveries received. */
  received: number;
  /** Latency percentiles over all deliveries, ms. */
  p50: number;
  /** 99th percentile, ms. */
  p99: number;
  /** Maximum, ms. */
  max: number;
  /** Mean of per-event p50 of the first delivery, ms. */
  firstP50: number;
  /** Mean time inside hub.publish per event in the server, ms. */
  publishMeanMs: number;
  /** Longest hub.publish, ms. */
  publishMaxMs: number;
  /** Server process CPU per event during the measured calls, ms. */
  serverCpuMsPerEvent: number;
  /** Client (this) process CPU per event during the measured calls, ms. */
  clientCpuMsPerEvent: number;
}

async function run(n: number, calls: number): Promise<SseResult> {
  const srv: BenchServer = await startBenchServer();
  try {
    const token = await login(srv.url);
    const port = Number(new URL(srv.url).port);
    const path = `/api/events?access_token=${encodeURIComponent(token)}`;
    const sink = new Deliveries<number>();
    await sleep(500);
    const before = await srv.cmd<MemReply>("gc");
    const { subs, errors, ms } = await openMany(port, path, n, sink);
    await sleep(1000);
    const after = await srv.cmd<MemReply>("gc");
    const connected = subs.length;

    // Warm-up: two events, not counted.
    for (let i = 0; i < 2; i++) {
      const { callId } = await srv.cmd<{ callId: number }>("call 79031744445");
      await sink.wait(callId, connected, EVENT_TIMEOUT_MS);
    }
    const f0 = await srv.cmd<{ publishes: number; totalMs: number }>("fanout");

    const cpu0 = [procCpuMs(srv.pid), procCpuMs(Deno.pid)];
    const lat: number[] = [];
    const firsts: number[] = [];
    let received = 0;
    for (let k = 0; k < calls; k++) {
      const { callId, t } = await srv.cmd<{ callId: number; t: number }>("call 79031744445");
      await sink.wait(callId, connected, EVENT_TIMEOUT_MS);
      const got = sink.byKey.get(callId) ?? [];
      received += got.length;
      let first = Infinity;
      for (const r of got) {
        lat.push(r - t);
        if (r - t < first) first = r - t;
      }
      firsts.push(first);
      sink.byKey.delete(callId);
      await sleep(50);
    }
    const cpu1 = [procCpuMs(srv.pid), procCpuMs(Deno.pid)];
    const f1 = await srv.cmd<{ publishes: number; totalMs: number; maxMs: number }>("fanout");
    lat.sort((a, b) => a - b);
    for (const s of subs) s.close();
    const readErrors = subs.filter((s) => s.error).length;
    if (readErrors) console.error(`${readErrors} subscribers ended with a read error`);
    return {
      n,
      connected,
      connectErrors: errors.length,
      connectMs: ms,
      before,
      after,
      calls,
      expected: calls * connected,
      received,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat.length ? lat[lat.length - 1] : NaN,
      firstP50: firsts.reduce((a, b) => a + b, 0) / firsts.length,
      publishMeanMs: (f1.totalMs - f0.totalMs) / Math.max(1, f1.publishes - f0.publishes),
      publishMaxMs: f1.maxMs,
      serverCpuMsPerEvent: (cpu1[0] - cpu0[0]) / calls,
      clientCpuMsPerEvent: (cpu1[1] - cpu0[1]) / calls,
    };
  } finally {
    await srv.close();
  }
}

/** Idle-connection memory of the minimal `Deno.serve` SSE server. */
async function runBare(n: number): Promise<{ n: number; before: MemReply; after: MemReply }> {
  const srv = await startBenchServer({ bare: true });
  try {
    const port = Number(new URL(srv.url).port);
    const sink = new Deliveries<number>();
    await sleep(300);
    const before = await srv.cmd<MemReply>("gc");
    const { subs } = await openMany(port, "/", n, sink);
    await sleep(1000);
    const after = await srv.cmd<MemReply>("gc");
    for (const s of subs) s.close();
    return { n: subs.length, before, after };
  } finally {
    await srv.close();
  }
}

function perConn(before: MemReply, after: MemReply, n: number) {
  const kb = (x: number) => (x / n / 1024).toFixed(1);
  return {
    rssKB: kb(after.rss - before.rss),
    heapKB: kb(after.heapUsed - before.heapUsed),
    externalKB: kb(after.external - before.external),
  };
}

if (import.meta.main) {
  const ns = argList("n", [1000, 5000]);
  const calls = argNum("calls", 20);
  const clientBefore = procMem(Deno.pid).rss;
  console.log(`load_sse: n=${ns.join(",")} calls=${calls} nproc=${navigator.hardwareConcurrency}`);
  for (const n of ns) {
    const r = await run(n, calls);
    const pc = perConn(r.before, r.after, r.connected);
    console.log(
      `\nN=${r.n}: connected ${r.connected} (${r.connectErrors} errors) in ${
        r.connectMs.toFixed(0)
      } ms`,
    );
    console.log(
      `  server RSS ${mib(r.before.rss)} -> ${mib(r.after.rss)} MiB: ${pc.rssKB} KB/conn ` +
        `(JS heap ${pc.heapKB} KB/conn, external ${pc.externalKB} KB/conn)`,
    );
    console.log(
      `  deliveries ${r.received}/${r.expected}; latency ms p50 ${r.p50.toFixed(2)} p99 ${
        r.p99.toFixed(2)
      } max ${r.max.toFixed(2)}; first subscriber mean ${r.firstP50.toFixed(2)} ms`,
    );
    console.log(
      `  server hub.publish per event: mean ${r.publishMeanMs.toFixed(2)} ms, max ${
        r.publishMaxMs.toFixed(2)
      } ms`,
    );
    console.log(
      `  CPU per event (incl. 50 ms idle gaps): server ${r.serverCpuMsPerEvent.toFixed(1)} ms, ` +
        `clients ${r.clientCpuMsPerEvent.toFixed(1)} ms`,
    );
    console.log(`  JSON ${JSON.stringify(r)}`);
  }
  if (Deno.args.includes("--bare")) {
    const n = ns[ns.length - 1];
    const b = await runBare(n);
    const pc = perConn(b.before, b.after, b.n);
    console.log(
      `\nbare Deno.serve SSE, N=${b.n}: RSS ${mib(b.before.rss)} -> ${
        mib(b.after.rss)
      } MiB: ${pc.rssKB} KB/conn (JS heap ${pc.heapKB} KB/conn)`,
    );
  }
  console.log(`\nclient process RSS growth ${mib(procMem(Deno.pid).rss - clientBefore)} MiB`);
}
