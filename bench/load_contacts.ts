/**
 * `GET /api/contacts` load: C concurrent keep-alive clients, each sending its next request as
 * soon as the previous answer is read, for a fixed duration, with a Bearer JWT that the server
 * verifies on every request (HS256 via jose).
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_contacts.ts [--c=50] [--seconds=10] [--warmup=2] [--wrk]
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
import { argNum, KeepAliveGet, login, percentile, sleep, startBenchServer } from "./load_util.ts";

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
    const c = new KeepAliveGet("/api/contacts", token);
    while (performance.now() < stopAt) {
      try {
        const t0 = performance.now();
        const r = await c.request(port);
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
        c.close();
        await sleep(10);
      }
    }
    c.close();
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
