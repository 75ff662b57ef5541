/**
 * The CSTA client against the MX simulator over real TLS sockets: login (and every failure),
 * commands, named replies, timeouts, keep-alive, server Logout, malformed input, reconnect
 * with monitors restored, certificate trust.
 */
import assert from "node:assert/strict";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import { CstaConnection } from "../lib/csta/connection.ts";
import { backoffDelay, CstaClient } from "../lib/csta/client.ts";
import {
  BusyError,
  CertificateError,
  ConnectionClosedError,
  LoginFailedError,
  RefusedError,
  TimeoutError,
  UnavailableError,
  UnreachableError,
} from "../lib/csta/errors.ts";
import {
  callControl,
  downloadVoicemail,
  fetchAddressBook,
  fetchCallLog,
  listVoicemail,
  placeCall,
  startMonitor,
  stopMonitor,
} from "../lib/csta/commands/mod.ts";
import { decodeCallEvent } from "../lib/csta/events.ts";
import { redactWire } from "../lib/csta/wire_log.ts";
import type { XmlElement } from "../lib/csta/xml.ts";
import { CERT, KEY } from "./helpers/harness.ts";
import { waitUntil } from "./helpers/wait.ts";

/** A self-signed certificate that is not the simulator's. */
const OTHER_CERT = Deno.readTextFileSync(new URL("./fixtures/other-cert.pem", import.meta.url));

const FINGERPRINT =
  "C4:07:50:6F:5A:0A:5D:81:39:C9:F7:FE:08:74:6A:17:3D:95:EB:7B:91:36:EF:9D:AA:37:93:34:EA:49:8E:E5";

async function withSim(fn: (sim: MxSimulator) => Promise<void>, o = {}): Promise<void> {
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY }, ...o });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

function connect(sim: MxSimulator, extra = {}): Promise<CstaConnection> {
  return CstaConnection.connect({
    hostname: "127.0.0.1",
    port: sim.port,
    tls: {},
    requestTimeoutMs: 1000,
    ...extra,
  });
}

Deno.test("csta: user login over TLS returns loginResponce info", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    const info = await conn.login({ type: "User", userName: "dmitry", password: "secret" });
    assert.equal(info.ext, "3095");
    assert.equal(info.jid, "43884851147406145");
    assert.equal(info.sn, sim.sn);
    assert.equal(conn.fingerprint, FINGERPRINT);
    const req = await sim.waitFor("loginRequest", undefined, 1000, 0);
    assert.match(req.xml, /<pwd>[A-Za-z0-9+/=]{28}&#xA;<\/pwd>/, "SHA-1 hash + LF on the wire");
    conn.close();
  });
});

Deno.test("csta: wrong password is LoginFailedError; plainOnly users get the plain retry", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await assert.rejects(
      conn.login({ type: "User", userName: "dmitry", password: "nope" }),
      (e: unknown) => e instanceof LoginFailedError && e.code === 1,
    );
    conn.close();
    sim.addUser({
      login: "legacy",
      password: "plain-pw",
      jid: "43884850000000001",
      ext: "3500",
      firstName: "Legacy",
      lastName: "User",
      plainOnly: true,
    });
    const c2 = await connect(sim);
    const mark = sim.mark();
    const info = await c2.login({ type: "User", userName: "legacy", password: "plain-pw" });
    assert.equal(info.ext, "3500");
    const attempts = sim.received.filter((m) => m.seq >= mark && m.name === "loginRequest");
    assert.equal(attempts.length, 2);
    assert.match(attempts[1].xml, /<pwd>plain-pw<\/pwd>/);
    c2.close();
  });
});

Deno.test("csta: a Server login with user credentials is refused", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await assert.rejects(
      conn.login({ type: "Server", userName: "dmitry", password: "secret" }),
      LoginFailedError,
    );
    conn.close();
  });
});

Deno.test("csta: connecting to a closed port fails fast; a pinned fingerprint is enforced", async () => {
  await withSim(async (sim) => {
    const port = sim.port;
    await sim.pause();
    // A socket error never leaves the transport raw: wrapped, with its code in the message.
    await assert.rejects(
      CstaConnection.connect({ hostname: "127.0.0.1", port, tls: {} }),
      (e: unknown) =>
        e instanceof UnreachableError && e.message === "MX unreachable: ECONNREFUSED" &&
        (e.cause as { code?: string }).code === "ECONNREFUSED",
    );
    await sim.resume();
    await assert.rejects(
      connect(sim, { tls: { fingerprint: "00:11" } }),
      CertificateError,
    );
    const ok = await connect(sim, { tls: { fingerprint: FINGERPRINT.toLowerCase() } });
    ok.close();
    // Trust on first use: a changed certificate is refused.
    await assert.rejects(connect(sim, { tls: { tofu: () => false } }), CertificateError);
    const trusted = await connect(sim, { tls: { ca: [CERT] } });
    trusted.close();
    // A configured CA that did not sign the MX's certificate: a CertificateError, not a raw
    // TLS error.
    await assert.rejects(
      connect(sim, { tls: { ca: [OTHER_CERT] } }),
      (e: unknown) => e instanceof CertificateError && /^MX certificate rejected: /.test(e.message),
    );
  });
});

Deno.test("csta: address book is read across all pages", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await conn.login({ type: "Server", userName: "server", password: "password" });
    const book = await fetchAddressBook(conn);
    assert.equal(book.length, sim.users().filter((u) => !u.server).length);
    assert.ok(book.length > 100 || book.length > 50);
    const pages = sim.received.filter((m) => m.name === "iq" && m.xml.includes("addressbook"));
    assert.ok(pages.length >= 2, "paging happened");
    const me = book.find((c) => c.ext === "3095")!;
    assert.equal(me.jid, "43884851147406145");
    conn.close();
  });
});

Deno.test("csta: MakeCall, monitor events and call control on the server session", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await conn.login({ type: "Server", userName: "server", password: "password" });
    const events: XmlElement[] = [];
    conn.onMessage((m) => events.push(m));
    const ref = await startMonitor(conn, "3095");
    assert.ok(ref > 0);
    const call = await placeCall(conn, "3095", "3099");
    assert.equal(call.deviceId, "3095");
    const until = async (name: string) => {
      await waitUntil(() => events.some((e) => e.name === name), { what: name });
      return decodeCallEvent(events.find((x) => x.name === name)!)!;
    };
    const est = await until("EstablishedEvent");
    assert.equal(est.callId, call.callId);
    assert.equal(est.monitorCrossRefId, ref);
    await callControl(conn, "hold", call.callId, "3095");
    await until("HeldEvent");
    await callControl(conn, "clear", call.callId, "3095");
    await until("ConnectionClearedEvent");
    await assert.rejects(callControl(conn, "hold", 424242, "3095"), RefusedError);
    await stopMonitor(conn, ref);
    conn.close();
  });
});

Deno.test("csta: call log blocks, empty log, voicemail list and chunked download", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await conn.login({ type: "User", userName: "dmitry", password: "secret" });
    assert.deepEqual(await fetchCallLog(conn, -1, 300), [], "empty log: no reply at all");
    for (let i = 0; i < 22; i++) {
      sim.addCallLog("3095", { recordId: 10 + i, disconnectTimestamp: 1_500_000_000 + i });
    }
    const log = await fetchCallLog(conn, -1, 1000);
    assert.equal(log.length, 22);
    assert.equal(log[21].recordId, 31);
    await startMonitor(conn, "3095");
    const content = new Uint8Array(100_000).map((_, i) => (i * 7919) & 0xff);
    const id = sim.addVoicemail("3095", { from: "3099", content });
    const list = await listVoicemail(conn, "3095");
    assert.ok(list.some((v) => v.id === id));
    const dl = await downloadVoicemail(conn, id);
    assert.ok(dl.totalChunks > 1);
    const got = new Uint8Array(await new Response(dl.stream).arrayBuffer());
    assert.deepEqual(got, content);
    await assert.rejects(downloadVoicemail(conn, "nope"), RefusedError);
    conn.close();
  });
});

Deno.test("csta: single-chunk voicemail asks for no extra chunk (original bug)", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await conn.login({ type: "User", userName: "dmitry", password: "secret" });
    await startMonitor(conn, "3095");
    const id = sim.addVoicemail("3095", { from: "3099", content: new Uint8Array(10) });
    const mark = sim.mark();
    const dl = await downloadVoicemail(conn, id);
    assert.equal((await new Response(dl.stream).arrayBuffer()).byteLength, 10);
    const asks = sim.received.filter((m) => m.seq >= mark && m.name === "MailReceiveIncoming");
    assert.equal(asks.length, 1);
    conn.close();
  });
});

Deno.test("csta: request timeout, bounded pending requests, closed connection", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim, { requestTimeoutMs: 200, maxPending: 3 });
    await conn.login({ type: "Server", userName: "server", password: "password" });
    sim.setSilent(["MakeCall"]);
    const pending = [1, 2, 3].map(() => placeCall(conn, "3095", "3099"));
    await assert.rejects(placeCall(conn, "3095", "3099"), BusyError);
    for (const p of pending) await assert.rejects(p, TimeoutError);
    assert.equal(conn.pendingCount, 0);
    conn.close();
    await assert.rejects(placeCall(conn, "3095", "3099"), ConnectionClosedError);
  });
});

Deno.test("csta: keep-alive is sent after the idle period", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim, { keepAliveMs: 100 });
    await conn.login({ type: "Server", userName: "server", password: "password" });
    const ka = await sim.waitFor("keepalive", undefined, 3000);
    assert.equal(ka.invokeId, 0);
    conn.close();
  });
});

Deno.test("csta: server Logout and malformed frames end the session, never the process", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await conn.login({ type: "Server", userName: "server", password: "password" });
    sim.sendLogout("forced");
    const reason = await conn.closed;
    assert.match(reason.message, /logout: forced/);
    const c2 = await connect(sim);
    await c2.login({ type: "Server", userName: "server", password: "password" });
    sim.sendMalformedFrame();
    const r2 = await c2.closed;
    assert.match(r2.message, /protocol error|closed/);
  });
});

Deno.test("csta: client reconnects with backoff and restores monitors", async () => {
  await withSim(async (sim) => {
    const client = new CstaClient({
      hostname: "127.0.0.1",
      port: sim.port,
      tls: {},
      requestTimeoutMs: 1000,
      credentials: { type: "Server", userName: "server", password: "password" },
      backoff: { initialMs: 20, maxMs: 200, jitter: 0 },
    });
    const seen: Array<[string | undefined, string]> = [];
    client.onMessage((m, ext) => seen.push([ext, m.name]));
    assert.throws(() => client.connection, UnavailableError);
    client.start();
    await client.ready(5000);
    await client.monitor("3095");
    sim.dropConnections();
    await waitUntil(() => client.state !== "connected", { what: "the drop noticed" });
    await client.ready(5000);
    assert.equal(client.reconnects, 1);
    // The restored monitor delivers events tagged with the extension.
    sim.incomingCall({ from: "3044", to: "3095" });
    await waitUntil(() => seen.some(([e, n]) => e === "3095" && n === "DeliveredEvent"), {
      what: "DeliveredEvent tagged 3095",
    });
    await client.stop();
    assert.equal(client.state, "stopped");
  });
});

Deno.test("csta: backoff grows exponentially with bounded jitter", () => {
  assert.equal(backoffDelay(0, { initialMs: 500, jitter: 0 }), 500);
  assert.equal(backoffDelay(3, { initialMs: 500, jitter: 0 }), 4000);
  assert.equal(backoffDelay(30, { initialMs: 500, maxMs: 30_000, jitter: 0 }), 30_000);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(2, { initialMs: 1000, jitter: 0.2 });
    assert.ok(d >= 3200 && d <= 4800, String(d));
  }
});

Deno.test("csta: wire log redacts password hashes, SIP passwords and audio", () => {
  const out = redactWire(
    `<loginRequest><pwd>W6ph5Mm5Pz8GgiULbPgzG37mj9g=&#xA;</pwd></loginRequest>` +
      `<loginResponce softPhonePwd="yTEuJ15Rhe"/><x><mediaContent>UklGRiQAAABXQVZF</mediaContent></x>`,
  );
  assert.ok(!out.includes("W6ph5Mm5"));
  assert.ok(!out.includes("yTEuJ15Rhe"));
  assert.ok(!out.includes("UklGRi"));
  assert.match(out, /\[16 base64 chars redacted\]/);
});

Deno.test("csta: a call log of exactly two full blocks ends after the follow-up wait", async () => {
  await withSim(async (sim) => {
    const conn = await connect(sim);
    await conn.login({ type: "User", userName: "dmitry", password: "secret" });
    for (let i = 0; i < 42; i++) {
      sim.addCallLog("3095", { recordId: 1 + i, disconnectTimestamp: 1_500_000_000 + i });
    }
    const log = await fetchCallLog(conn, -1, 1000, 100);
    assert.equal(log.length, 42);
    assert.deepEqual(log.map((r) => r.recordId), Array.from({ length: 42 }, (_, i) => i + 1));
    conn.close();
  });
});
