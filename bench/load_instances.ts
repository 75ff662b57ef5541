/**
 * One instance against two sharing the port, in one run (issue 15): SSE fan-out of one topic
 * to N subscribers (latency p50/p99 from the simulator emitting each DeliveredEvent to every
 * subscriber reading it, and server CPU per delivery) and `GET /api/contacts` throughput.
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_instances.ts [--instances=1,2] [--n=2000,5000] \
 *   [--calls=20] [--c=50] [--seconds=10]
 * ```
 *
 * The simulator runs in its own process (`serve_for_bench.ts --sim-only`, auto-answer off, so
 * a call is one DeliveredEvent); MXFlex runs as `main.ts` processes: one plain instance, or
 * `-instances N` (the supervisor and N children sharing the port with `SO_REUSEPORT`, one KV
 * file, each with its own MX session). Subscribers are raw sockets in this process, all on one
 * token (one topic); the kernel spreads their connections over the instances. Server CPU is
 * the sum over the instance processes (`/proc/<pid>/stat`), divided by the deliveries.
 * `--n=0` skips the fan-out, `--seconds=0` the contacts load.
 *
 * @module
 */
import {
  argList,
  argNum,
  Deliveries,
  login,
  percentile,
  procCpuMs,
  procMem,
  sleep,
  startBenchServer,
} from "./load_util.ts";
import { openMany } from "./load_sse.ts";
import { loadContacts } from "./load_contacts.ts";
import {
  mxflexArgs,
  startMxflex,
  waitReady,
  writeInstanceConfig,
} from "../tests/helpers/instances.ts";
import { freePort } from "../tests/helpers/free_port.ts";

/** Longest wait for one event to reach all subscribers. */
const EVENT_TIMEOUT_MS = 15_000;

/** N instances of MXFlex on one port; `pids` are the serving processes. */
interface Instances {
  url: string;
  pids: number[];
  stop(): Promise<void>;
}

async function startInstances(n: number, simPort: number, dir: string): Promise<Instances> {
  const port = freePort();
  const config = await writeInstanceConfig(dir, simPort, {
    opsHost: "127.0.0.1:0",
    // Thousands of streams on one token, and no login limits in the way.
    rateLimits: { streams: { perToken: 1_000_000, perUser: 1_000_000 } },
  });
  const p = startMxflex(
    mxflexArgs({ config, db: `${dir}/kv.db`, host: `127.0.0.1:${port}`, instances: n }),
  );
  const url = `http://127.0.0.1:${port}`;
  const ops = await p.waitFor(/ops endpoints on (http\S+?)\/?(\s|$)/g, { count: n });
  for (const m of ops) await waitReady(m[1], () => p.log);
  const pids = n > 1
    ? (await p.waitFor(/instance \d+ started \(pid (\d+)\)/g, { count: n })).map((m) =>
      Number(m[1])
    )
    : [p.pid];
  return {
    url,
    pids,
    async stop() {
      await p.stop();
    },
  };
}

const cpu = (pids: number[]) => pids.reduce((s, pid) => s + procCpuMs(pid), 0);

/** Fan-out of `calls` events to `n` subscribers of one topic. */
async function fanout(
  inst: Instances,
  sim: { cmd: <T>(l: string) => Promise<T> },
  n: number,
  calls: number,
) {
  const token = await login(inst.url);
  const port = Number(new URL(inst.url).port);
  const sink = new Deliveries<number>();
  const path = `/api/events?access_token=${encodeURIComponent(token)}`;
  const { subs, errors } = await openMany(port, path, n, sink);
  const connected = subs.length;
  await sleep(1000);
  const rss = inst.pids.map((pid) => procMem(pid).rss);
  for (let i = 0; i < 2; i++) { // warm-up
    const { callId } = await sim.cmd<{ callId: number }>("call 79031744445");
    await sink.wait(callId, connected, EVENT_TIMEOUT_MS);
  }
  const cpu0 = cpu(inst.pids);
  const lat: number[] = [];
  let received = 0;
  for (let k = 0; k < calls; k++) {
    const { callId, t } = await sim.cmd<{ callId: number; t: number }>("call 79031744445");
    await sink.wait(callId, connected, EVENT_TIMEOUT_MS);
    const got = sink.byKey.get(callId) ?? [];
    received += got.length;
    for (const r of got) lat.push(r - t);
    sink.byKey.delete(callId);
    await sleep(50);
  }
  const cpuMs = cpu(inst.pids) - cpu0;
  for (const s of subs) s.close();
  lat.sort((a, b) => a - b);
  return {
    n,
    connected,
    connectErrors: errors.length,
    expected: calls * connected,
    received,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    serverCpuUsPerDelivery: (cpuMs * 1000) / Math.max(1, received),
    rssMiB: rss.map((r) => +(r / 1048576).toFixed(1)),
  };
}

if (import.meta.main) {
  const counts = argList("instances", [1, 2]);
  const ns = argList("n", [2000, 5000]).filter((n) => n > 0);
  const calls = argNum("calls", 20);
  const clients = argNum("c", 50);
  const seconds = argNum("seconds", 10);
  console.log(
    `load_instances: instances=${counts} n=${ns} calls=${calls} c=${clients} ` +
      `seconds=${seconds} nproc=${navigator.hardwareConcurrency} load ${Deno.loadavg().join(" ")}`,
  );
  const sim = await startBenchServer({ simOnly: true });
  try {
    for (const count of counts) {
      for (const n of ns) {
        const dir = await Deno.makeTempDir();
        const inst = await startInstances(count, sim.simPort!, dir);
        try {
          const r = await fanout(inst, sim, n, calls);
          console.log(
            `${count} instance(s), N=${r.n}: ${r.received}/${r.expected} deliveries, ` +
              `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${
                r.max.toFixed(1)
              } ms, ` +
              `server CPU ${r.serverCpuUsPerDelivery.toFixed(1)} µs/delivery, RSS ${r.rssMiB} MiB`,
          );
          console.log(`  JSON ${JSON.stringify({ instances: count, ...r })}`);
        } finally {
          await inst.stop();
          await Deno.remove(dir, { recursive: true });
        }
      }
      if (seconds > 0) {
        const dir = await Deno.makeTempDir();
        const inst = await startInstances(count, sim.simPort!, dir);
        try {
          const token = await login(inst.url);
          const cpu0 = cpu(inst.pids);
          const r = await loadContacts(inst.url, token, clients, seconds, 2);
          const cpuMs = cpu(inst.pids) - cpu0;
          console.log(
            `${count} instance(s), GET /api/contacts, ${clients} keep-alive clients: ` +
              `${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${
                r.p99.toFixed(2)
              } ms, ` +
              `errors ${r.errors}, server CPU ${(cpuMs / (seconds + 2) / 10).toFixed(0)} %`,
          );
          console.log(`  JSON ${JSON.stringify({ instances: count, ...r })}`);
        } finally {
          await inst.stop();
          await Deno.remove(dir, { recursive: true });
        }
      }
    }
  } finally {
    await sim.close();
  }
}
