/**
 * Sustained mixed load against the real stack (issue 8): for several minutes, concurrently,
 *
 * - `login`: `POST /api/login` of simulator users (seed people / `secret`, generated users
 *   `user4001`… / `password`), each followed by `GET /api/logout` of the new token so the
 *   server's token table stays bounded; paced below the per-IP login limit (60/min), a 429 is
 *   counted apart;
 * - `contacts`: `GET /api/contacts` with a Bearer token from several keep-alive raw-socket
 *   clients, closed loop (the bulk of the load);
 * - `call` + `hangup`: `POST /api/call` to an internal extension, then `DELETE
 *   /api/calls/{callId}` a moment later;
 * - `sse`: a few hundred subscribers on `/api/events`, open the whole time, each checking that
 *   it receives the `DeliveredEvent` of every call of its extension (calls above and below);
 * - `incoming` + `inhangup`: the simulator places an incoming call to 3095 (child `call`
 *   command) periodically; the call is hung up with `DELETE /api/calls/{callId}` a moment later
 *   (auto-answer is off in the bench server, so it would otherwise ring for ever);
 * - `addressbook` / `calllog`: the Proxy API, `GET /mx/test/addressbook` and
 *   `GET /mx/test/calllog?timestamp=<now-60s>` with Basic auth.
 *
 * ```sh
 * deno run -A --unstable-kv bench/load_mixed.ts [--minutes=3] [--contacts-clients=4] [--sse=300]
 *   [--logins-per-min=30] [--callers=2] [--incoming-ms=1000] [--report=30]
 * ```
 *
 * The server (MX simulator + MXFlex, `serve_for_bench.ts`) runs in a child process, so the RSS
 * and heap reported (child `mem` command, sampled every 5 s) are the server's (plus the
 * simulator's, which shares the process). Every 30 s one line per kind gives requests/s,
 * p50/p99 latency, errors (non-2xx other than the login 429s, timeouts, socket errors) and
 * 429s; then server RSS/heap and SSE figures. At the end: totals, and whether RSS stayed flat
 * (median of the first minute's samples vs the last minute's). Every loop is bounded in
 * iterations and by the deadline; all traffic goes to 127.0.0.1.
 *
 * @module
 */
import {
  argNum,
  type BenchServer,
  KeepAliveGet,
  login,
  type MemReply,
  mib,
  percentile,
  procCpuMs,
  procMem,
  sleep,
  startBenchServer,
  wallMs,
} from "./load_util.ts";

/** Client-side timeout of one HTTP request, ms. */
const REQUEST_TIMEOUT_MS = 10_000;
/** How long after a call starts its DeliveredEvent must have reached every subscriber, ms. */
const DELIVERY_GRACE_MS = 5_000;
/** Memory sample period, ms. */
const MEM_EVERY_MS = 5_000;
/** A call-log answer this slow waited for the MX's block timeout (see the report). */
const SLOW_CALLLOG_MS = 1_500;
/** Upper bound on iterations of any one loop (the deadline normally ends it first). */
const MAX_ITER = 10_000_000;

/** Users holding the long-lived tokens (SSE, contacts, calls): login, password, extension. */
const TOKEN_USERS = [
  { login: "dmitry", password: "secret", ext: "3095" },
  { login: "maxim", password: "secret", ext: "3099" },
  { login: "peter", password: "secret", ext: "3044" },
  { login: "mike", password: "secret", ext: "3055" },
] as const;

/** Callers of `POST /api/call`: index into TOKEN_USERS of the caller and the callee. */
const CALL_PAIRS: ReadonlyArray<[number, number]> = [[0, 1], [2, 3], [1, 0], [3, 2]];

/** Users cycled through by the login loop. */
const LOGIN_USERS: ReadonlyArray<[string, string]> = [
  ["dmitry", "secret"],
  ["maxim", "secret"],
  ["peter", "secret"],
  ["john", "secret"],
  ["sergey", "secret"],
  ["user_login", "password"],
  ["user4001", "password"],
  ["user4017", "password"],
  ["user4033", "password"],
  ["user4049", "password"],
];

/** Request kinds reported. */
const KINDS = [
  "contacts",
  "login",
  "logout",
  "call",
  "hangup",
  "incoming",
  "inhangup",
  "addressbook",
  "calllog",
] as const;
type Kind = typeof KINDS[number];

/** Counters of one kind over one window (or the whole run). */
class Counts {
  lat: number[] = [];
  done = 0;
  r429 = 0;
  errors = 0;
  timeouts = 0;
  socket = 0;
  /** Error detail → count (status codes, messages). */
  detail = new Map<string, number>();

  addError(what: string): void {
    this.detail.set(what, (this.detail.get(what) ?? 0) + 1);
  }
}

/** Per-kind statistics, for the current window and for the whole run. */
class Stats {
  win = new Map<Kind, Counts>();
  all = new Map<Kind, Counts>();
  measuring = false;

  constructor() {
    this.reset();
    for (const k of KINDS) this.all.set(k, new Counts());
  }

  reset(): void {
    for (const k of KINDS) this.win.set(k, new Counts());
  }

  #both(kind: Kind, f: (c: Counts) => void): void {
    if (!this.measuring) return;
    f(this.win.get(kind)!);
    f(this.all.get(kind)!);
  }

  /** A completed response. `allow429`: a 429 is expected (login rate limit). */
  response(kind: Kind, status: number, ms: number, allow429 = false): void {
    this.#both(kind, (c) => {
      c.done++;
      if (status >= 200 && status < 300) c.lat.push(ms);
      else if (status === 429 && allow429) c.r429++;
      else {
        c.errors++;
        c.addError(`HTTP ${status}`);
      }
    });
  }

  /** A request that got no response. */
  failure(kind: Kind, err: unknown): void {
    const timeout = err instanceof DOMException &&
      (err.name === "TimeoutError" || err.name === "AbortError");
    const msg = timeout ? "timeout" : String((err as Error)?.message ?? err).slice(0, 80);
    this.#both(kind, (c) => {
      c.errors++;
      if (timeout) c.timeouts++;
      else c.socket++;
      c.addError(msg);
    });
  }
}

/** Runs `fetch` with the request timeout; returns status, body text and latency. */
async function timedFetch(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t0 };
}

const DELIVERED_RE = /event: DeliveredEvent\ndata: \{"callId":(\d+)/g;
const EVENT_RE = /\nevent: /g;

/** DeliveredEvents seen, by call id: subscriber id → receive wall-clock time. */
type Received = Map<number, Map<number, number>>;

/** SSE-wide counters. */
interface SseCounters {
  /** `event:` frames read (all names). */
  events: number;
  /** DeliveredEvents read. */
  delivered: number;
  /** Streams that ended or failed while the run was on. */
  dropped: number;
  /** Failed (re)connects. */
  connectErrors: number;
}

/** One raw-socket SSE subscriber. */
class Subscriber {
  #conn?: Deno.TcpConn;
  #buf = new Uint8Array(8192);
  #dec = new TextDecoder();
  #carry = "";
  /** Connected and past the `retry:` frame. */
  ready = false;
  closing = false;

  constructor(readonly id: number, readonly ext: string, readonly path: string) {}

  /** Connects; resolves once the `retry:` frame arrived. */
  async open(port: number, rx: Received, c: SseCounters): Promise<void> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    this.#conn = conn;
    const timer = setTimeout(() => conn.close(), REQUEST_TIMEOUT_MS);
    try {
      await conn.write(
        new TextEncoder().encode(
          `GET ${this.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`,
        ),
      );
      let head = "";
      while (!head.includes("retry:")) {
        const n = await conn.read(this.#buf);
        if (n === null) throw new Error("closed before retry frame");
        head += this.#dec.decode(this.#buf.subarray(0, n), { stream: true });
        if (head.length > 12 && !head.startsWith("HTTP/1.1 200")) {
          throw new Error(`bad response: ${head.split("\r\n")[0]}`);
        }
      }
      this.#carry = head.slice(head.indexOf("retry:"));
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.ready = true;
    void this.#loop(rx, c);
  }

  async #loop(rx: Received, c: SseCounters): Promise<void> {
    const conn = this.#conn!;
    try {
      for (let i = 0; i < MAX_ITER; i++) {
        const n = await conn.read(this.#buf);
        if (n === null) break;
        const t = wallMs();
        const text = this.#carry + this.#dec.decode(this.#buf.subarray(0, n), { stream: true });
        const end = text.lastIndexOf("\n\n");
        if (end < 0) {
          this.#carry = text.length > 65_536 ? "" : text;
          continue;
        }
        const done = "\n" + text.slice(0, end);
        this.#carry = text.slice(end + 2);
        for (const _ of done.matchAll(EVENT_RE)) c.events++;
        for (const m of done.matchAll(DELIVERED_RE)) {
          c.delivered++;
          const id = Number(m[1]);
          let per = rx.get(id);
          if (!per) rx.set(id, per = new Map());
          per.set(this.id, t);
        }
      }
    } catch {
      // counted below
    }
    this.ready = false;
    if (!this.closing) c.dropped++;
  }

  /** Closes the stream. */
  close(): void {
    this.closing = true;
    this.ready = false;
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
  }
}

/** A call whose DeliveredEvent every subscriber of `exts` must receive. */
interface Expectation {
  callId: number;
  /** Subscribers (ids) ready when the call started. */
  subs: number[];
  /** Registered at (performance.now()). */
  at: number;
  /** Wall clock just before the simulator emitted it (incoming calls), else undefined. */
  t?: number;
}

/** Checks expectations against what subscribers received. */
class DeliveryCheck {
  expected: Expectation[] = [];
  ok = 0;
  missed = 0;
  calls = 0;
  unmatched = 0;
  /** Delivery latency of incoming calls, ms (window and whole run). */
  latWin: number[] = [];
  latAll: number[] = [];
  /** First few misses, for the report. */
  missSamples: string[] = [];

  constructor(readonly rx: Received) {}

  /** Registers a call for the subscribers of the given extensions. */
  expect(callId: number, exts: string[], subs: Subscriber[], t?: number): void {
    const ids = subs.filter((s) => s.ready && exts.includes(s.ext)).map((s) => s.id);
    this.expected.push({ callId, subs: ids, at: performance.now(), t });
  }

  /** Settles expectations older than the grace period (all of them when `all`). */
  settle(all = false): void {
    const now = performance.now();
    const keep: Expectation[] = [];
    const settled = new Set<number>();
    for (const e of this.expected) {
      if (!all && now - e.at < DELIVERY_GRACE_MS) {
        keep.push(e);
        continue;
      }
      this.calls++;
      settled.add(e.callId);
      const per = this.rx.get(e.callId);
      for (const id of e.subs) {
        const t = per?.get(id);
        if (t === undefined) {
          this.missed++;
          if (this.missSamples.length < 5) this.missSamples.push(`call ${e.callId} sub ${id}`);
        } else {
          this.ok++;
          if (e.t !== undefined) {
            this.latWin.push(t - e.t);
            this.latAll.push(t - e.t);
          }
        }
      }
      this.rx.delete(e.callId);
    }
    this.expected = keep;
    // DeliveredEvents of calls nobody expects (e.g. a POST /api/call that timed out here):
    // forget them once old, so the map stays bounded.
    const pending = new Set(keep.map((e) => e.callId));
    for (const [id, per] of this.rx) {
      if (pending.has(id) || settled.has(id)) continue;
      const newest = Math.max(...per.values());
      if (wallMs() - newest > 4 * DELIVERY_GRACE_MS) {
        this.unmatched++;
        this.rx.delete(id);
      }
    }
  }
}

function fmt(n: number, d = 1): string {
  return Number.isFinite(n) ? n.toFixed(d) : "-";
}

function median(a: number[]): number {
  return percentile([...a].sort((x, y) => x - y), 50);
}

function kindLine(kind: Kind, c: Counts, seconds: number): string {
  c.lat.sort((a, b) => a - b);
  const details = [...c.detail].map(([k, v]) => `${k}×${v}`).join(", ");
  return `  ${kind.padEnd(11)} ${fmt(c.done / seconds).padStart(7)} req/s  p50 ${
    fmt(percentile(c.lat, 50), 2).padStart(7)
  } ms  p99 ${
    fmt(percentile(c.lat, 99), 2).padStart(7)
  } ms  errors ${c.errors} (timeouts ${c.timeouts}, socket ${c.socket})  429 ${c.r429}${
    details ? `  [${details}]` : ""
  }`;
}

/** Memory sample. */
interface MemSample {
  /** Seconds since the start of the measured run. */
  s: number;
  /** VmRSS, bytes. */
  rss: number;
  mem: MemReply;
}

async function main(): Promise<void> {
  const minutes = argNum("minutes", 3);
  const contactsClients = argNum("contacts-clients", 4);
  const sseN = argNum("sse", 300);
  const loginsPerMin = Math.min(50, argNum("logins-per-min", 30));
  const callers = Math.min(CALL_PAIRS.length, argNum("callers", 2));
  const incomingMs = argNum("incoming-ms", 1000);
  const reportS = argNum("report", 30);
  const runMs = minutes * 60_000;
  console.log(
    `load_mixed: minutes=${minutes} contacts-clients=${contactsClients} sse=${sseN} ` +
      `logins-per-min=${loginsPerMin} callers=${callers} incoming-ms=${incomingMs} ` +
      `nproc=${navigator.hardwareConcurrency}`,
  );

  const srv: BenchServer = await startBenchServer();
  const port = Number(new URL(srv.url).port);
  const base = srv.url;
  const stats = new Stats();
  const rx: Received = new Map();
  const check = new DeliveryCheck(rx);
  const sse: SseCounters = { events: 0, delivered: 0, dropped: 0, connectErrors: 0 };
  const subs: Subscriber[] = [];
  const loops: Promise<void>[] = [];
  let stopAt = Infinity;
  const running = () => performance.now() < stopAt;

  try {
    // Long-lived tokens: 4 logins, well inside the per-IP login budget.
    const tokens: string[] = [];
    for (const u of TOKEN_USERS) tokens.push(await login(base, u.login, u.password));

    // SSE subscribers, round-robin over the token users, opened 50 at a time.
    for (let i = 0; i < sseN; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, sseN - i) }, (_, j) => {
          const id = i + j;
          const u = id % TOKEN_USERS.length;
          const s = new Subscriber(
            id,
            TOKEN_USERS[u].ext,
            `/api/events?access_token=${encodeURIComponent(tokens[u])}`,
          );
          subs.push(s);
          return s.open(port, rx, sse).catch(() => sse.connectErrors++);
        }),
      );
    }
    await sleep(500);
    const startGc = await srv.cmd<MemReply>("gc");
    console.log(
      `${subs.filter((s) => s.ready).length}/${sseN} SSE subscribers open; server after GC: ` +
        `RSS ${mib(startGc.rss)} MiB, heap ${mib(startGc.heapUsed)} MiB, ` +
        `subscribers ${startGc.subscribers}`,
    );

    const t0 = performance.now();
    stopAt = t0 + runMs;
    stats.measuring = true;
    const cpu0 = { srv: procCpuMs(srv.pid), cli: procCpuMs(Deno.pid), t: t0 };

    // (b) contacts: closed-loop keep-alive clients.
    for (let i = 0; i < contactsClients; i++) {
      loops.push((async () => {
        const cl = new KeepAliveGet("/api/contacts", tokens[i % tokens.length]);
        for (let n = 0; n < MAX_ITER && running(); n++) {
          const ts = performance.now();
          let timer: ReturnType<typeof setTimeout> | undefined;
          try {
            const { status } = await Promise.race([
              cl.request(port),
              new Promise<never>((_, rej) => {
                timer = setTimeout(
                  () => rej(new DOMException("timeout", "TimeoutError")),
                  REQUEST_TIMEOUT_MS,
                );
              }),
            ]);
            stats.response("contacts", status, performance.now() - ts);
          } catch (err) {
            if (!running()) break;
            stats.failure("contacts", err);
            cl.close();
            await sleep(50);
          } finally {
            clearTimeout(timer);
          }
        }
        cl.close();
      })());
    }

    // (a) logins, each followed by a logout of the new token; paced, never bursting.
    loops.push((async () => {
      const gap = 60_000 / Math.max(1, loginsPerMin);
      for (let n = 0; n < MAX_ITER && running(); n++) {
        const next = performance.now() + gap;
        const [user, password] = LOGIN_USERS[n % LOGIN_USERS.length];
        try {
          const r = await timedFetch(`${base}/api/login`, {
            method: "POST",
            body: new URLSearchParams({ login: user, password }),
          });
          stats.response("login", r.status, r.ms, true);
          if (r.status === 200) {
            const token = (JSON.parse(r.body) as { access_token: string }).access_token;
            try {
              const o = await timedFetch(`${base}/api/logout`, {
                headers: { Authorization: `Bearer ${token}` },
              });
              stats.response("logout", o.status, o.ms);
            } catch (err) {
              stats.failure("logout", err);
            }
          }
        } catch (err) {
          stats.failure("login", err);
        }
        await sleep(Math.max(0, Math.min(next - performance.now(), stopAt - performance.now())));
      }
    })());

    // (c) click-to-call between the token users, hung up ~300 ms later.
    for (let i = 0; i < callers; i++) {
      loops.push((async () => {
        const [from, to] = CALL_PAIRS[i];
        const auth = { Authorization: `Bearer ${tokens[from]}` };
        for (let n = 0; n < MAX_ITER && running(); n++) {
          let callId: number | undefined;
          try {
            const r = await timedFetch(`${base}/api/call`, {
              method: "POST",
              headers: auth,
              body: new URLSearchParams({ to: TOKEN_USERS[to].ext }),
            });
            stats.response("call", r.status, r.ms);
            if (r.status === 200) {
              callId = (JSON.parse(r.body) as { call: { callId: number } }).call.callId;
              check.expect(callId, [TOKEN_USERS[from].ext, TOKEN_USERS[to].ext], subs);
            }
          } catch (err) {
            stats.failure("call", err);
          }
          await sleep(300);
          if (callId !== undefined) {
            try {
              const r = await timedFetch(`${base}/api/calls/${callId}`, {
                method: "DELETE",
                headers: auth,
              });
              stats.response("hangup", r.status, r.ms);
            } catch (err) {
              stats.failure("hangup", err);
            }
          }
          await sleep(200);
        }
      })());
    }

    // (e) simulator-originated incoming calls to 3095, hung up by dmitry ~500 ms later.
    loops.push((async () => {
      const auth = { Authorization: `Bearer ${tokens[0]}` };
      for (let n = 0; n < MAX_ITER && running(); n++) {
        const next = performance.now() + incomingMs;
        const ts = performance.now();
        let callId: number | undefined;
        try {
          const r = await srv.cmd<{ callId: number; t: number }>("call 79031744445");
          stats.response("incoming", 200, performance.now() - ts);
          callId = r.callId;
          check.expect(callId, [TOKEN_USERS[0].ext], subs, r.t);
        } catch (err) {
          stats.failure("incoming", err);
        }
        await sleep(500);
        if (callId !== undefined) {
          try {
            const r = await timedFetch(`${base}/api/calls/${callId}`, {
              method: "DELETE",
              headers: auth,
            });
            stats.response("inhangup", r.status, r.ms);
          } catch (err) {
            stats.failure("inhangup", err);
          }
        }
        await sleep(Math.max(0, Math.min(next - performance.now(), stopAt - performance.now())));
      }
    })());

    // Record counts of call-log answers that took >= SLOW_CALLLOG_MS (→ count).
    const slowCalllog = new Map<number, number>();
    // (f) Proxy API with Basic auth: the address book every 200 ms, the call log every 1 s.
    const proxyLoop = (kind: Kind, gapMs: number, path: () => string, user: string) => {
      const auth = { Authorization: "Basic " + btoa(user) };
      return (async () => {
        for (let n = 0; n < MAX_ITER && running(); n++) {
          const next = performance.now() + gapMs;
          try {
            const r = await timedFetch(`${base}${path()}`, { headers: auth });
            stats.response(kind, r.status, r.ms);
            if (kind === "calllog" && r.status === 200 && r.ms >= SLOW_CALLLOG_MS) {
              const records = (JSON.parse(r.body) as { callog: unknown[] }).callog.length;
              slowCalllog.set(records, (slowCalllog.get(records) ?? 0) + 1);
            }
          } catch (err) {
            stats.failure(kind, err);
          }
          await sleep(
            Math.max(0, Math.min(next - performance.now(), stopAt - performance.now())),
          );
        }
      })();
    };
    loops.push(proxyLoop("addressbook", 200, () => "/mx/test/addressbook", "dmitry:secret"));
    loops.push(
      proxyLoop(
        "calllog",
        1000,
        () => `/mx/test/calllog?timestamp=${Math.floor(Date.now() / 1000) - 60}`,
        "maxim:secret",
      ),
    );

    // Delivery checks every second, memory every 5 s, report every `reportS`.
    const memSamples: MemSample[] = [];
    loops.push((async () => {
      let lastReport = t0;
      let lastMem = -Infinity;
      let lastCpu = cpu0;
      let sseEvents0 = 0, delivered0 = 0;
      for (let n = 0; n < MAX_ITER && running(); n++) {
        await sleep(Math.min(1000, Math.max(0, stopAt - performance.now())));
        check.settle();
        const now = performance.now();
        if (now - lastMem >= MEM_EVERY_MS) {
          lastMem = now;
          try {
            const mem = await srv.cmd<MemReply>("mem");
            memSamples.push({ s: (now - t0) / 1000, rss: procMem(srv.pid).rss, mem });
          } catch {
            // child busy or gone; the next sample will tell
          }
        }
        if (now - lastReport >= reportS * 1000 - 500 || now >= stopAt) {
          const secs = (now - lastReport) / 1000;
          const cpu = { srv: procCpuMs(srv.pid), cli: procCpuMs(Deno.pid), t: now };
          const el = cpu.t - lastCpu.t;
          console.log(
            `\n[t=${fmt((now - t0) / 1000, 0)} s] last ${fmt(secs, 0)} s; CPU server ${
              fmt((cpu.srv - lastCpu.srv) / el * 100, 0)
            } %, load generator ${fmt((cpu.cli - lastCpu.cli) / el * 100, 0)} %`,
          );
          for (const k of KINDS) console.log(kindLine(k, stats.win.get(k)!, secs));
          const m = memSamples[memSamples.length - 1];
          if (m) {
            console.log(
              `  server  RSS ${mib(m.rss)} MiB  heapUsed ${mib(m.mem.heapUsed)} MiB  heapTotal ${
                mib(m.mem.heapTotal)
              } MiB  external ${mib(m.mem.external)} MiB  subscribers ${m.mem.subscribers}`,
            );
          }
          check.latWin.sort((a, b) => a - b);
          console.log(
            `  sse     ${subs.filter((s) => s.ready).length} open, events ${
              sse.events - sseEvents0
            } (DeliveredEvent ${sse.delivered - delivered0}), calls checked ${check.calls}, ` +
              `deliveries ok ${check.ok} missed ${check.missed}, dropped ${sse.dropped}; ` +
              `incoming-call delivery p50 ${fmt(percentile(check.latWin, 50), 2)} ms p99 ${
                fmt(percentile(check.latWin, 99), 2)
              } ms`,
          );
          sseEvents0 = sse.events;
          delivered0 = sse.delivered;
          check.latWin = [];
          stats.reset();
          lastReport = now;
          lastCpu = cpu;
        }
      }
    })());

    await Promise.all(loops);
    stats.measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    await sleep(DELIVERY_GRACE_MS);
    check.settle(true);
    const endGc = await srv.cmd<MemReply>("gc");
    const dropped = sse.dropped;
    const cpu1 = { srv: procCpuMs(srv.pid), cli: procCpuMs(Deno.pid) };

    console.log(`\n=== totals over ${fmt(elapsed, 0)} s ===`);
    let errors = 0, r429 = 0;
    for (const k of KINDS) {
      const c = stats.all.get(k)!;
      errors += c.errors;
      r429 += c.r429;
      console.log(kindLine(k, c, elapsed) + `  n=${c.done}`);
    }
    check.latAll.sort((a, b) => a - b);
    console.log(
      `  sse: ${sseN} subscribers (${sse.connectErrors} connect errors), ${sse.events} events ` +
        `(${sse.delivered} DeliveredEvent); ${check.calls} calls checked: ${check.ok} ` +
        `deliveries ok, ${check.missed} missed${
          check.missSamples.length ? ` (${check.missSamples.join("; ")})` : ""
        }, ${check.unmatched} unmatched call ids, ${dropped} streams dropped; incoming-call ` +
        `delivery p50 ${fmt(percentile(check.latAll, 50), 2)} ms p99 ${
          fmt(percentile(check.latAll, 99), 2)
        } ms max ${fmt(check.latAll[check.latAll.length - 1], 2)} ms`,
    );
    const slow = [...slowCalllog].sort((a, b) => a[0] - b[0]);
    console.log(
      `  calllog answers >= ${SLOW_CALLLOG_MS} ms: ${slow.reduce((a, [, v]) => a + v, 0)} of ${
        stats.all.get("calllog")!.done
      }; their record counts: ${
        slow.map(([k, v]) => `${k}${v > 1 ? `×${v}` : ""}`).join(", ") || "-"
      }`,
    );
    console.log(
      `  CPU: server ${fmt((cpu1.srv - cpu0.srv) / (elapsed * 10), 0)} %, load generator ${
        fmt((cpu1.cli - cpu0.cli) / (elapsed * 10), 0)
      } % (of one core)`,
    );
    const first = memSamples.filter((m) => m.s <= 60);
    const last = memSamples.filter((m) => m.s >= elapsed - 60);
    const f = median(first.map((m) => m.rss)), l = median(last.map((m) => m.rss));
    const fh = median(first.map((m) => m.mem.heapUsed));
    const lh = median(last.map((m) => m.mem.heapUsed));
    const growth = (l - f) / f * 100;
    console.log(
      `  server RSS median first minute ${mib(f)} MiB (${first.length} samples), last minute ${
        mib(l)
      } MiB (${last.length}): ${growth >= 0 ? "+" : ""}${fmt(growth)} % -> ${
        Math.abs(growth) < 5 ? "FLAT" : growth > 0 ? "GROWING" : "SHRINKING"
      } (threshold ±5 %); heapUsed median ${mib(fh)} -> ${mib(lh)} MiB; RSS min/max ${
        mib(Math.min(...memSamples.map((m) => m.rss)))
      }/${mib(Math.max(...memSamples.map((m) => m.rss)))} MiB`,
    );
    console.log(
      `  server after full GC: start RSS ${mib(startGc.rss)} MiB heap ${
        mib(startGc.heapUsed)
      } MiB; end RSS ${mib(endGc.rss)} MiB heap ${mib(endGc.heapUsed)} MiB`,
    );
    console.log(
      `  RESULT errors=${errors + check.missed + dropped + sse.connectErrors} ` +
        `(http ${errors}, sse missed ${check.missed}, dropped ${dropped}, connect ${sse.connectErrors}), ` +
        `expected 429s=${r429}`,
    );
    console.log(
      `JSON ${
        JSON.stringify({
          minutes,
          contactsClients,
          sse: sseN,
          elapsed,
          kinds: Object.fromEntries(
            KINDS.map((k) => {
              const c = stats.all.get(k)!;
              return [k, {
                n: c.done,
                rps: c.done / elapsed,
                p50: percentile(c.lat, 50),
                p99: percentile(c.lat, 99),
                errors: c.errors,
                r429: c.r429,
              }];
            }),
          ),
          sseCalls: check.calls,
          sseOk: check.ok,
          sseMissed: check.missed,
          rssFirstMin: f,
          rssLastMin: l,
          memSamples: memSamples.map((m) => [Math.round(m.s), m.rss, m.mem.heapUsed]),
        })
      }`,
    );
  } finally {
    stopAt = 0;
    for (const s of subs) s.close();
    await srv.close();
  }
}

if (import.meta.main) await main();
