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

/** Command-line settings. */
interface Options {
  minutes: number;
  contactsClients: number;
  sseN: number;
  loginsPerMin: number;
  callers: number;
  incomingMs: number;
  reportS: number;
}

function options(): Options {
  return {
    minutes: argNum("minutes", 3),
    contactsClients: argNum("contacts-clients", 4),
    sseN: argNum("sse", 300),
    loginsPerMin: Math.min(50, argNum("logins-per-min", 30)),
    callers: Math.min(CALL_PAIRS.length, argNum("callers", 2)),
    incomingMs: argNum("incoming-ms", 1000),
    reportS: argNum("report", 30),
  };
}

/** CPU time of the server and of this process at one instant. */
interface CpuSample {
  srv: number;
  cli: number;
  t: number;
}

function cpuNow(srv: BenchServer): CpuSample {
  return { srv: procCpuMs(srv.pid), cli: procCpuMs(Deno.pid), t: performance.now() };
}

/** What every load kind shares: the server, the long-lived tokens, counters, the deadline. */
class Run {
  readonly base: string;
  readonly port: number;
  readonly stats = new Stats();
  readonly rx: Received = new Map();
  readonly check = new DeliveryCheck(this.rx);
  readonly sse: SseCounters = { events: 0, delivered: 0, dropped: 0, connectErrors: 0 };
  readonly subs: Subscriber[] = [];
  /** Call-log answers that took >= SLOW_CALLLOG_MS: record count → answers. */
  readonly slowCalllog = new Map<number, number>();
  readonly memSamples: MemSample[] = [];
  tokens: string[] = [];
  /** performance.now() at which the measured run ends (Infinity until it starts). */
  stopAt = Infinity;

  constructor(readonly srv: BenchServer) {
    this.base = srv.url;
    this.port = Number(new URL(srv.url).port);
  }

  running(): boolean {
    return performance.now() < this.stopAt;
  }

  /** Sleeps until `next` (performance.now() time), but not past the deadline. */
  pace(next: number): Promise<void> {
    return sleep(Math.max(0, Math.min(next - performance.now(), this.stopAt - performance.now())));
  }

  openSubscribers(): number {
    return this.subs.filter((s) => s.ready).length;
  }
}

/** Long-lived tokens: 4 logins, well inside the per-IP login budget. */
async function loginTokenUsers(run: Run): Promise<void> {
  for (const u of TOKEN_USERS) run.tokens.push(await login(run.base, u.login, u.password));
}

/** SSE subscribers, round-robin over the token users, opened 50 at a time. */
async function openSse(run: Run, n: number): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, j) => {
        const id = i + j;
        const u = id % TOKEN_USERS.length;
        const s = new Subscriber(
          id,
          TOKEN_USERS[u].ext,
          `/api/events?access_token=${encodeURIComponent(run.tokens[u])}`,
        );
        run.subs.push(s);
        return s.open(run.port, run.rx, run.sse).catch(() => run.sse.connectErrors++);
      }),
    );
  }
}

/** (b) contacts: one closed-loop keep-alive client. */
async function contactsLoop(run: Run, i: number): Promise<void> {
  const cl = new KeepAliveGet("/api/contacts", run.tokens[i % run.tokens.length]);
  for (let n = 0; n < MAX_ITER && run.running(); n++) {
    const ts = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const { status } = await Promise.race([
        cl.request(run.port),
        new Promise<never>((_, rej) => {
          timer = setTimeout(
            () => rej(new DOMException("timeout", "TimeoutError")),
            REQUEST_TIMEOUT_MS,
          );
        }),
      ]);
      run.stats.response("contacts", status, performance.now() - ts);
    } catch (err) {
      if (!run.running()) break;
      run.stats.failure("contacts", err);
      cl.close();
      await sleep(50);
    } finally {
      clearTimeout(timer);
    }
  }
  cl.close();
}

/** (a) logins, each followed by a logout of the new token; paced, never bursting. */
async function loginLoop(run: Run, loginsPerMin: number): Promise<void> {
  const gap = 60_000 / Math.max(1, loginsPerMin);
  for (let n = 0; n < MAX_ITER && run.running(); n++) {
    const next = performance.now() + gap;
    const [user, password] = LOGIN_USERS[n % LOGIN_USERS.length];
    try {
      const r = await timedFetch(`${run.base}/api/login`, {
        method: "POST",
        body: new URLSearchParams({ login: user, password }),
      });
      run.stats.response("login", r.status, r.ms, true);
      if (r.status === 200) {
        const token = (JSON.parse(r.body) as { access_token: string }).access_token;
        try {
          const o = await timedFetch(`${run.base}/api/logout`, {
            headers: { Authorization: `Bearer ${token}` },
          });
          run.stats.response("logout", o.status, o.ms);
        } catch (err) {
          run.stats.failure("logout", err);
        }
      }
    } catch (err) {
      run.stats.failure("login", err);
    }
    await run.pace(next);
  }
}

/** `DELETE /api/calls/{callId}` counted as `kind`. */
async function hangUp(run: Run, kind: Kind, callId: number, token: string): Promise<void> {
  try {
    const r = await timedFetch(`${run.base}/api/calls/${callId}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${token}` },
    });
    run.stats.response(kind, r.status, r.ms);
  } catch (err) {
    run.stats.failure(kind, err);
  }
}

/** (c) click-to-call between two token users (pair `i`), hung up ~300 ms later. */
async function callerLoop(run: Run, i: number): Promise<void> {
  const [from, to] = CALL_PAIRS[i];
  for (let n = 0; n < MAX_ITER && run.running(); n++) {
    let callId: number | undefined;
    try {
      const r = await timedFetch(`${run.base}/api/call`, {
        method: "POST",
        headers: { Authorization: `Bearer ${run.tokens[from]}` },
        body: new URLSearchParams({ to: TOKEN_USERS[to].ext }),
      });
      run.stats.response("call", r.status, r.ms);
      if (r.status === 200) {
        callId = (JSON.parse(r.body) as { call: { callId: number } }).call.callId;
        run.check.expect(callId, [TOKEN_USERS[from].ext, TOKEN_USERS[to].ext], run.subs);
      }
    } catch (err) {
      run.stats.failure("call", err);
    }
    await sleep(300);
    if (callId !== undefined) await hangUp(run, "hangup", callId, run.tokens[from]);
    await sleep(200);
  }
}

/** (e) simulator-originated incoming calls to 3095, hung up by dmitry ~500 ms later. */
async function incomingLoop(run: Run, incomingMs: number): Promise<void> {
  for (let n = 0; n < MAX_ITER && run.running(); n++) {
    const next = performance.now() + incomingMs;
    const ts = performance.now();
    let callId: number | undefined;
    try {
      const r = await run.srv.cmd<{ callId: number; t: number }>("call 79031744445");
      run.stats.response("incoming", 200, performance.now() - ts);
      callId = r.callId;
      run.check.expect(callId, [TOKEN_USERS[0].ext], run.subs, r.t);
    } catch (err) {
      run.stats.failure("incoming", err);
    }
    await sleep(500);
    if (callId !== undefined) await hangUp(run, "inhangup", callId, run.tokens[0]);
    await run.pace(next);
  }
}

/** (f) one Proxy API path with Basic auth every `gapMs`; slow call-log answers are noted. */
async function proxyLoop(
  run: Run,
  kind: Kind,
  gapMs: number,
  path: () => string,
  user: string,
): Promise<void> {
  const auth = { Authorization: "Basic " + btoa(user) };
  for (let n = 0; n < MAX_ITER && run.running(); n++) {
    const next = performance.now() + gapMs;
    try {
      const r = await timedFetch(`${run.base}${path()}`, { headers: auth });
      run.stats.response(kind, r.status, r.ms);
      if (kind === "calllog" && r.status === 200 && r.ms >= SLOW_CALLLOG_MS) {
        const records = (JSON.parse(r.body) as { callog: unknown[] }).callog.length;
        run.slowCalllog.set(records, (run.slowCalllog.get(records) ?? 0) + 1);
      }
    } catch (err) {
      run.stats.failure(kind, err);
    }
    await run.pace(next);
  }
}

/** The address book every 200 ms and the call log of the last minute every 1 s. */
function proxyLoops(run: Run): Promise<void>[] {
  return [
    proxyLoop(run, "addressbook", 200, () => "/mx/test/addressbook", "dmitry:secret"),
    proxyLoop(
      run,
      "calllog",
      1000,
      () => `/mx/test/calllog?timestamp=${Math.floor(Date.now() / 1000) - 60}`,
      "maxim:secret",
    ),
  ];
}

/** One report window: per-kind lines, the latest memory sample, SSE figures; resets it. */
class WindowReport {
  #last: number;
  #cpu: CpuSample;
  #events = 0;
  #delivered = 0;

  constructor(readonly run: Run, readonly t0: number, cpu0: CpuSample) {
    this.#last = t0;
    this.#cpu = cpu0;
  }

  /** Whether a report is due at `now`. */
  due(now: number, reportS: number): boolean {
    return now - this.#last >= reportS * 1000 - 500 || now >= this.run.stopAt;
  }

  print(now: number): void {
    const { check, sse, stats } = this.run;
    const secs = (now - this.#last) / 1000;
    const cpu = { ...cpuNow(this.run.srv), t: now };
    const last = this.#cpu;
    const el = cpu.t - last.t;
    console.log(
      `\n[t=${fmt((now - this.t0) / 1000, 0)} s] last ${fmt(secs, 0)} s; CPU server ${
        fmt((cpu.srv - last.srv) / el * 100, 0)
      } %, load generator ${fmt((cpu.cli - last.cli) / el * 100, 0)} %`,
    );
    for (const k of KINDS) console.log(kindLine(k, stats.win.get(k)!, secs));
    const m = this.run.memSamples[this.run.memSamples.length - 1];
    if (m) {
      console.log(
        `  server  RSS ${mib(m.rss)} MiB  heapUsed ${mib(m.mem.heapUsed)} MiB  heapTotal ${
          mib(m.mem.heapTotal)
        } MiB  external ${mib(m.mem.external)} MiB  subscribers ${m.mem.subscribers}`,
      );
    }
    check.latWin.sort((a, b) => a - b);
    console.log(
      `  sse     ${this.run.openSubscribers()} open, events ${
        sse.events - this.#events
      } (DeliveredEvent ${sse.delivered - this.#delivered}), calls checked ${check.calls}, ` +
        `deliveries ok ${check.ok} missed ${check.missed}, dropped ${sse.dropped}; ` +
        `incoming-call delivery p50 ${fmt(percentile(check.latWin, 50), 2)} ms p99 ${
          fmt(percentile(check.latWin, 99), 2)
        } ms`,
    );
    this.#events = sse.events;
    this.#delivered = sse.delivered;
    check.latWin = [];
    stats.reset();
    this.#last = now;
    this.#cpu = cpu;
  }
}

/** Delivery checks every second, memory every 5 s, a report every `reportS`. */
async function monitorLoop(
  run: Run,
  reportS: number,
  t0: number,
  cpu0: CpuSample,
): Promise<void> {
  const report = new WindowReport(run, t0, cpu0);
  let lastMem = -Infinity;
  for (let n = 0; n < MAX_ITER && run.running(); n++) {
    await sleep(Math.min(1000, Math.max(0, run.stopAt - performance.now())));
    run.check.settle();
    const now = performance.now();
    if (now - lastMem >= MEM_EVERY_MS) {
      lastMem = now;
      try {
        const mem = await run.srv.cmd<MemReply>("mem");
        run.memSamples.push({ s: (now - t0) / 1000, rss: procMem(run.srv.pid).rss, mem });
      } catch {
        // child busy or gone; the next sample will tell
      }
    }
    if (report.due(now, reportS)) report.print(now);
  }
}

/** Prints the RSS trend (median of the first vs the last minute); returns both medians. */
function printMemoryTrend(
  memSamples: MemSample[],
  elapsed: number,
): { first: number; last: number } {
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
  return { first: f, last: l };
}

/** The machine-readable summary line. */
function printJson(
  run: Run,
  o: Options,
  elapsed: number,
  rss: { first: number; last: number },
): void {
  const { check, stats, memSamples } = run;
  console.log(
    `JSON ${
      JSON.stringify({
        minutes: o.minutes,
        contactsClients: o.contactsClients,
        sse: o.sseN,
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
        rssFirstMin: rss.first,
        rssLastMin: rss.last,
        memSamples: memSamples.map((m) => [Math.round(m.s), m.rss, m.mem.heapUsed]),
      })
    }`,
  );
}

/** The end-of-run report: totals per kind, SSE deliveries, CPU, memory trend, RESULT, JSON. */
function printTotals(
  run: Run,
  o: Options,
  elapsed: number,
  cpu0: CpuSample,
  cpu1: CpuSample,
  gc: { start: MemReply; end: MemReply },
): void {
  const { check, sse, stats, memSamples } = run;
  const dropped = sse.dropped;
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
    `  sse: ${o.sseN} subscribers (${sse.connectErrors} connect errors), ${sse.events} events ` +
      `(${sse.delivered} DeliveredEvent); ${check.calls} calls checked: ${check.ok} ` +
      `deliveries ok, ${check.missed} missed${
        check.missSamples.length ? ` (${check.missSamples.join("; ")})` : ""
      }, ${check.unmatched} unmatched call ids, ${dropped} streams dropped; incoming-call ` +
      `delivery p50 ${fmt(percentile(check.latAll, 50), 2)} ms p99 ${
        fmt(percentile(check.latAll, 99), 2)
      } ms max ${fmt(check.latAll[check.latAll.length - 1], 2)} ms`,
  );
  const slow = [...run.slowCalllog].sort((a, b) => a[0] - b[0]);
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
  const rss = printMemoryTrend(memSamples, elapsed);
  console.log(
    `  server after full GC: start RSS ${mib(gc.start.rss)} MiB heap ${
      mib(gc.start.heapUsed)
    } MiB; end RSS ${mib(gc.end.rss)} MiB heap ${mib(gc.end.heapUsed)} MiB`,
  );
  console.log(
    `  RESULT errors=${errors + check.missed + dropped + sse.connectErrors} ` +
      `(http ${errors}, sse missed ${check.missed}, dropped ${dropped}, connect ${sse.connectErrors}), ` +
      `expected 429s=${r429}`,
  );
  printJson(run, o, elapsed, rss);
}

async function main(): Promise<void> {
  const o = options();
  console.log(
    `load_mixed: minutes=${o.minutes} contacts-clients=${o.contactsClients} sse=${o.sseN} ` +
      `logins-per-min=${o.loginsPerMin} callers=${o.callers} incoming-ms=${o.incomingMs} ` +
      `nproc=${navigator.hardwareConcurrency}`,
  );
  const run = new Run(await startBenchServer());
  try {
    await loginTokenUsers(run);
    await openSse(run, o.sseN);
    await sleep(500);
    const startGc = await run.srv.cmd<MemReply>("gc");
    console.log(
      `${run.openSubscribers()}/${o.sseN} SSE subscribers open; server after GC: ` +
        `RSS ${mib(startGc.rss)} MiB, heap ${mib(startGc.heapUsed)} MiB, ` +
        `subscribers ${startGc.subscribers}`,
    );

    const cpu0 = cpuNow(run.srv);
    const t0 = cpu0.t;
    run.stopAt = t0 + o.minutes * 60_000;
    run.stats.measuring = true;
    await Promise.all([
      ...Array.from({ length: o.contactsClients }, (_, i) => contactsLoop(run, i)),
      loginLoop(run, o.loginsPerMin),
      ...Array.from({ length: o.callers }, (_, i) => callerLoop(run, i)),
      incomingLoop(run, o.incomingMs),
      ...proxyLoops(run),
      monitorLoop(run, o.reportS, t0, cpu0),
    ]);
    run.stats.measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    await sleep(DELIVERY_GRACE_MS);
    run.check.settle(true);
    const endGc = await run.srv.cmd<MemReply>("gc");
    printTotals(run, o, elapsed, cpu0, cpuNow(run.srv), { start: startGc, end: endGc });
  } finally {
    run.stopAt = 0;
    for (const s of run.subs) s.close();
    await run.srv.close();
  }
}

if (import.meta.main) await main();
