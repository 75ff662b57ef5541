/**
 * Idle memory per MXFlex instance: the simulator runs here, N instances of `main.ts` run as
 * their own processes (`-instances N` on one shared port, or one plain process with `--n=1`),
 * connect to it, and once every instance answers `/readyz` the script waits `--settle` seconds
 * and reads each process's `VmRSS` (and `VmHWM`, the peak) from `/proc`.
 *
 * ```sh
 * deno run -A --unstable-kv bench/idle_rss.ts [--n=1] [--settle=5] [--runs=3]
 * ```
 *
 * `--n=1` measures a single plain instance (no supervisor); `--n=2` … the children of the
 * supervisor (whose own RSS is printed apart).
 *
 * @module
 */
import { MxSimulator } from "../lib/mxsim/mod.ts";
import { CERT, KEY } from "../tests/helpers/harness.ts";
import {
  mxflexArgs,
  startInstance,
  startMxflex,
  waitReady,
  writeInstanceConfig,
} from "../tests/helpers/instances.ts";
import { freePort } from "../tests/helpers/free_port.ts";
import { argNum, mib, procMem, sleep } from "./load_util.ts";

/** RSS of the instances of one run, bytes. */
export interface IdleRun {
  instances: { pid: number; rss: number; hwm: number }[];
  supervisor?: { pid: number; rss: number };
}

/** Starts `n` instances against `simPort`, waits until idle, measures, stops them. */
export async function measureIdle(n: number, simPort: number, settleMs: number): Promise<IdleRun> {
  const dir = await Deno.makeTempDir();
  try {
    const db = `${dir}/kv.db`;
    if (n === 1) {
      const config = await writeInstanceConfig(dir, simPort);
      const inst = await startInstance({ config, db });
      try {
        await sleep(settleMs);
        return { instances: [{ pid: inst.pid, ...procMem(inst.pid) }] };
      } finally {
        await inst.stop();
      }
    }
    const port = freePort();
    const config = await writeInstanceConfig(dir, simPort, { opsHost: "127.0.0.1:0" });
    const sup = startMxflex(
      mxflexArgs({ config, db, host: `127.0.0.1:${port}`, instances: n }),
    );
    try {
      const started = await sup.waitFor(/instance (\d+) started \(pid (\d+)\)/g, { count: n });
      const ops = await sup.waitFor(/ops endpoints on (http\S+?)\/? instance=\d+/g, { count: n });
      for (const m of ops) await waitReady(m[1], () => sup.log);
      await sleep(settleMs);
      return {
        instances: started.map((m) => ({ pid: Number(m[2]), ...procMem(Number(m[2])) })),
        supervisor: { pid: sup.pid, rss: procMem(sup.pid).rss },
      };
    } finally {
      await sup.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const n = argNum("n", 1);
  const settleMs = argNum("settle", 5) * 1000;
  const runs = argNum("runs", 3);
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  try {
    console.log(
      `idle RSS, ${n} instance(s), ${settleMs / 1000} s after /readyz; load ${
        Deno.loadavg().join(" ")
      }`,
    );
    for (let r = 1; r <= runs; r++) {
      const run = await measureIdle(n, sim.port, settleMs);
      const per = run.instances.map((i) => `${mib(i.rss)} (peak ${mib(i.hwm)})`).join(", ");
      const sup = run.supervisor ? `; supervisor ${mib(run.supervisor.rss)}` : "";
      console.log(`run ${r}: ${per}${sup}`);
    }
  } finally {
    await sim.close();
  }
}
