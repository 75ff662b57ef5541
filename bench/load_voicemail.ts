/**
 * Voicemail streaming: throughput and server RSS growth while downloading one large voicemail
 * through `GET /mx/test/voicemail/<id>` (Basic auth dmitry/secret).
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_voicemail.ts [--mb=50] [--runs=3] [--split]
 * ```
 *
 * `--split` runs the simulator in a third process, so the measured child is MXFlex alone (what a
 * production host would run); without it the simulator shares the server's process.
 *
 * The server (`serve_for_bench.ts`: simulator + MXFlex) is a child process. The voicemail is
 * added to the simulator in that process first; the baseline is the child's RSS after a full
 * GC with the voicemail stored. During each download this process samples `VmRSS` of the child
 * every 5 ms, and `VmHWM` (peak RSS, reset through `/proc/<pid>/clear_refs` before each run)
 * catches peaks between samples. Growth = max(sampled peak, VmHWM) − baseline.
 *
 * @module
 */
import {
  argNum,
  type MemReply,
  mib,
  procMem,
  resetPeakRss,
  sleep,
  startBenchServer,
} from "./load_util.ts";

/** Result of one download. */
export interface VoicemailRun {
  /** Bytes received. */
  bytes: number;
  /** Wall time, ms (request sent to last byte). */
  ms: number;
  /** Throughput, MB/s (10^6 bytes). */
  mbPerS: number;
  /** Time to the response head, ms. */
  ttfbMs: number;
  /** Peak RSS growth over the baseline, bytes. */
  rssGrowth: number;
  /** Peak sampled RSS growth over the baseline, bytes. */
  sampledGrowth: number;
  /** Peak growth of V8 `heapTotal` (reserved JS heap) over the baseline, bytes. */
  heapTotalGrowth: number;
  /** Peak growth of `external` (ArrayBuffers etc.) over the baseline, bytes. */
  externalGrowth: number;
}

/** Longest a single download may take before it is abandoned. */
const DOWNLOAD_TIMEOUT_MS = 120_000;

if (import.meta.main) {
  const mb = argNum("mb", 50);
  const runs = argNum("runs", 3);
  const size = Math.round(mb * 1024 * 1024);
  const split = Deno.args.includes("--split");
  const simProc = split ? await startBenchServer({ simOnly: true }) : undefined;
  const srv = await startBenchServer(
    simProc ? { sim: `127.0.0.1:${simProc.simPort}` } : {},
  );
  const auth = "Basic " + btoa("dmitry:secret");
  try {
    const { id } = await (simProc ?? srv).cmd<{ id: string }>(`vm ${size}`);
    // A small warm-up request (list) so the proxy session and monitor exist.
    const list = await fetch(`${srv.url}/mx/test/voicemail`, { headers: { authorization: auth } });
    await list.body?.cancel();
    console.log(
      `load_voicemail: ${mb} MiB voicemail id ${id}, ${runs} runs, server pid ${srv.pid}`,
    );
    const results: VoicemailRun[] = [];
    for (let r = 0; r < runs; r++) {
      await sleep(300);
      const base = await srv.cmd<MemReply>("gc");
      const baseRss = procMem(srv.pid).rss;
      const hwmOk = resetPeakRss(srv.pid);
      let peak = baseRss;
      let heapPeak = base.heapTotal, extPeak = base.external;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const m = procMem(srv.pid).rss;
          if (m > peak) peak = m;
          await sleep(5);
        }
      })();
      // The server's own view (through its event loop, so coarser): JS heap vs. external.
      const heapSampler = (async () => {
        while (sampling) {
          const m = await srv.cmd<MemReply>("mem");
          heapPeak = Math.max(heapPeak, m.heapTotal);
          extPeak = Math.max(extPeak, m.external);
          await sleep(25);
        }
      })();
      const t0 = performance.now();
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), DOWNLOAD_TIMEOUT_MS);
      const res = await fetch(`${srv.url}/mx/test/voicemail/${id}`, {
        headers: { authorization: auth },
        signal: ctl.signal,
      });
      const ttfb = performance.now() - t0;
      if (res.status !== 200) throw new Error(`download: ${res.status} ${await res.text()}`);
      let bytes = 0;
      for await (const chunk of res.body!) bytes += chunk.byteLength;
      const ms = performance.now() - t0;
      clearTimeout(timer);
      sampling = false;
      await sampler;
      await heapSampler;
      const hwm = hwmOk ? procMem(srv.pid).hwm : 0;
      if (bytes !== size) throw new Error(`got ${bytes} bytes, expected ${size}`);
      const run: VoicemailRun = {
        bytes,
        ms,
        mbPerS: bytes / 1e6 / (ms / 1000),
        ttfbMs: ttfb,
        rssGrowth: Math.max(peak, hwm) - baseRss,
        sampledGrowth: peak - baseRss,
        heapTotalGrowth: heapPeak - base.heapTotal,
        externalGrowth: extPeak - base.external,
      };
      results.push(run);
      console.log(
        `run ${r + 1}: ${mib(bytes)} MiB in ${ms.toFixed(0)} ms = ${run.mbPerS.toFixed(1)} MB/s ` +
          `(TTFB ${ttfb.toFixed(1)} ms); server RSS baseline ${mib(baseRss)} MiB ` +
          `(heap ${mib(base.heapUsed)} MiB), peak growth ${mib(run.rssGrowth)} MiB ` +
          `(sampled ${mib(run.sampledGrowth)} MiB${hwmOk ? ", VmHWM" : ", no VmHWM reset"}); ` +
          `JS heapTotal +${mib(run.heapTotalGrowth)} MiB, external +${mib(run.externalGrowth)} MiB`,
      );
    }
    console.log(`JSON ${JSON.stringify(results)}`);
  } finally {
    await srv.close();
    await simProc?.close();
  }
}
