/**
 * End-to-end test harness: the MX simulator over TLS, MXFlex assembled from a config that
 * points at it, and an HTTP listener on 127.0.0.1:0 started by `listen()` (what `main.ts`
 * uses: `Deno.serve`). Every test drives the real path: HTTP -> routes -> CSTA frames over
 * TLS -> simulator and back.
 */
import assert from "node:assert/strict";
import { MxSimulator, type SimOptions } from "../../lib/mxsim/mod.ts";
import { normalizeConfig } from "../../lib/config.ts";
import { type Logger, silentLogger } from "../../lib/log.ts";
import { MxFlexServer } from "../../app.ts";
import { listen } from "../../lib/listen/listen.ts";

export const CERT = Deno.readTextFileSync(new URL("../fixtures/mx-cert.pem", import.meta.url));
export const KEY = Deno.readTextFileSync(new URL("../fixtures/mx-key.pem", import.meta.url));
/** Files of the fixture certificate (valid for `localhost` and 127.0.0.1). */
export const CERT_FILE = new URL("../fixtures/mx-cert.pem", import.meta.url).pathname;
export const KEY_FILE = new URL("../fixtures/mx-key.pem", import.meta.url).pathname;

/** Seed person used across tests (ext 3095). */
export const DMITRY = {
  login: "dmitry",
  password: "secret",
  ext: "3095",
  jid: "43884851147406145",
};

export interface Harness {
  /** Base URL without a trailing slash: `http://127.0.0.1:<port>` or `https://localhost:<port>`. */
  url: string;
  sim: MxSimulator;
  server: MxFlexServer;
  kv: Deno.Kv;
  /** Stops MXFlex and the HTTP listener (the simulator too unless `keepSim`). */
  close(opts?: { keepSim?: boolean; keepKv?: boolean }): Promise<void>;
}

export interface HarnessOptions {
  sim?: SimOptions;
  /** Reuse a running simulator (restart tests). */
  simulator?: MxSimulator;
  /** Extra config keys merged over the defaults. */
  config?: Record<string, unknown>;
  /** KV path (default :memory:). */
  kvPath?: string;
  staticDirs?: string[];
  /** Wait for the MX session before returning (default true). */
  waitReady?: boolean;
  /** HTTP port (default 0 = any free port); a restart test reuses the old one. */
  port?: number;
  /**
   * Serve HTTPS (static TLS with the fixture certificate; HTTP/2 by ALPN) instead of plain
   * HTTP. Clients need {@link CERT} as CA (e.g. `Deno.createHttpClient({ caCerts: [CERT] })`).
   */
  tls?: boolean;
  /** Stall limit of voicemail downloads, ms (default the server's 60 s). */
  voicemailIdleMs?: number;
  /** The server's logger (default silent). */
  log?: Logger;
}

/** Starts simulator + server + HTTP listener. */
export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const sim = o.simulator ??
    await MxSimulator.start({ tls: { cert: CERT, key: KEY }, ...o.sim });
  const config = normalizeConfig({
    host: "127.0.0.1:0",
    mx: { test: { addr: `127.0.0.1:${sim.port}`, login: "server", password: "password" } },
    requestTimeoutMs: 2000,
    ...o.config,
  }, new URL(".", import.meta.url).pathname);
  const kv = await Deno.openKv(o.kvPath ?? ":memory:");
  const server = await MxFlexServer.create({
    config,
    log: o.log ?? silentLogger,
    kv,
    staticDirs: o.staticDirs,
    backoff: { initialMs: 50, maxMs: 300, jitter: 0.1 },
    sseHeartbeatMs: 60_000,
    voicemailIdleMs: o.voicemailIdleMs,
  });
  server.start();
  if (o.waitReady !== false) {
    await Promise.all([...server.sessions.values()].map((s) => s.ready(10_000)));
  }
  const http = await listen(server.fetch, {
    host: `127.0.0.1:${o.port ?? 0}`,
    tls: o.tls ? { certFile: CERT_FILE, keyFile: KEY_FILE } : undefined,
  });
  return {
    url: o.tls ? `https://localhost:${http.addr.port}` : `http://127.0.0.1:${http.addr.port}`,
    sim,
    server,
    kv,
    async close(c = {}) {
      await server.close();
      await http.shutdown();
      if (!c.keepSim) await sim.close();
      if (!c.keepKv) kv.close();
    },
  };
}

/** Runs `fn` with a fresh harness and always closes it. */
export async function withHarness(
  fn: (h: Harness) => Promise<void>,
  o: HarnessOptions = {},
): Promise<void> {
  const h = await startHarness(o);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

/** Logs in through the Flex API and returns the access token. */
export async function flexLogin(
  url: string,
  login = DMITRY.login,
  password = DMITRY.password,
): Promise<string> {
  const res = await fetch(`${url}/api/login`, {
    method: "POST",
    body: new URLSearchParams({ login, password }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/**
 * The sequence number of an SSE event id `<epoch>.<seq>`.
 * @throws {Error} for an id of another form
 */
export function eventSeq(id: string | undefined): number {
  const m = /^[0-9a-z]+\.(\d+)$/.exec(id ?? "");
  if (!m) throw new Error(`not an event id: ${id}`);
  return Number(m[1]);
}

/** Basic auth header value. */
export function basic(login = DMITRY.login, password = DMITRY.password): string {
  return "Basic " + btoa(`${login}:${password}`);
}

/**
 * Opens `GET /api/events` for `token` the way a browser's EventSource does (`?access_token=`),
 * checks that it is an SSE stream (200, `text/event-stream`) and returns its reader.
 */
export async function openEvents(
  url: string,
  token: string,
  opts: { lastEventId?: string } = {},
): Promise<SseReader> {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (opts.lastEventId) headers["last-event-id"] = opts.lastEventId;
  const res = await fetch(`${url}/api/events?access_token=${token}`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  return new SseReader(res);
}

/** Reads SSE events from a fetch response body until `count` events or timeout. */
export class SseReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = "";
  #dec = new TextDecoder();

  constructor(res: Response) {
    this.#reader = res.body!.getReader();
  }

  /** Next event (skipping comments and retry lines). */
  async next(timeoutMs = 5000): Promise<{ id?: string; event: string; data: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#buf.indexOf("\n\n");
      if (i >= 0) {
        const block = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        const ev: { id?: string; event: string; data: string } = { event: "message", data: "" };
        let has = false;
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":") || line === "") continue;
          const [k, ...rest] = line.split(":");
          const v = rest.join(":").replace(/^ /, "");
          if (k === "id") ev.id = v;
          else if (k === "event") ev.event = v;
          else if (k === "data") {
            data.push(v);
            has = true;
          }
        }
        if (has) {
          ev.data = data.join("\n");
          return ev;
        }
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timeout waiting for SSE event");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error("timeout waiting for SSE event")), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (r.done) throw new Error("SSE stream ended");
      this.#buf += this.#dec.decode(r.value, { stream: true });
    }
  }

  /** Reads until an event named `name` arrives; returns all events read. */
  async until(
    name: string,
    timeoutMs = 5000,
  ): Promise<{ event: string; data: string; id?: string }[]> {
    const out = [];
    for (;;) {
      const ev = await this.next(timeoutMs);
      out.push(ev);
      if (ev.event === name) return out;
    }
  }

  /** True when the stream has ended (reads until done or timeout). */
  async ended(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<{ done: false; value: undefined }>((res) => {
          timer = setTimeout(() => res({ done: false, value: undefined }), deadline - Date.now());
        }),
      ]).finally(() => clearTimeout(timer));
      if (r.done) return true;
    }
    return false;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
