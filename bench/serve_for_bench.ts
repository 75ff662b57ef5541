/**
 * The server side of the load benchmarks, run as a child process so that its memory and CPU
 * are measured apart from the load generator:
 *
 * ```sh
 * deno run -A --unstable-kv --v8-flags=--expose-gc bench/serve_for_bench.ts [--bare]
 * ```
 *
 * Default mode is `startHarness()` (the MX simulator over TLS, MxFlexServer, HTTP on
 * 127.0.0.1:0) with the simulator's auto-answer off, so an incoming call produces exactly one
 * DeliveredEvent. `--bare` serves a minimal SSE endpoint instead (plain `Deno.serve` and one
 * `ReadableStream` per client, no hono, no hub, no auth): the baseline that tells what an idle
 * SSE connection costs in Deno itself.
 *
 * Protocol: the first stdout line is `{"url":…,"pid":…}`. Then each stdin line is a command
 * and gets exactly one JSON line back:
 *
 * | command | reply |
 * |---|---|
 * | `mem` | `{rss, heapUsed, heapTotal, external, subscribers}` (bytes) |
 * | `gc` | same as `mem`, after a full GC (needs `--expose-gc`) |
 * | `call <from>` | `{callId, t}`: `t` (ms, wall clock with µs precision) is taken just before `sim.incomingCall({from, to: "3095"})` |
 * | `vm <bytes>` | `{id}`: a voicemail of that many bytes for 3095 |
 * | `fanout` | `{publishes, totalMs, maxMs}`: time spent inside `hub.publish` so far |
 * | `quit` | `{bye: true}`, then the process exits |
 *
 * @module
 */
import { DMITRY, type Harness, startHarness } from "../tests/helpers/harness.ts";

/** The first line the child prints. */
export interface ServeHello {
  /** Base URL of the HTTP listener. */
  url: string;
  /** Process id (for `/proc/<pid>/status`). */
  pid: number;
  /** `harness` or `bare`. */
  mode: string;
}

/** Reply to `mem` and `gc`. */
export interface MemReply {
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
  /** V8 heap reserved, bytes. */
  heapTotal: number;
  /** Memory of JS objects bound to native memory (ArrayBuffers…), bytes. */
  external: number;
  /** Connected SSE subscribers. */
  subscribers: number;
}

/** Wall clock in ms with sub-ms precision; comparable across processes on one machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

const enc = new TextEncoder();

function reply(o: unknown): void {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(o) + "\n"));
}

async function main(): Promise<void> {
  const bare = Deno.args.includes("--bare");
  let h: Harness | undefined;
  let bareServer: Deno.HttpServer | undefined;
  let bareSubs = 0;
  let url: string;
  let publishes = 0, publishMs = 0, publishMax = 0;

  if (bare) {
    const retry = enc.encode("retry: 3000\n\n");
    bareServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      bareSubs++;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(retry);
        },
        cancel() {
          bareSubs--;
        },
      });
      return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
    });
    url = `http://127.0.0.1:${(bareServer.addr as Deno.NetAddr).port}`;
  } else {
    h = await startHarness({ sim: { answerAfterMs: -1 } });
    url = h.url;
    // Measure fan-out cost inside the server without touching production code.
    const hub = h.server.hub;
    const orig = hub.publish.bind(hub);
    hub.publish = (topic: string, event: string, data: string): number => {
      const t0 = performance.now();
      const id = orig(topic, event, data);
      const dt = performance.now() - t0;
      publishes++;
      publishMs += dt;
      if (dt > publishMax) publishMax = dt;
      return id;
    };
  }
  reply({ url, pid: Deno.pid, mode: bare ? "bare" : "harness" } satisfies ServeHello);

  const mem = (): MemReply => {
    const m = Deno.memoryUsage();
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      subscribers: h ? h.server.hub.subscriberCount() : bareSubs,
    };
  };

  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).values();
  let buf = "";
  for await (const chunk of lines) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const [cmd, arg] = buf.slice(0, nl).trim().split(/\s+/);
      buf = buf.slice(nl + 1);
      switch (cmd) {
        case "mem":
          reply(mem());
          break;
        case "gc": {
          const gc = (globalThis as { gc?: () => void }).gc;
          if (gc) {
            for (let i = 0; i < 3; i++) gc();
          }
          reply(mem());
          break;
        }
        case "call": {
          if (!h) {
            reply({ error: "no simulator in --bare mode" });
            break;
          }
          const t = wallMs();
          const callId = h.sim.incomingCall({ from: arg || "79031744445", to: DMITRY.ext });
          reply({ callId, t });
          break;
        }
        case "vm": {
          if (!h) {
            reply({ error: "no simulator in --bare mode" });
            break;
          }
          const n = Number(arg);
          const content = new Uint8Array(n);
          // Non-trivial content (a 251-byte cycle) so nothing can special-case zeros.
          for (let i = 0; i < n; i++) content[i] = i % 251;
          const id = h.sim.addVoicemail(DMITRY.ext, { from: "79031744445", content });
          reply({ id });
          break;
        }
        case "fanout":
          reply({ publishes, totalMs: publishMs, maxMs: publishMax });
          break;
        case "quit":
          reply({ bye: true });
          // Streams may still be open: exit without a graceful drain.
          Deno.exit(0);
          break;
        default:
          reply({ error: `unknown command ${cmd}` });
      }
    }
  }
  // stdin closed: the parent is gone.
  if (h) await h.close().catch(() => {});
  await bareServer?.shutdown();
  Deno.exit(0);
}

if (import.meta.main) await main();
