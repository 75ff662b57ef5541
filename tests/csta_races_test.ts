/**
 * Regression tests for races and crash paths in the CSTA client, driven by a scriptable fake
 * MX (plain TCP on loopback) that can put several frames in one write and delay replies.
 * An unhandled rejection anywhere fails these tests (Deno reports it as a test error).
 */
import assert from "node:assert/strict";
import { EVENT_INVOKE_ID } from "../lib/csta/frame.ts";
import { CstaConnection } from "../lib/csta/connection.ts";
import { CstaClient } from "../lib/csta/client.ts";
import { fetchAddressBook } from "../lib/csta/commands/mod.ts";
import { FakeMx } from "./helpers/fake_mx.ts";
import { sleep, waitUntil } from "./helpers/wait.ts";

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

/** A command the fake MXs below answer with `<Pong/>`: a marker that a socket is in sync. */
const PING = "<Ping/>";

/** A promise and the function that resolves it: a fake MX holds replies until released. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

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
    // Torn down: a stray rejection would have been raised by now (and fails the run).
    assert.ok((await conn.closed) instanceof Error);
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
    // Elapsed time is the point here: past the 100 ms request timeout, a timer wrongly left
    // armed fires and its unhandled rejection fails the run (Deno's sanitizers do not track
    // timers).
    await sleep(150);
  } finally {
    await mx.close();
  }
});

Deno.test("races: concurrent monitor() calls for one extension send one MonitorStart", async () => {
  // The MonitorStart reply is held until all three calls are under way.
  const reply = gate();
  const mx = new FakeMx(async (msg, id) => {
    if (msg.name === "Ping") return [[id, "<Pong/>"]];
    if (msg.name !== "MonitorStart") return [[id, "<MonitorStopResponse/>"]];
    await reply.wait;
    return [monitorReply(id)];
  });
  const c = client(mx);
  try {
    c.start();
    await c.ready(2000);
    const all = Promise.all([c.monitor("200"), c.monitor("200"), c.monitor("200")]);
    await waitUntil(() => mx.count("MonitorStart") >= 1, { what: "MonitorStart" });
    reply.open();
    await all;
    assert.equal(mx.count("MonitorStart"), 1);
    await c.unmonitor("200");
    // A later command on the same socket: a second MonitorStop would have arrived before it.
    await c.connection.request(PING);
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
    await waitUntil(() => seen.length > 0, { what: "the DeliveredEvent" });
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
      // Set-up goes on until the MX has confirmed the monitor requested meanwhile.
      await c.monitor("400");
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
  let held: ReturnType<typeof gate> | undefined;
  const mx = new FakeMx(async (msg, id) => {
    if (msg.name === "MonitorStop") return [[id, "<MonitorStopResponse/>"]];
    if (msg.name === "Ping") return [[id, "<Pong/>"]];
    if (msg.name !== "MonitorStart") return [];
    await held?.wait;
    return [monitorReply(id)];
  });
  const c = client(mx);
  try {
    c.start();
    await c.ready(2000);
    await c.monitor("500");
    held = gate();
    mx.dropAll();
    // Wait until the restore has sent its MonitorStart, then release while it waits.
    await waitUntil(() => mx.count("MonitorStart") >= 2, { what: "the restore's MonitorStart" });
    await c.unmonitor("500");
    held.open();
    await c.ready(2000);
    await waitUntil(() => mx.count("MonitorStop") >= 1, { what: "MonitorStop" });
    // A later command on the same socket: whatever the restore still sent came before it.
    await c.connection.request(PING);
    assert.deepEqual(c.monitoredExtensions, []);
    assert.equal(c.isMonitoring("500"), false);
    assert.equal(mx.count("MonitorStop"), 1, "the restored monitor was stopped on the MX");
  } finally {
    await c.stop();
    await mx.close();
  }
});

Deno.test("races: stop() during connection set-up closes the new session", async () => {
  const setUp = gate();
  const mx = new FakeMx(() => []);
  const c = client(mx, { onSession: () => setUp.wait });
  try {
    c.start();
    await waitUntil(() => mx.received.length > 0, { what: "the login" });
    const stopping = c.stop();
    setUp.open();
    await stopping;
    await waitUntil(() => mx.connections === 0, { what: "the new session closed" });
    assert.equal(c.state, "stopped");
  } finally {
    await mx.close();
  }
});
