/**
 * Regression tests for races and crash paths in the CSTA client, driven by a scriptable fake
 * MX (plain TCP on loopback) that can put several frames in one write and delay replies.
 * An unhandled rejection anywhere fails these tests (Deno reports it as a test error).
 */
import assert from "node:assert/strict";
import { encodeFrame, EVENT_INVOKE_ID, FrameDecoder } from "../lib/csta/frame.ts";
import { parseXml, type XmlElement } from "../lib/csta/xml.ts";
import { CstaConnection } from "../lib/csta/connection.ts";
import { CstaClient } from "../lib/csta/client.ts";
import { fetchAddressBook } from "../lib/csta/commands/mod.ts";

type Reply = Array<[number, string]>;
type Handler = (msg: XmlElement, id: number) => Reply | Promise<Reply>;

/** A fake MX: logs in anyone, then answers with `handler`. */
class FakeMx {
  readonly received: string[] = [];
  readonly port: number;
  #listener: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #loop: Promise<void>;

  constructor(readonly handler: Handler) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#loop = this.#accept();
  }

  count(name: string): number {
    return this.received.filter((n) => n === name).length;
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
      this.#conns.add(conn);
      this.#serve(conn).catch(() => {}).finally(() => this.#conns.delete(conn));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const dec = new FrameDecoder();
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      for (const f of dec.push(buf.subarray(0, n))) {
        const msg = parseXml(f.payload);
        this.received.push(msg.name);
        let out: Reply;
        if (msg.name === "loginRequest") {
          out = [[
            f.invokeId,
            `<loginResponce Code="0" sn="1" apiversion="11" ext="" userId="0">OK</loginResponce>`,
          ]];
        } else if (msg.name === "keepalive" || msg.name === "logout") {
          continue;
        } else {
          out = await this.handler(msg, f.invokeId);
        }
        if (!out.length) continue;
        // Everything of one reply goes out in a single write, as one TCP read on the client.
        const parts = out.map(([id, xml]) => encodeFrame(id, xml));
        const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
        let off = 0;
        for (const p of parts) {
          all.set(p, off);
          off += p.length;
        }
        await conn.write(all).catch(() => {});
      }
    }
  }

  dropAll(): void {
    for (const c of this.#conns) c.close();
  }

  async close(): Promise<void> {
    this.#listener.close();
    this.dropAll();
    await this.#loop.catch(() => {});
  }
}

function client(mx: FakeMx, extra: Partial<ConstructorParameters<typeof CstaClient>[0]> = {}) {
  return new CstaClient({
    hostname: "127.0.0.1",
    port: mx.port,
    tls: false,
    keepAliveMs: 0,
    requestTimeoutMs: 1000,
    credentials: { type: "Server", userName: "s", password: "p" },
    backoff: { initialMs: 10, maxMs: 50, jitter: 0 },
    ...extra,
  });
}

let nextRef = 1;

/** A MonitorStartResponse with a fresh ref. */
function monitorReply(id: number): [number, string] {
  return [
    id,
    `<MonitorStartResponse><monitorCrossRefID>${nextRef++}</monitorCrossRefID></MonitorStartResponse>`,
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("races: Logout in the same read as an address-book page fails the fetch, no crash", async () => {
  const mx = new FakeMx((msg) =>
    msg.name === "iq"
      ? [
        [
          EVENT_INVOKE_ID,
          `<ablist size="100" index="0"></ablist>`.replace(
            "></",
            '><abentry jid="1"><businessPhone>1</businessPhone></abentry></',
          ),
        ],
        [EVENT_INVOKE_ID, `<Logout mode="forced"/>`],
      ]
      : []
  );
  try {
    const conn = await CstaConnection.connect({ hostname: "127.0.0.1", port: mx.port, tls: false });
    await conn.login({ type: "Server", userName: "s", password: "p" });
    await assert.rejects(fetchAddressBook(conn), /logout: forced|closed/);
    await sleep(50); // let any stray rejection surface inside this test
  } finally {
    await mx.close();
  }
});

Deno.test("races: an oversize request rejects cleanly and leaves nothing pending", async () => {
  const mx = new FakeMx(() => []);
  try {
    const conn = await CstaConnection.connect({
      hostname: "127.0.0.1",
      port: mx.port,
      tls: false,
      requestTimeoutMs: 100,
    });
    await conn.login({ type: "Server", userName: "s", password: "p" });
    await assert.rejects(conn.request(`<x>${"a".repeat(70_000)}</x>`), /frame too large/);
    assert.equal(conn.pendingCount, 0);
    conn.destroy("test");
    await sleep(150); // past the request timeout: nothing may reject unhandled
  } finally {
    await mx.close();
  }
});

Deno.test("races: concurrent monitor() calls for one extension send one MonitorStart", async () => {
  const mx = new FakeMx(async (msg, id) => {
    if (msg.name !== "MonitorStart") return [[id, "<MonitorStopResponse/>"]];
    await sleep(30);
    return [monitorReply(id)];
  });
  const c = client(mx);
  try {
    c.start();
    await c.ready(2000);
    await Promise.all([c.monitor("200"), c.monitor("200"), c.monitor("200")]);
    assert.equal(mx.count("MonitorStart"), 1);
    await c.unmonitor("200");
    await sleep(30);
    assert.equal(mx.count("MonitorStop"), 1);
  } finally {
    await c.stop();
    await mx.close();
  }
});

Deno.test("races: an event in the same read as MonitorStartResponse is routed to its extension", async () => {
  const mx = new FakeMx((msg, id) => {
    if (msg.name !== "MonitorStart") return [];
    const reply = monitorReply(id);
    const ref = reply[1].match(/\d+/)![0];
    return [
      reply,
      [
        EVENT_INVOKE_ID,
        `<DeliveredEvent><monitorCrossRefID>${ref}</monitorCrossRefID><connection><callID>1</callID><deviceID>300</deviceID></connection></DeliveredEvent>`,
      ],
    ];
  });
  const c = client(mx);
  const seen: Array<string | undefined> = [];
  c.onMessage((m, ext) => {
    if (m.name === "DeliveredEvent") seen.push(ext);
  });
  try {
    c.start();
    await c.ready(2000);
    await c.monitor("300");
    await sleep(20);
    assert.deepEqual(seen, ["300"]);
  } finally {
    await c.stop();
    await mx.close();
  }
});

Deno.test("races: a monitor requested during session set-up is running when 'connected'", async () => {
  const mx = new FakeMx((msg, id) => msg.name === "MonitorStart" ? [monitorReply(id)] : []);
  const c: CstaClient = client(mx, {
    onSession: async () => {
      void c.monitor("400");
      await sleep(20);
    },
  });
  try {
    c.start();
    await c.ready(2000);
    assert.ok(c.isMonitoring("400"));
    assert.equal(mx.count("MonitorStart"), 1);
  } finally {
    await c.stop();
    await mx.close();
  }
});

Deno.test("races: a monitor released while it is being restored stays released", async () => {
  let delay = 0;
  const mx = new FakeMx(async (msg, id) => {
    if (msg.name === "MonitorStop") return [[id, "<MonitorStopResponse/>"]];
    if (msg.name !== "MonitorStart") return [];
    await sleep(delay);
    return [monitorReply(id)];
  });
  const c = client(mx);
  try {
    c.start();
    await c.ready(2000);
    await c.monitor("500");
    delay = 150;
    mx.dropAll();
    // Wait until the restore has sent its MonitorStart, then release while it waits.
    for (let i = 0; i < 100 && mx.count("MonitorStart") < 2; i++) await sleep(10);
    await c.unmonitor("500");
    await c.ready(2000);
    await sleep(200);
    assert.deepEqual(c.monitoredExtensions, []);
    assert.equal(c.isMonitoring("500"), false);
    assert.equal(mx.count("MonitorStop"), 1, "the restored monitor was stopped on the MX");
  } finally {
    await c.stop();
    await mx.close();
  }
});

Deno.test("races: stop() during connection set-up closes the new session", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const mx = new FakeMx(() => []);
  const c = client(mx, { onSession: () => gate });
  try {
    c.start();
    for (let i = 0; i < 100 && mx.received.length === 0; i++) await sleep(10);
    const stopping = c.stop();
    release();
    await stopping;
    await sleep(30);
    assert.ok(mx.count("logout") >= 0);
    assert.equal(c.state, "stopped");
  } finally {
    await mx.close();
  }
});
