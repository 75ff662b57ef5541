/**
 * Presence fan-out load (issue 13): every presence change goes to every `/api/events` stream.
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_presence.ts [--users=2000] [--changes=20]
 *   [--rates=2,5,10,20,40] [--seconds=20] [--hold=3]
 * ```
 *
 * The server (simulator + MXFlex, `serve_for_bench.ts --users=N`) is a child process; the
 * simulator has N extra users (`b0`…, extensions 10000…). This process logs every one of them
 * in and opens one stream per user over a raw TCP socket (a minimal HTTP/1.1 request), so the
 * client stays cheap. Latency is from the simulator emitting the change (the child's wall
 * clock just before it) to a stream reading it, per stream.
 *
 * 1. **One change, N streams**: `--changes` single presence changes, one at a time (each
 *    waits until all N streams have it): p50 / p99 / max over all deliveries.
 * 2. **Busy hour**: calls at a steady rate between random pairs of users (answered at once,
 *    hung up after `--hold` seconds), each call changing both parties' presence (two
 *    broadcasts), for `--seconds` at each rate of `--rates`. A rate passes when every change
 *    reached every stream and p99 < 100 ms; the result is the highest passing rate (the steps
 *    stop at the first failure).
 *
 * Smoke run (proves the script works, measures nothing):
 * `deno run -A --unstable-kv bench/load_presence.ts --users=20 --changes=2 --rates=1,2 --seconds=2 --hold=1`
 *
 * @module
 */
import {
  argList,
  argNum,
  type BenchServer,
  Deliveries,
  login,
  mib,
  percentile,
  procCpuMs,
  procMem,
  RawSseStream,
  sleep,
  startBenchServer,
} from "./load_util.ts";

/** Logins / connects in flight while building up the streams. */
const BATCH = 50;
/** Longest wait for one change to reach every stream. */
const CHANGE_TIMEOUT_MS = 15_000;
/** After a busy-hour step, how long deliveries may still arrive. */
const DRAIN_MS = 5_000;
/** The pass mark of the busy hour. */
const P99_LIMIT_MS = 100;

const NOTE_RE = /event: presence\ndata: [^\n]*"note":"([^"]*)"/g;

/** Logs in users `b0`…`b<n-1>` and opens one stream each, `BATCH` at a time. */
async function openStreams(
  srv: BenchServer,
  n: number,
  sink: Deliveries<string>,
): Promise<RawSseStream[]> {
  const port = Number(new URL(srv.url).port);
  const streams: RawSseStream[] = [];
  for (let i = 0; i < n; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) {
      batch.push((async () => {
        const token = await login(srv.url, `b${j}`, "pw");
        const s = new RawSseStream((text, t) => {
          for (const m of text.matchAll(NOTE_RE)) sink.add(m[1], t);
        });
        await s.open(port, `/api/events?access_token=${encodeURIComponent(token)}`);
        streams.push(s);
      })());
    }
    await Promise.all(batch);
  }
  return streams;
}

/** Latencies (ascending) of the deliveries of `notes`, and how many are missing. */
function latencies(sink: Deliveries<string>, t0: Map<string, number>, want: number) {
  const lat: number[] = [];
  let missing = 0;
  for (const [note, t] of t0) {
    const got = sink.byKey.get(note) ?? [];
    missing += Math.max(0, want - got.length);
    for (const r of got) lat.push(r - t);
  }
  lat.sort((a, b) => a - b);
  return { lat, missing };
}

function summary(lat: number[]): string {
  return `p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, ` +
    `max ${(lat.at(-1) ?? NaN).toFixed(1)} ms`;
}

/** Part 1: single changes to every stream. */
async function oneChange(srv: BenchServer, n: number, changes: number, sink: Deliveries<string>) {
  const t0 = new Map<string, number>();
  // Warm-up (not counted).
  for (let k = 0; k < 2; k++) {
    await srv.cmd(`presence 10000 Away w${k}`);
    await sink.wait(`w${k}`, n, CHANGE_TIMEOUT_MS);
  }
  for (let k = 0; k < changes; k++) {
    const note = `p${k}`;
    const ext = String(10000 + (k % n));
    const { t } = await srv.cmd<{ t: number }>(
      `presence ${ext} ${k % 2 ? "Away" : "Busy"} ${note}`,
    );
    t0.set(note, t);
    await sink.wait(note, n, CHANGE_TIMEOUT_MS);
    await sleep(100);
  }
  return latencies(sink, t0, n);
}

/** Part 2: one busy-hour step at `rate` calls/s for `seconds`. */
async function busyStep(
  srv: BenchServer,
  n: number,
  rate: number,
  seconds: number,
  holdMs: number,
  sink: Deliveries<string>,
  step: number,
) {
  const t0 = new Map<string, number>();
  const pending: Promise<unknown>[] = [];
  const calls = Math.max(1, Math.round(rate * seconds));
  const start = performance.now();
  const cpu0 = [procCpuMs(srv.pid), procCpuMs(Deno.pid)];
  for (let k = 0; k < calls; k++) {
    // Steady pacing against the schedule, not against the previous call's reply.
    const due = start + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const a = Math.floor(Math.random() * n);
    let b = Math.floor(Math.random() * (n - 1));
    if (b >= a) b++;
    const id = `${step}x${k}`;
    pending.push(
      srv.cmd<{ callId: number; t: number }>(`busycall ${10000 + a} ${10000 + b} ${id}`).then(
        ({ callId, t }) => {
          t0.set(`c${id}a`, t);
          t0.set(`c${id}b`, t);
          setTimeout(() => void srv.cmd(`hangup ${callId}`).catch(() => {}), holdMs);
        },
      ),
    );
  }
  const sent = performance.now();
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  const deadline = Date.now() + DRAIN_MS + holdMs;
  while (Date.now() < deadline) {
    const { missing } = latencies(sink, t0, n);
    if (missing === 0) break;
    await sleep(100);
  }
  const cpu1 = [procCpuMs(srv.pid), procCpuMs(Deno.pid)];
  const r = latencies(sink, t0, n);
  for (const note of t0.keys()) sink.byKey.delete(note);
  await sleep(holdMs + 200); // let the hang-ups of this step finish
  return {
    ...r,
    calls,
    // Calls sent per second of sending (the first one goes at 0).
    achievedRate: calls > 1 ? ((calls - 1) * 1000) / (sent - start) : rate,
    serverCpuPct: ((cpu1[0] - cpu0[0]) / 10) / elapsed,
    clientCpuPct: ((cpu1[1] - cpu0[1]) / 10) / elapsed,
  };
}

if (import.meta.main) {
  const n = argNum("users", 2000);
  const changes = argNum("changes", 20);
  const rates = argList("rates", [2, 5, 10, 20, 40]);
  const seconds = argNum("seconds", 20);
  const holdMs = argNum("hold", 3) * 1000;
  console.log(
    `load_presence: users=${n} changes=${changes} rates=${rates.join(",")} seconds=${seconds} ` +
      `hold=${holdMs / 1000}s nproc=${navigator.hardwareConcurrency} ` +
      `load=${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
  );
  const srv = await startBenchServer({ users: n });
  const sink = new Deliveries<string>();
  try {
    const t = performance.now();
    const streams = await openStreams(srv, n, sink);
    const mem = await srv.cmd<{ rss: number; subscribers: number }>("gc");
    console.log(
      `${streams.length} users logged in, one stream each, in ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s; server RSS ${mib(mem.rss)} MiB, ${mem.subscribers} subscribers`,
    );

    const one = await oneChange(srv, n, changes, sink);
    console.log(
      `\n1. one presence change -> ${n} streams (${changes} changes, ${one.lat.length} deliveries, ` +
        `${one.missing} missing): ${summary(one.lat)}`,
    );

    console.log(`\n2. busy hour: random calls, two presence changes each, ${seconds} s per rate`);
    let best = 0;
    for (const [i, rate] of rates.entries()) {
      const r = await busyStep(srv, n, rate, seconds, holdMs, sink, i);
      const p99 = percentile(r.lat, 99);
      const ok = r.missing === 0 && p99 < P99_LIMIT_MS;
      console.log(
        `  ${rate} calls/s (achieved ${r.achievedRate.toFixed(1)}; ${r.calls} calls, ${
          2 * rate
        } changes/s, ${r.lat.length} deliveries, ${r.missing} missing): ${summary(r.lat)}; ` +
          `CPU server ${r.serverCpuPct.toFixed(0)} %, client ${r.clientCpuPct.toFixed(0)} % ` +
          `-> ${ok ? "pass" : "FAIL"}`,
      );
      if (!ok) break;
      best = rate;
    }
    console.log(
      `\nhighest call rate with p99 < ${P99_LIMIT_MS} ms at ${n} streams: ${
        best ? `${best} calls/s (${2 * best} presence changes/s)` : "none of the rates tried"
      }`,
    );
    const broken = streams.filter((s) => s.closed).length;
    if (broken) console.log(`${broken} streams ended early`);
    for (const s of streams) s.close();
    console.log(`client RSS ${mib(procMem(Deno.pid).rss)} MiB`);
  } finally {
    await srv.close();
  }
}
