/**
 * A tiny Prometheus registry: counters, gauges and histograms with fixed buckets and labels,
 * rendered in the text exposition format 0.0.4. No dependencies, no timers: values that
 * already live elsewhere (SSE clients, MX session state, push counters) are read at scrape
 * time by collect hooks instead of being mirrored.
 *
 * @example
 * ```ts
 * const reg = new Registry();
 * const reqs = reg.counter("http_requests_total", "HTTP requests.", ["route", "method", "status"]);
 * reqs.inc({ route: "/api/login", method: "POST", status: "200" });
 * const dur = reg.histogram("http_request_duration_seconds", "Time to response headers.", ["route"]);
 * dur.observe({ route: "/api/login" }, 0.012);
 * new Response(reg.render(), { headers: { "Content-Type": PROMETHEUS_CONTENT_TYPE } });
 * ```
 *
 * @module
 */

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Default histogram buckets (seconds), as the Prometheus client libraries use. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** Label values by label name. */
export type Labels = Readonly<Record<string, string | number>>;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Formats a sample value: integers plainly, `+Inf`/`-Inf`/`NaN` as Prometheus spells them.
 *
 * @example
 * ```ts
 * formatValue(Infinity); // "+Inf"
 * ```
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/**
 * Escapes a label value (backslash, double quote, line feed).
 *
 * @example
 * ```ts
 * escapeLabelValue('a"b'); // 'a\\"b'
 * ```
 */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Base of every metric: name, help, label names and per-label-set series. */
abstract class Metric<S> {
  /** Metric name. */
  readonly name: string;
  /** Help text. */
  readonly help: string;
  /** Label names, in output order. */
  readonly labelNames: readonly string[];
  /** Series by label key. */
  protected series = new Map<string, { labels: string; value: S }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!NAME_RE.test(name)) throw new TypeError(`bad metric name ${name}`);
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l.startsWith("__") || l === "le") {
        throw new TypeError(`bad label name ${l}`);
      }
    }
    this.name = name;
    this.help = help;
    this.labelNames = [...labelNames];
  }

  /** Metric type as printed in `# TYPE`. */
  abstract get type(): string;

  /** Sample lines of this metric (without HELP/TYPE). */
  abstract lines(): string[];

  /** Forgets every series (e.g. before a collect hook re-fills a gauge). */
  reset(): void {
    this.series.clear();
  }

  /** The rendered label set of `labels` (also the series key). */
  protected key(labels: Labels | undefined): string {
    const parts: string[] = [];
    for (const n of this.labelNames) {
      const v = labels?.[n];
      parts.push(`${n}="${escapeLabelValue(v === undefined ? "" : String(v))}"`);
    }
    return parts.join(",");
  }

  /** The series for `labels`, created with `init()` on first use. */
  protected get(labels: Labels | undefined, init: () => S): { labels: string; value: S } {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: key, value: init() };
      this.series.set(key, s);
    }
    return s;
  }
}

function braces(labels: string): string {
  return labels ? `{${labels}}` : "";
}

/**
 * A monotonically increasing counter.
 *
 * @example
 * ```ts
 * const reqs = registry.counter("http_requests_total", "HTTP requests.", ["status"]);
 * reqs.inc({ status: 200 });
 * ```
 */
export class Counter extends Metric<{ v: number }> {
  /** @inheritdoc */
  get type(): string {
    return "counter";
  }

  /**
   * Adds `n` (default 1, must be ≥ 0) to the series of `labels`.
   * @throws {RangeError} on a negative or non-finite increment
   */
  inc(labels?: Labels, n = 1): void {
    if (!(n >= 0) || !Number.isFinite(n)) throw new RangeError("counter increment must be >= 0");
    this.get(labels, () => ({ v: 0 })).value.v += n;
  }

  /** Sets the series to an absolute value read from a monotonic source (collect hooks). */
  setTotal(labels: Labels | undefined, v: number): void {
    this.get(labels, () => ({ v: 0 })).value.v = v;
  }

  /** Current value of a series (0 when never touched). */
  value(labels?: Labels): number {
    return this.series.get(this.key(labels))?.value.v ?? 0;
  }

  /** @inheritdoc */
  lines(): string[] {
    return [...this.series.values()].map((s) =>
      `${this.name}${braces(s.labels)} ${formatValue(s.value.v)}`
    );
  }
}

/**
 * A value that goes up and down.
 *
 * @example
 * ```ts
 * const sse = registry.gauge("sse_clients", "Connected SSE clients.");
 * sse.set(undefined, 12);
 * ```
 */
export class Gauge extends Metric<{ v: number }> {
  /** @inheritdoc */
  get type(): string {
    return "gauge";
  }

  /** Sets the series of `labels` to `v`. */
  set(labels: Labels | undefined, v: number): void {
    this.get(labels, () => ({ v: 0 })).value.v = v;
  }

  /** Adds `n` (default 1; may be negative). */
  inc(labels?: Labels, n = 1): void {
    this.get(labels, () => ({ v: 0 })).value.v += n;
  }

  /** Current value of a series (0 when never touched). */
  value(labels?: Labels): number {
    return this.series.get(this.key(labels))?.value.v ?? 0;
  }

  /** @inheritdoc */
  lines(): string[] {
    return [...this.series.values()].map((s) =>
      `${this.name}${braces(s.labels)} ${formatValue(s.value.v)}`
    );
  }
}

interface HistState {
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram with fixed, cumulative `le` buckets plus `_sum` and `_count`.
 *
 * @example
 * ```ts
 * const dur = registry.histogram("http_request_duration_seconds", "Time to headers.", ["route"]);
 * dur.observe({ route: "/api/contacts" }, 0.004);
 * ```
 */
export class Histogram extends Metric<HistState> {
  /** Upper bounds, ascending, without `+Inf`. */
  readonly buckets: readonly number[];

  /** @param buckets ascending finite upper bounds; `+Inf` is implied */
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    super(name, help, labelNames);
    const b = buckets.filter((x) => x !== Infinity);
    for (let i = 0; i < b.length; i++) {
      if (!Number.isFinite(b[i]) || (i > 0 && b[i] <= b[i - 1])) {
        throw new TypeError("histogram buckets must be finite and strictly ascending");
      }
    }
    this.buckets = b;
  }

  /** @inheritdoc */
  get type(): string {
    return "histogram";
  }

  /** Records one observation. NaN is ignored. */
  observe(labels: Labels | undefined, v: number): void {
    if (Number.isNaN(v)) return;
    const s = this.get(labels, () => ({
      counts: new Array(this.buckets.length).fill(0),
      sum: 0,
      count: 0,
    })).value;
    // Non-cumulative per-bucket counts; render() accumulates.
    const i = this.buckets.findIndex((b) => v <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += v;
    s.count++;
  }

  /** Observations of a series so far. */
  count(labels?: Labels): number {
    return this.series.get(this.key(labels))?.value.count ?? 0;
  }

  /** @inheritdoc */
  lines(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      const sep = s.labels ? "," : "";
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.value.counts[i] ?? 0;
        out.push(
          `${this.name}_bucket{${s.labels}${sep}le="${formatValue(this.buckets[i])}"} ${acc}`,
        );
      }
      out.push(`${this.name}_bucket{${s.labels}${sep}le="+Inf"} ${s.value.count}`);
      out.push(`${this.name}_sum${braces(s.labels)} ${formatValue(s.value.sum)}`);
      out.push(`${this.name}_count${braces(s.labels)} ${s.value.count}`);
    }
    return out;
  }
}

/**
 * A metrics registry.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * registry.counter("logins_total", "Logins.").inc();
 * registry.render();
 * // # HELP logins_total Logins.
 * // # TYPE logins_total counter
 * // logins_total 1
 * ```
 */
export class Registry {
  #metrics = new Map<string, Metric<unknown>>();
  #collectors: Array<() => void> = [];

  /** Registers (or returns the already registered) counter `name`. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(name, () => new Counter(name, help, labelNames), Counter);
  }

  /** Registers (or returns the already registered) gauge `name`. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(name, () => new Gauge(name, help, labelNames), Gauge);
  }

  /** Registers (or returns the already registered) histogram `name`. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ): Histogram {
    return this.#add(name, () => new Histogram(name, help, labelNames, buckets), Histogram);
  }

  /** Adds a hook run at the start of every {@link render} (read values kept elsewhere). */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** Runs the collect hooks and renders every metric in the text format 0.0.4. */
  render(): string {
    for (const c of this.#collectors) {
      try {
        c();
      } catch {
        // A failing hook must not break the scrape; its metrics keep their last values.
      }
    }
    let out = "";
    for (const m of this.#metrics.values()) {
      out += `# HELP ${m.name} ${escapeHelp(m.help)}\n# TYPE ${m.name} ${m.type}\n`;
      for (const l of m.lines()) out += l + "\n";
    }
    return out;
  }

  #add<T extends Metric<unknown>>(
    name: string,
    make: () => T,
    // deno-lint-ignore no-explicit-any
    kind: abstract new (...a: any[]) => T,
  ): T {
    const have = this.#metrics.get(name);
    if (have) {
      if (!(have instanceof kind)) throw new TypeError(`metric ${name} exists with another type`);
      return have as T;
    }
    const m = make();
    this.#metrics.set(name, m as Metric<unknown>);
    return m;
  }
}

/** Methods kept as a label value; anything else is "OTHER" (bounds cardinality). */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/**
 * Normalises an HTTP method for use as a label.
 *
 * @example
 * ```ts
 * methodLabel("get"); // "GET"
 * methodLabel("PROPFIND"); // "OTHER"
 * ```
 */
export function methodLabel(method: string): string {
  const m = method.toUpperCase();
  return KNOWN_METHODS.has(m) ? m : "OTHER";
}

/** Observer of CSTA traffic (structurally the `observer` option of `CstaConnection`). */
export interface CstaMetricsObserver {
  /** One frame sent ("out") or received ("in"). */
  frame(direction: "in" | "out"): void;
  /** A request got its reply (or failed) after `ms`. */
  command(ms: number): void;
  /** A request timed out. */
  timeout(): void;
}

/**
 * Observer of push outcomes per app key and lifecycle event (structurally the `observer`
 * option of `PushDispatcher`).
 */
export interface PushMetricsObserver {
  /** The service accepted a push `latencyMs` after its MX event arrived. */
  sent(app: string, event: string, latencyMs: number): void;
  /** A push was given up on. */
  failed(app: string, event: string): void;
  /** A push found its token dead; the token was deleted. */
  pruned(app: string, event: string): void;
}

/** Buckets (seconds) of `push_latency_seconds`: pushes take tens of ms to seconds. */
export const PUSH_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
]);

/** One finished HTTP request, as the request-log middleware reports it. */
export interface HttpObservation {
  /** Route pattern (e.g. `/mx/:name/voicemail/:id`), never the raw path. */
  route: string;
  method: string;
  status: number;
  /** Time to response headers, ms. */
  ms: number;
}

/** Sources read at scrape time. */
export interface ServerMetricSources {
  /** This instance's id: `mxflex_instance_info{instance_id="…"} 1`. */
  instanceId?: string;
  /** Number of live Flex tokens this instance knows (and holds monitors for). */
  liveTokens?: () => number;
  /** Number of connected SSE clients. */
  sseClients?: () => number;
  /** MX sessions: name, current state and reconnect count. */
  sessions?: () => Iterable<{ name: string; state: string; reconnects: number }>;
  /** The automatic (ACME) certificate: expiry of the one served, failed renewals. */
  certificate?: () => { notAfter?: Date; renewalFailures: number } | undefined;
}

/** Every state `mx_session_state` reports (one series each, 1 for the current one). */
export const MX_STATES: readonly string[] = [
  "connecting",
  "connected",
  "disconnected",
  "login-failed",
  "stopped",
];

/**
 * MXFlex's metrics on one registry, with the hooks the server wires.
 *
 * @example
 * ```ts
 * const m = new ServerMetrics({ sseClients: () => hub.subscriberCount() });
 * m.http({ route: "/api/login", method: "POST", status: 200, ms: 12 });
 * m.csta.frame("out");
 * const text = m.registry.render();
 * ```
 */
export class ServerMetrics {
  /** The registry (render it for `/metrics`). */
  readonly registry: Registry = new Registry();
  /** `http_requests_total{route,method,status}`. */
  readonly httpRequests: Counter;
  /** `http_request_duration_seconds{route}`. */
  readonly httpDuration: Histogram;
  /** `csta_frames_total{direction}`. */
  readonly cstaFrames: Counter;
  /** `csta_command_duration_seconds`. */
  readonly cstaDuration: Histogram;
  /** `csta_timeouts_total`. */
  readonly cstaTimeouts: Counter;
  /** Hooks for `CstaConnection`'s `observer` option. */
  readonly csta: CstaMetricsObserver;
  /** `push_sent_total`, `push_failed_total`, `push_pruned_total` `{app,event}`. */
  readonly pushCounters: { sent: Counter; failed: Counter; pruned: Counter };
  /** `push_latency_seconds{app,event}`: MX event to push accepted. */
  readonly pushLatency: Histogram;
  /** Hooks for `PushDispatcher`'s `observer` option. */
  readonly push: PushMetricsObserver;

  /** @param src values read at scrape time */
  constructor(src: ServerMetricSources = {}) {
    const r = this.registry;
    this.httpRequests = r.counter("http_requests_total", "HTTP requests answered.", [
      "route",
      "method",
      "status",
    ]);
    this.httpDuration = r.histogram(
      "http_request_duration_seconds",
      "Time from request to response headers (SSE: until the stream starts).",
      ["route"],
    );
    if (src.instanceId !== undefined) {
      r.gauge("mxflex_instance_info", "This instance (one series, value 1).", ["instance_id"])
        .set({ instance_id: src.instanceId }, 1);
    }
    const live = r.gauge("flex_live_tokens", "Live Flex API tokens known to this instance.");
    const sse = r.gauge("sse_clients", "Connected Server-Sent Events clients.");
    const state = r.gauge("mx_session_state", "MX server session state (1 = current).", [
      "mx",
      "state",
    ]);
    const reconnects = r.counter(
      "mx_reconnects_total",
      "Successful MX reconnects after the first connection.",
      ["mx"],
    );
    this.cstaFrames = r.counter("csta_frames_total", "CSTA frames sent and received.", [
      "direction",
    ]);
    this.cstaDuration = r.histogram(
      "csta_command_duration_seconds",
      "Time from a CSTA request to its reply or failure.",
    );
    this.cstaTimeouts = r.counter("csta_timeouts_total", "CSTA requests that timed out.");
    const labels = ["app", "event"];
    const pc = this.pushCounters = {
      sent: r.counter("push_sent_total", "Pushes accepted by APNs/FCM.", labels),
      failed: r.counter("push_failed_total", "Pushes given up on.", labels),
      pruned: r.counter("push_pruned_total", "Pushes whose token was dead (deleted).", labels),
    };
    const lat = this.pushLatency = r.histogram(
      "push_latency_seconds",
      "Time from the MX call event to APNs/FCM accepting the push.",
      labels,
      PUSH_LATENCY_BUCKETS,
    );
    this.push = {
      sent: (app, event, ms) => {
        pc.sent.inc({ app, event });
        lat.observe({ app, event }, ms / 1000);
      },
      failed: (app, event) => pc.failed.inc({ app, event }),
      pruned: (app, event) => pc.pruned.inc({ app, event }),
    };

    const certExpiry = r.gauge(
      "tls_certificate_expiry_timestamp_seconds",
      "Expiry of the automatic (ACME) certificate being served, Unix time.",
    );
    const renewalFailures = r.counter(
      "acme_renewal_failures_total",
      "Failed renewals of the automatic (ACME) certificate.",
    );

    r.onCollect(() => {
      const cert = src.certificate?.();
      if (cert) {
        renewalFailures.setTotal(undefined, cert.renewalFailures);
        if (cert.notAfter) certExpiry.set(undefined, Math.floor(cert.notAfter.getTime() / 1000));
      }
      if (src.liveTokens) live.set(undefined, src.liveTokens());
      if (src.sseClients) sse.set(undefined, src.sseClients());
      if (src.sessions) {
        for (const s of src.sessions()) {
          for (const st of MX_STATES) state.set({ mx: s.name, state: st }, st === s.state ? 1 : 0);
          reconnects.setTotal({ mx: s.name }, s.reconnects);
        }
      }
    });

    const frames = this.cstaFrames, dur = this.cstaDuration, tmo = this.cstaTimeouts;
    this.csta = {
      frame: (direction) => frames.inc({ direction }),
      command: (ms) => dur.observe(undefined, ms / 1000),
      timeout: () => tmo.inc(),
    };
  }

  /** Records one finished HTTP request. */
  http(o: HttpObservation): void {
    this.httpRequests.inc({ route: o.route, method: methodLabel(o.method), status: o.status });
    this.httpDuration.observe({ route: o.route }, o.ms / 1000);
  }
}
