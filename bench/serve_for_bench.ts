/**
 * The server side of the load benchmarks, run as a child process so that its memory and CPU
 * are measured apart from the load generator:
 *
 * ```sh
 * deno run -A --unstable-kv --v8-flags=--expose-gc bench/serve_for_bench.ts [--bare] [--tls]
 * ```
 *
 * Default mode is `startHarness()` (the MX simulator over TLS, MxFlexServer, HTTP on
 * 127.0.0.1:0 through `listen()`, i.e. `Deno.serve`) with the simulator's auto-answer off, so
 * an incoming call produces exactly one DeliveredEvent. `--tls` serves HTTPS instead (the
 * fixture certificate for `localhost`; HTTP/2 or HTTP/1.1 by ALPN), the URL is then
 * `https://localhost:<port>`. `--bare` serves a minimal SSE endpoint instead (plain `Deno.serve`
 * and one `ReadableStream` per client, no hono, no hub, no auth): the baseline that tells what
 * an idle SSE connection costs in Deno itself. `--sim-only` runs just the simulator (TLS) and prints its
 * port as `simPort`; `--sim=127.0.0.1:<port>` runs just MXFlex against such a simulator, so the
 * server's memory can be measured without the simulator's (`call`/`vm` go to the `--sim-only`
 * process then). `--users=N` adds N simulator users (logins `b0`…`b<N-1>`, password `pw`,
 * extensions 10000…) for `load_presence.ts`.
 *
 * Protocol: the first stdout line is `{"url":…,"pid":…}`. Then each stdin line is a command
 * and gets exactly one JSON line back:
 *
 * | command | reply |
 * |---|---|
 * | `mem` | `{rss, heapUsed, heapTotal, external, subscribers}` (bytes) |
 * | `gc [ms]` | same as `mem`, after a full GC (needs `--expose-gc`); with `ms`, GC, wait that long (finalizers, freed native memory), GC again |
 * | `call <from>` | `{callId, t}`: `t` (ms, wall clock with µs precision) is taken just before `sim.incomingCall({from, to: "3095"})` |
 * | `vm <bytes>` | `{id}`: a voicemail of that many bytes for 3095 |
 * | `presence <ext> <status> <note>` | `{t}`: the simulator changes that user's presence (`t` taken just before) |
 * | `busycall <from> <to> <k>` | `{callId, t}`: a call between two users, answered at once, and both parties' presence set to `OnThePhone` with the notes `c<k>a`, `c<k>b` |
 * | `hangup <callId>` | `{ok}`: the call is cleared |
 * | `fanout` | `{publishes, totalMs, maxMs}`: time spent inside `hub.publish` so far |
 * | `quit` | `{bye: true}`, then the process exits |
 *
 * @module
 */
import {
  CERT,
  CERT_FILE,
  DMITRY,
  type Harness,
  KEY,
  KEY_FILE,
  startHarness,
} from "../tests/helpers/harness.ts";
import { defaultUsers, MxSimulator, type SimUser } from "../lib/mxsim/mod.ts";
import { normalizeConfig } from "../lib/config.ts";
import { silentLogger } from "../lib/log.ts";
import { MxFlexServer } from "../app.ts";
import { listen } from "../lib/listen/listen.ts";

/** The first line the child prints. */
export interface ServeHello {
  /** Base URL of the HTTP listener. */
  url: string;
  /** Process id (for `/proc/<pid>/status`). */
  pid: number;
  /** `harness`, `bare`, `sim` or `server`. */
  mode: string;
  /** Simulator TLS port (`--sim-only`). */
  simPort?: number;
}

/**
 * `--users=N`: N more simulator users for the presence load (`bench/load_presence.ts`):
 * logins `b0`… with password `pw`, extensions 10000…
 */
export function benchUsers(n: number): SimUser[] {
  const out: SimUser[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      login: `b${i}`,
      password: "pw",
      jid: (43884860000000000n + BigInt(i)).toString(),
      ext: String(10000 + i),
      firstName: "Bench",
      lastName: `User ${i}`,
      presence: "Available",
    });
  }
  return out;
}

/** The load scripts open thousands of streams with one token: no stream caps here. */
const UNCAPPED_STREAMS = { streams: { perToken: 1_000_000, perUser: 1_000_000 } };

/** MXFlex alone against a simulator elsewhere, assembled like `startHarness()`. */
async function startServerOnly(
  simAddr: string,
  tls: boolean,
): Promise<{ url: string; server: MxFlexServer }> {
  const config = normalizeConfig({
    host: "127.0.0.1:0",
    mx: { test: { addr: simAddr, login: "server", password: "password" } },
    requestTimeoutMs: 2000,
    rateLimits: UNCAPPED_STREAMS,
  }, new URL("../tests/helpers/", import.meta.url).pathname);
  const kv = await Deno.openKv(":memory:");
  const server = await MxFlexServer.create({
    config,
    log: silentLogger,
    kv,
    backoff: { initialMs: 50, maxMs: 300, jitter: 0.1 },
    sseHeartbeatMs: 60_000,
  });
  server.start();
  await Promise.all([...server.sessions.values()].map((s) => s.ready(10_000)));
  const http = await listen(server.fetch, {
    host: "127.0.0.1:0",
    tls: tls ? { certFile: CERT_FILE, keyFile: KEY_FILE } : undefined,
  });
  return { url: baseUrl(tls, http.addr.port), server };
}

function baseUrl(tls: boolean, port: number): string {
  return tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
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

/** Commands that drive the simulator (not available in `--bare` and `--sim=` modes). */
const SIM_COMMANDS = new Set(["call", "vm", "presence", "busycall", "hangup"]);

/** Runs one of {@link SIM_COMMANDS}; returns the reply. */
function simCommand(sim: MxSimulator, line: string): Record<string, unknown> {
  const [cmd, ...args] = line.split(/\s+/);
  const t = wallMs();
  switch (cmd) {
    case "call":
      return { callId: sim.incomingCall({ from: args[0] || "79031744445", to: DMITRY.ext }), t };
    case "vm": {
      const n = Number(args[0]);
      const content = new Uint8Array(n);
      // Non-trivial content (a 251-byte cycle) so nothing can special-case zeros.
      for (let i = 0; i < n; i++) content[i] = i % 251;
      return { id: sim.addVoicemail(DMITRY.ext, { from: "79031744445", content }) };
    }
    case "presence": {
      // presence <ext> <status> <note>: the user changes presence in their client.
      const [ext, status, note] = args;
      sim.setPresence(ext, status, note ?? "");
      return { t };
    }
    case "busycall": {
      // busycall <from> <to> <k>: a call from one user to another, answered at once, and both
      // parties' presence changed (notes c<k>a, c<k>b).
      const [from, to, k] = args;
      const callId = sim.incomingCall({ from, to });
      sim.answer(callId);
      sim.setPresence(from, "OnThePhone", `c${k}a`);
      sim.setPresence(to, "OnThePhone", `c${k}b`);
      return { callId, t };
    }
    default: // hangup
      return { ok: sim.hangup(Number(args[0])) };
  }
}

function reply(o: unknown): void {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(o) + "\n"));
}

async function main(): Promise<void> {
  const bare = Deno.args.includes("--bare");
  const simOnly = Deno.args.includes("--sim-only");
  const simAddr = Deno.args.find((a) => a.startsWith("--sim="))?.slice(6);
  const tls = Deno.args.includes("--tls");
  /** What `call` and `vm` drive, and what `mem` counts subscribers of. */
  let h: Pick<Harness, "sim"> & { server?: MxFlexServer } | undefined;
  let simPort: number | undefined;
  let bareServer: Deno.HttpServer | undefined;
  let bareSubs = 0;
  let url: string;
  let publishes = 0, publishMs = 0, publishMax = 0;
  let soServer: MxFlexServer | undefined;

  if (bare) {
    const retry = enc.encode("retry: 3000\n\n");
    const listenOn = { hostname: "127.0.0.1", port: 0, onListen() {} };
    const handler = () => {
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
    };
    bareServer = tls
      ? Deno.serve({ ...listenOn, cert: CERT, key: KEY }, handler)
      : Deno.serve(listenOn, handler);
    url = baseUrl(tls, (bareServer.addr as Deno.NetAddr).port);
  } else if (simOnly) {
    const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY }, answerAfterMs: -1 });
    h = { sim };
    simPort = sim.port;
    url = "";
  } else if (simAddr) {
    const so = await startServerOnly(simAddr, tls);
    url = so.url;
    h = undefined;
    soServer = so.server;
  } else {
    const extra = Number(Deno.args.find((a) => a.startsWith("--users="))?.slice(8) ?? 0);
    const hh = await startHarness({
      sim: {
        answerAfterMs: -1,
        users: extra ? [...defaultUsers(), ...benchUsers(extra)] : undefined,
      },
      tls,
      config: { rateLimits: UNCAPPED_STREAMS },
    });
    h = hh;
    url = hh.url;
  }
  const server = h?.server ?? soServer;
  if (server) {
    // Measure fan-out cost inside the server without touching production code.
    const hub = server.hub;
    const orig = hub.publish.bind(hub);
    hub.publish = (topic: string, event: string, data: string): string => {
      const t0 = performance.now();
      const id = orig(topic, event, data);
      const dt = performance.now() - t0;
      publishes++;
      publishMs += dt;
      if (dt > publishMax) publishMax = dt;
      return id;
    };
  }
  const mode = bare ? "bare" : simOnly ? "sim" : simAddr ? "server" : "harness";
  reply({ url, pid: Deno.pid, mode, simPort } satisfies ServeHello);

  const mem = (): MemReply => {
    const m = Deno.memoryUsage();
    return {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      subscribers: server ? server.hub.subscriberCount() : bareSubs,
    };
  };

  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).values();
  let buf = "";
  for await (const chunk of lines) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      const [cmd, arg] = line.split(/\s+/);
      buf = buf.slice(nl + 1);
      if (SIM_COMMANDS.has(cmd)) {
        reply(h ? simCommand(h.sim, line) : { error: "no simulator in this mode" });
        continue;
      }
      switch (cmd) {
        case "mem":
          reply(mem());
          break;
        case "gc": {
          const gc = (globalThis as { gc?: () => void }).gc;
          if (gc) {
            for (let i = 0; i < 3; i++) gc();
          }
          if (arg) {
            await new Promise((r) => setTimeout(r, Number(arg)));
            gc?.();
          }
          reply(mem());
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
  if (h && "close" in h) await (h as Harness).close().catch(() => {});
  await bareServer?.shutdown();
  Deno.exit(0);
}

if (import.meta.main) await main();
