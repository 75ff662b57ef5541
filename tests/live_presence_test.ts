/**
 * Presence and address-book changes end to end (HTTP -> server -> CSTA over TLS ->
 * simulator and back): `presence` and `contact` events on every stream, one publish for all,
 * `/api/contacts` consistent with them, `PUT /api/presence`, presence during calls, and the
 * `snapshot` that starts a stream resumed after a server restart or with an unknown id.
 */
import assert from "node:assert/strict";
import {
  DMITRY,
  eventSeq,
  flexLogin,
  type Harness,
  openEvents,
  SseReader,
  startHarness,
  withHarness,
} from "./helpers/harness.ts";
import { waitUntil } from "./helpers/wait.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const PETER = { jid: "43884851428118509", ext: "3044" };
const MAXIM = { login: "maxim", password: "secret", jid: "43884852031096113", ext: "3099" };

async function contacts(h: Harness, token: string): Promise<{ etag: string; list: Json[] }> {
  const res = await fetch(`${h.url}/api/contacts`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  return { etag: res.headers.get("etag") ?? "", list: (await res.json()).contacts };
}

async function putPresence(h: Harness, token: string, body: unknown): Promise<Response> {
  return await fetch(`${h.url}/api/presence`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** The next event named `name`, skipping others. */
async function nextNamed(sse: SseReader, name: string) {
  const evs = await sse.until(name);
  return evs.at(-1)!;
}

Deno.test("presence: a contact's change reaches every stream (one publish) and /api/contacts", async () => {
  await withHarness(async (h) => {
    const t1 = await flexLogin(h.url);
    const t2 = await flexLogin(h.url, MAXIM.login, MAXIM.password);
    const s1 = await openEvents(h.url, t1);
    const s2 = await openEvents(h.url, t2);
    const before = await contacts(h, t1);
    h.sim.setPresence(PETER.ext, "Away", "lunch until 2");
    const [e1, e2] = await Promise.all([nextNamed(s1, "presence"), nextNamed(s2, "presence")]);
    assert.deepEqual(JSON.parse(e1.data), {
      jid: PETER.jid,
      ext: PETER.ext,
      status: "Away",
      note: "lunch until 2",
    });
    assert.equal(e1.data, e2.data);
    assert.equal(e1.id, e2.id, "one event, published once to the broadcast topic");
    // What the stream said is what the address book says, with a new ETag.
    const after = await contacts(h, t1);
    assert.notEqual(after.etag, before.etag);
    const peter = after.list.find((c: Json) => c.ext === PETER.ext);
    assert.equal(peter.status, "Away");
    assert.equal(peter.note, "lunch until 2");
    await s1.cancel();
    await s2.cancel();
  });
});

Deno.test("presence: PUT /api/presence sets the user's own presence on the MX, seen by all", async () => {
  await withHarness(async (h) => {
    const t1 = await flexLogin(h.url);
    const t2 = await flexLogin(h.url, MAXIM.login, MAXIM.password);
    const s1 = await openEvents(h.url, t1);
    const s2 = await openEvents(h.url, t2);
    const mark = h.sim.mark();
    const res = await putPresence(h, t1, { status: "DoNotDisturb", note: "in a meeting" });
    assert.equal(res.status, 204);
    // The command went out on a session logged in as the user, not the server's.
    const cmd = await h.sim.waitFor("presence", undefined, 5000, mark);
    assert.equal(cmd.el.attrs.status, "DoNotDisturb");
    assert.match(cmd.xml, /<presenceNote>in a meeting<\/presenceNote>/);
    const login = h.sim.received.find((m) =>
      m.session === cmd.session && m.name === "loginRequest"
    );
    assert.match(login!.xml, /type="User"/);
    assert.match(login!.xml, /<userName>dmitry<\/userName>/);
    const want = { jid: DMITRY.jid, ext: DMITRY.ext, status: "DoNotDisturb", note: "in a meeting" };
    assert.deepEqual(JSON.parse((await nextNamed(s1, "presence")).data), want, "the user too");
    assert.deepEqual(JSON.parse((await nextNamed(s2, "presence")).data), want);
    assert.equal(h.sim.users().find((u) => u.ext === DMITRY.ext)?.presence, "DoNotDisturb");
    const me = (await contacts(h, t2)).list.find((c: Json) => c.ext === DMITRY.ext);
    assert.deepEqual([me.status, me.note], ["DoNotDisturb", "in a meeting"]);

    // Clearing the note; a form body works too.
    const form = await fetch(`${h.url}/api/presence`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${t1}` },
      body: new URLSearchParams({ status: "Available" }),
    });
    assert.equal(form.status, 204);
    assert.deepEqual(JSON.parse((await nextNamed(s2, "presence")).data), {
      ...want,
      status: "Available",
      note: "",
    });

    // Bad input never reaches the MX.
    const mark2 = h.sim.mark();
    for (
      const body of [
        {},
        { status: "LoggedOut" },
        { status: "available" },
        { status: "Away", note: "x".repeat(201) },
        { status: "Away", note: "line\nbreak" },
        { status: ["Away"] },
      ]
    ) {
      const bad = await putPresence(h, t1, body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.match(
        (await bad.json()).error,
        /^(bad presence (status|note)|note must be a string|status must be a string)$/,
      );
    }
    const unauth = await fetch(`${h.url}/api/presence`, { method: "PUT" });
    assert.equal(unauth.status, 401);
    await unauth.body?.cancel();
    // A later marker proves no presence command was sent for the bad ones.
    assert.equal((await putPresence(h, t1, { status: "Busy" })).status, 204);
    const sent = h.sim.received.filter((m) => m.seq >= mark2 && m.name === "presence");
    assert.deepEqual(sent.map((m) => /status="(\w+)"/.exec(m.xml)?.[1]), ["Busy"]);
    await s1.cancel();
    await s2.cancel();
  });
});

Deno.test("presence: the MX not confirming the change is 504", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    h.sim.setSilent(["presence"]);
    const res = await putPresence(h, t, { status: "Away" });
    assert.equal(res.status, 504);
    await res.body?.cancel();
  }, { config: { requestTimeoutMs: 300 } });
});

Deno.test("presence: calls change presence (simulator), both parties' streams see it", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const id = h.sim.incomingCall({ from: PETER.ext, to: DMITRY.ext });
    const evs = await sse.until("presence");
    assert.ok(evs.some((e) => e.event === "EstablishedEvent"), "presence follows the answer");
    const onCall = [JSON.parse(evs.at(-1)!.data)];
    onCall.push(JSON.parse((await nextNamed(sse, "presence")).data));
    assert.deepEqual(
      onCall.map((p) => [p.ext, p.status]).sort(),
      [[PETER.ext, "OnThePhone"], [DMITRY.ext, "OnThePhone"]],
    );
    h.sim.hangup(id, PETER.ext);
    const back = [JSON.parse((await nextNamed(sse, "presence")).data)];
    back.push(JSON.parse((await nextNamed(sse, "presence")).data));
    assert.deepEqual(
      back.map((p) => [p.ext, p.status]).sort(),
      [[PETER.ext, "LoggedOut"], [DMITRY.ext, "Available"]],
    );
    await sse.cancel();
  }, { sim: { presenceOnCalls: true } });
});

Deno.test("contacts: added, updated and removed contacts reach the stream; /api/contacts agrees", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    const nina = {
      login: "nina",
      password: "secret",
      jid: "43884853000900001",
      ext: "3100",
      firstName: "Nina",
      lastName: "New",
      presence: "LoggedOut",
    };
    const expectContact = async (action: string) => {
      const ev = JSON.parse((await nextNamed(sse, "contact")).data);
      assert.equal(ev.action, action);
      const list = (await contacts(h, t)).list;
      const listed = list.find((c: Json) => c.jid === nina.jid);
      if (action === "removed") assert.equal(listed, undefined);
      else assert.deepEqual(listed, ev.contact, "the stream's contact is the address book's");
      return ev.contact;
    };
    h.sim.addUser(nina);
    assert.deepEqual(await expectContact("added"), {
      jid: nina.jid,
      status: "LoggedOut",
      firstName: "Nina",
      lastName: "New",
      ext: "3100",
    });
    h.sim.updateUser(nina.jid, { cellPhone: "+15550123" });
    assert.equal((await expectContact("updated")).cellPhone, "+15550123");
    h.sim.removeUser(nina.jid);
    assert.equal((await expectContact("removed")).ext, "3100");
    await sse.cancel();
  });
});

Deno.test("snapshot: after a server restart, the old Last-Event-ID starts with calls and presence", async () => {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  let h = await startHarness({ kvPath, sim: { answerAfterMs: -1 } });
  try {
    const t = await flexLogin(h.url);
    const sse = await openEvents(h.url, t);
    h.sim.setPresence(PETER.ext, "Away");
    const seen = await nextNamed(sse, "presence");
    await sse.cancel();
    const port = Number(new URL(h.url).port);
    const sim = h.sim;
    await h.close({ keepSim: true });
    h = await startHarness({ kvPath, simulator: sim, port });
    assert.equal(new URL(h.url).port, String(port));

    // Changes while the client was away: a presence change and a call ringing now.
    const t2 = await flexLogin(h.url);
    h.sim.setPresence(PETER.ext, "Busy", "on site");
    const id = h.sim.incomingCall({ from: "+15550100", to: DMITRY.ext });
    await waitUntil(async () => {
      const res = await fetch(`${h.url}/api/calls`, { headers: { Authorization: `Bearer ${t2}` } });
      return (await res.json()).calls.length === 1;
    }, { what: "the new server saw the call" });
    await waitUntil(() => {
      const p = h.server.sessions.get("test")!.contactByExt(PETER.ext);
      return p?.presence === "Busy";
    }, { what: "the new server saw the presence change" });

    const resumed = await openEvents(h.url, t2, { lastEventId: seen.id });
    const first = await resumed.next();
    assert.equal(first.event, "snapshot");
    assert.notEqual(first.id!.split(".")[0], seen.id!.split(".")[0], "a new epoch");
    const snap = JSON.parse(first.data);
    assert.deepEqual(snap.calls.map((c: Json) => [c.callId, c.state, c.direction, c.peer]), [
      [id, "alerting", "incoming", "+15550100"],
    ]);
    const peter = snap.presence.find((p: Json) => p.ext === PETER.ext);
    assert.deepEqual(peter, { jid: PETER.jid, ext: PETER.ext, status: "Busy", note: "on site" });
    assert.equal(snap.presence.length, (await contacts(h, t2)).list.length);
    // Live events follow the snapshot.
    h.sim.hangup(id);
    const live = await resumed.next();
    assert.equal(live.event, "ConnectionClearedEvent");
    assert.ok(eventSeq(live.id) > eventSeq(first.id));
    await resumed.cancel();

    // The snapshot's own id resumes without another snapshot.
    const again = await openEvents(h.url, t2, { lastEventId: first.id });
    h.sim.setPresence(PETER.ext, "Available");
    const evs = await again.until("presence");
    assert.ok(!evs.some((e) => e.event === "snapshot"));
    await again.cancel();
  } finally {
    await h.close();
    await Deno.remove(kvPath).catch(() => {});
  }
});

Deno.test("snapshot: an unknown or malformed Last-Event-ID gets one; none gets live events only", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    for (const lastEventId of ["zzzz.5", "17", "garbage"]) {
      const sse = await openEvents(h.url, t, { lastEventId });
      const first = await sse.next();
      assert.equal(first.event, "snapshot", lastEventId);
      assert.deepEqual(JSON.parse(first.data).calls, []);
      await sse.cancel();
    }
    // The query form of the id (clients that cannot set headers).
    const q = await fetch(`${h.url}/api/events?access_token=${t}&lastEventId=nope.1`, {
      headers: { accept: "text/event-stream" },
    });
    const first = await new SseReader(q).next();
    assert.equal(first.event, "snapshot");
    // Without an id: no snapshot, the first thing is a live event.
    const fresh = await openEvents(h.url, t);
    h.sim.setPresence(PETER.ext, "Away");
    assert.equal((await fresh.next()).event, "presence");
    await fresh.cancel();
  });
});
