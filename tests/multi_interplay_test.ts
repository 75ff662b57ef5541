/**
 * The features of issues 12-14 across several instances on one KV (issue 15), each instance a
 * real `main.ts` process against the simulator in this process: the token's sealed MX
 * credential, presence, the call tracker, stream caps, the push lifecycle, key rotation, and a
 * supervisor restarting a child under open streams.
 */
import assert from "node:assert/strict";
import {
  basic,
  DMITRY,
  flexLogin as login,
  openEvents,
  type SseReader,
} from "./helpers/harness.ts";
import {
  contactsStatus,
  type Instance,
  monitoring,
  mxflexArgs,
  startInstance,
  startMxflex,
  stopAll,
  waitReady,
  withInstancesEnv as withEnv,
  writeInstanceConfig,
} from "./helpers/instances.ts";
import { MockApns, mockEndpoints, MockFcm } from "./helpers/mock_push.ts";
import { waitUntil } from "./helpers/wait.ts";
import { claimsOf, kidOf } from "./helpers/kv.ts";
import { freePort } from "./helpers/free_port.ts";
import type { MxSimulator } from "../lib/mxsim/mod.ts";

type Json = Record<string, unknown>;

const FIXTURES = new URL("./fixtures/push/", import.meta.url).pathname;
const FCM_TOKEN = "fcm-dmitry:" + "d".repeat(60);
const CALLER = "+15550100";
const MAXIM_EXT = "3099";

/** Reads events until one named `name` whose data satisfies `pred`; returns it. */
async function untilData(
  s: SseReader,
  name: string,
  pred: (data: Json) => boolean,
): Promise<{ id?: string; event: string; data: Json }> {
  for (;;) {
    const ev = await s.next();
    if (ev.event !== name) continue;
    const data = JSON.parse(ev.data);
    if (pred(data)) return { ...ev, data };
  }
}

function get(url: string, token: string, path: string, init: RequestInit = {}) {
  return fetch(`${url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...init.headers },
  });
}

Deno.test("interplay: A's token opens B's user session; presence set on A reaches B's stream; B lists the call; caps per instance; logout on B wipes the credential for A", () =>
  withEnv(async ({ sim, dir, db }) => {
    const config = await writeInstanceConfig(dir, sim.port, {
      rateLimits: { streams: { perToken: 1, perUser: 5 } },
    });
    const all: Instance[] = [];
    try {
      all.push(await startInstance({ config, db }), await startInstance({ config, db }));
      const [a, b] = all;
      sim.addCallLog(DMITRY.ext, {
        callingPartyNo: "3044",
        originalCalledPartyNo: DMITRY.ext,
        disconnectTimestamp: 1501101500,
      });
      const bytes = new Uint8Array(20_000).map((_, i) => i % 251);
      const mailId = sim.addVoicemail(DMITRY.ext, { from: "3099", duration: 3, content: bytes });
      const token = await login(a.url);

      // The credential is sealed in the shared KV, its key is in the token: B opens the session.
      const log = await get(b.url, token, "/api/calllog");
      assert.equal(log.status, 200);
      assert.deepEqual((await log.json()).calllog.map((r: Json) => r.callingPartyNo), ["3044"]);
      const list = await get(b.url, token, "/api/voicemail");
      assert.deepEqual((await list.json()).voicemails.map((v: Json) => v.id), [mailId]);
      const play = await fetch(`${b.url}/api/voicemail/${mailId}?access_token=${token}`);
      assert.equal(play.status, 200);
      assert.deepEqual(new Uint8Array(await play.arrayBuffer()), bytes);

      // Stream caps count this instance's streams (README: `…streams`, "on one instance").
      await monitoring(sim, DMITRY.ext, 2);
      const onB = await openEvents(b.url, token);
      const over = await fetch(`${b.url}/api/events?access_token=${token}`, {
        headers: { accept: "text/event-stream" },
      });
      assert.equal(over.status, 429);
      await over.body?.cancel();
      const onA = await openEvents(a.url, token);

      // Presence set through A's user session is announced by the MX to B's server session.
      const put = await get(a.url, token, "/api/presence", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ status: "Away", note: "lunch" }),
      });
      assert.equal(put.status, 204);
      const seen = await untilData(onB, "presence", (d) => d.status === "Away");
      assert.deepEqual(seen.data, {
        jid: DMITRY.jid,
        ext: DMITRY.ext,
        status: "Away",
        note: "lunch",
      });

      // A call for the token's user: B's own tracker has it.
      const callId = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
      await untilData(onB, "DeliveredEvent", (d) => d.callId === callId);
      const calls = await (await get(b.url, token, "/api/calls")).json();
      assert.deepEqual(
        calls.calls.map((c: Json) => [c.callId, c.state, c.direction, c.peer]),
        [[callId, "alerting", "incoming", CALLER]],
      );

      // Logout on B wipes the sealed credential at once, so A can open no user session with
      // the token, whether it has heard of the logout yet or not.
      const out = await get(b.url, token, "/api/logout");
      assert.equal(out.status, 204);
      const kv = await Deno.openKv(db);
      try {
        const sealed = await kv.get(["flex", "credential", claimsOf(token).jti as string]);
        assert.equal(sealed.value, null);
      } finally {
        kv.close();
      }
      const after = await get(a.url, token, "/api/calllog");
      assert.equal(after.status, 401);
      await after.body?.cancel();
      assert.ok(await onA.ended());
      assert.ok(await onB.ended());
    } finally {
      await stopAll(all);
    }
  }));

/** What {@link withPushInstances} gives a test. */
interface PushWorld {
  sim: MxSimulator;
  fcm: MockFcm;
  /** A and B, both monitoring Dmitry, whose phone registered on A. */
  all: Instance[];
}

/**
 * Two instances with FCM against the mock (calls ring until the test acts), Dmitry's phone
 * registered on A and monitored by both; everything stopped afterwards.
 */
function withPushInstances(fn: (w: PushWorld) => Promise<void>): Promise<void> {
  return withEnv(async ({ sim, dir, db }) => {
    const apns = MockApns.start();
    const fcm = MockFcm.start();
    const all: Instance[] = [];
    try {
      const config = await writeInstanceConfig(dir, sim.port, {
        fcm: { "app-name": `${FIXTURES}service-account.json` },
        pushEndpoints: mockEndpoints(apns, fcm),
      });
      all.push(await startInstance({ config, db }), await startInstance({ config, db }));
      const res = await deviceToken(all[0].url, "POST");
      assert.equal(res.status, 204);
      // B learns of the registration from the push feed and monitors Dmitry too.
      await monitoring(sim, DMITRY.ext, 2);
      await fn({ sim, fcm, all });
    } finally {
      await stopAll(all);
      await apns.close();
      await fcm.close();
    }
  }, { answerAfterMs: -1 });
}

/** Registers (POST) or removes (DELETE) Dmitry's phone through `url`'s Proxy API. */
async function deviceToken(url: string, method: string): Promise<Response> {
  const res = await fetch(`${url}/mx/test/token/fcm/app-name`, {
    method,
    headers: { authorization: basic(), "content-type": "application/json" },
    body: JSON.stringify({ token: FCM_TOKEN }),
  });
  await res.body?.cancel();
  return res;
}

/** The phone's pushes so far as `<callId> <event>[ <reason>]`. */
function phoneSaw(fcm: MockFcm): string[] {
  return fcm.requests.map((r) => JSON.parse(r.body).message)
    .filter((m) => m.token === FCM_TOKEN)
    .map((m) => `${m.data.callId} ${m.data.event}${m.data.reason ? ` ${m.data.reason}` : ""}`);
}

Deno.test("interplay: two instances that both see every call push each follow-up once (answered, answered_elsewhere, cancelled, missed)", () =>
  withPushInstances(async ({ sim, fcm, all }) => {
    const token = await login(all[0].url);
    const streams = await Promise.all(all.map((i) => openEvents(i.url, token)));
    const expected: string[] = [];
    const ring = async () => {
      const id = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
      expected.push(`${id} incoming`);
      await waitUntil(() => phoneSaw(fcm).length >= expected.length, { what: `${id} incoming` });
      return id;
    };
    const outcomes: [string, (id: number) => boolean][] = [
      ["answered", (id) => sim.answer(id)],
      ["answered_elsewhere picked_up", (id) => sim.pickup(id, MAXIM_EXT)],
      ["cancelled caller_hung_up", (id) => sim.hangup(id, CALLER)],
      ["missed no_answer", (id) => sim.sendToVoicemail(id)],
    ];
    for (const [outcome, act] of outcomes) {
      const id = await ring();
      assert.ok(act(id));
      expected.push(`${id} ${outcome}`);
      await waitUntil(() => phoneSaw(fcm).length >= expected.length, {
        what: `${id} ${outcome}`,
      });
    }
    // A last call as the marker: each instance's stream seeing it means that instance has
    // handled every earlier event (one MX session, in order; the push listener runs first).
    const last = await ring();
    for (const s of streams) await untilData(s, "DeliveredEvent", (d) => d.callId === last);
    // A graceful stop waits for the pushes each dispatcher still has in flight.
    await stopAll(all);
    assert.deepEqual(phoneSaw(fcm), expected);
  }));

/** The instance whose metrics count the incoming push (`push_sent_total`), if any. */
async function incomingSender(all: Instance[]): Promise<Instance | undefined> {
  for (const i of all) {
    const text = await (await fetch(`${i.url}/metrics`)).text();
    if (/push_sent_total\{app="fcm:app-name",event="incoming"\} 1\b/.test(text)) return i;
  }
  return undefined;
}

Deno.test("interplay: the instance that pushed a ringing call dies; the other, which saw it ring, sends the follow-up", () =>
  withPushInstances(async ({ sim, fcm, all }) => {
    const id = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
    await waitUntil(() => phoneSaw(fcm).length === 1, { what: "the incoming push" });
    let sender: Instance | undefined;
    await waitUntil(async () => (sender = await incomingSender(all)) !== undefined, {
      what: "the instance that sent the incoming push",
    });
    sender!.kill("SIGKILL");
    await sender!.status;
    await monitoring(sim, DMITRY.ext, 1); // its MX session is gone
    assert.ok(sim.answer(id));
    await waitUntil(() => phoneSaw(fcm).length === 2, { what: "the answered push" });
    const survivor = all.find((i) => i !== sender)!;
    await survivor.stop();
    assert.deepEqual(phoneSaw(fcm), [`${id} incoming`, `${id} answered`]);
  }));

Deno.test("interplay: keys rotate under an open stream: it keeps its events, its token opens streams on both", () =>
  withEnv(async ({ sim, dir, db }) => {
    // A new key every second.
    const config = await writeInstanceConfig(dir, sim.port, { tokenKeyRotation: 1 });
    const all: Instance[] = [];
    try {
      all.push(await startInstance({ config, db }), await startInstance({ config, db }));
      const [a, b] = all;
      const old = await login(a.url);
      const onB = await openEvents(b.url, old);
      await monitoring(sim, DMITRY.ext, 2);
      let fresh = old;
      await waitUntil(async () => kidOf(fresh = await login(b.url)) !== kidOf(old), {
        what: "a login signed with a rotated key",
        intervalMs: 200,
      });
      const id = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
      await untilData(onB, "DeliveredEvent", (d) => d.callId === id);
      await onB.cancel();
      // The old token still opens streams on both, and the new one is accepted on both.
      for (const i of all) {
        const s = await openEvents(i.url, old);
        const next = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
        await untilData(s, "DeliveredEvent", (d) => d.callId === next);
        await s.cancel();
        assert.equal(await contactsStatus(i.url, fresh), 200);
      }
    } finally {
      await stopAll(all);
    }
  }, { answerAfterMs: -1 }));

Deno.test("interplay: -instances 2: a child killed under open streams; its clients resume on the sibling with a snapshot (the restarted child joins the port only when ready), the others stay", () =>
  withEnv(async ({ sim, dir, db }) => {
    const port = freePort();
    const config = await writeInstanceConfig(dir, sim.port, {
      opsHost: "127.0.0.1:0",
      rateLimits: { streams: { perToken: 100, perUser: 100 } },
    });
    const url = `http://127.0.0.1:${port}`;
    const sup = startMxflex(
      mxflexArgs({ config, db, host: `127.0.0.1:${port}`, instances: 2 }),
    );
    const streams: { s: SseReader; lastId: string }[] = [];
    const extra: SseReader[] = [];
    try {
      const started = await sup.waitFor(/instance (\d) started \(pid (\d+)\)/g, { count: 2 });
      const ops = await sup.waitFor(/ops endpoints on (http\S+?)\/? instance=(\d)/g, { count: 2 });
      for (const m of ops) await waitReady(m[1], () => sup.log);
      const token = await login(url);
      await monitoring(sim, DMITRY.ext, 2);
      // Streams through the shared port (the kernel picks the child) until both hold some; a
      // call's event tells each stream's epoch, i.e. its process.
      const ringAll = async () => {
        const id = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
        for (const st of streams) {
          st.lastId = (await untilData(st.s, "DeliveredEvent", (d) => d.callId === id)).id!;
        }
        return id;
      };
      const epochs = () => new Set(streams.map((st) => st.lastId.split(".")[0]));
      for (let round = 0; round < 10 && epochs().size < 2; round++) {
        for (let i = 0; i < 3; i++) streams.push({ s: await openEvents(url, token), lastId: "" });
        await ringAll();
      }
      assert.equal(epochs().size, 2, "streams on both children");

      // Kill child 1: its streams break, the other child's go on. The MX answers nothing for
      // now, so the restarted child stays off the shared port (it joins once its MX session is
      // up): the clients that resume meanwhile all reach the other child.
      const pid1 = Number(started.find((m) => m[1] === "1")![2]);
      const mark = sim.mark();
      sim.setDelay(60_000);
      Deno.kill(pid1, "SIGKILL");
      await sup.waitFor(/instance 1 \(pid \d+\) exited \(signal SIGKILL\); restarting/);
      const ringing = sim.calls().map((c) => c.id);
      const next = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
      const broken: typeof streams = [];
      for (const st of streams) {
        try {
          await untilData(st.s, "DeliveredEvent", (d) => d.callId === next);
        } catch (err) {
          assert.match(String(err), /error reading a body|SSE stream ended/);
          broken.push(st);
        }
      }
      assert.ok(broken.length > 0 && broken.length < streams.length, `${broken.length} broken`);
      const dead = new Set(broken.map((st) => st.lastId.split(".")[0]));
      assert.equal(dead.size, 1, "one child's streams broke");

      // Child 1 is back and logging in (the simulator has its login request), not ready yet.
      await sup.waitFor(/instance 1 started \(pid (\d+)\)/g, { count: 2 });
      await waitUntil(
        () => sim.received.some((m) => m.seq >= mark && m.name === "loginRequest"),
        { what: "the restarted child logging in to the MX" },
      );
      // The clients reconnect with their Last-Event-ID on the shared port (some twice): each
      // snapshot comes from the sibling, which knows the ringing calls and everyone's presence
      // (the restarted child would know neither); live events follow.
      for (let i = 0; i < Math.max(8, broken.length); i++) {
        const st = broken[i % broken.length];
        const s = await openEvents(url, token, { lastEventId: st.lastId });
        const snap = await s.next();
        assert.equal(snap.event, "snapshot");
        assert.ok(!dead.has(snap.id!.split(".")[0]), "a live process's epoch");
        const data = JSON.parse(snap.data);
        const listed = data.calls.map((c: Json) => c.callId);
        assert.deepEqual(listed.sort(), [...ringing, next].sort(), `reconnect ${i}`);
        assert.ok(data.presence.length > 0, `reconnect ${i}: everyone's presence`);
        if (i < broken.length) st.s = s;
        else extra.push(s);
      }
      const after = await ringAll();
      assert.ok(sim.hangup(after));
      sim.setDelay(0);
      await sup.waitFor(/listening on http\S+ instance=1/g, { count: 2 });
      const st = await sup.stop();
      assert.equal(st.code, 0, sup.log);
    } finally {
      sim.setDelay(0); // so the children's logouts are answered
      for (const s of [...streams.map((st) => st.s), ...extra]) await s.cancel();
      await sup.stop();
    }
  }, { answerAfterMs: -1 }));

Deno.test("interplay: a device token registered on A and deleted on B: both instances stop monitoring; registered again on B, both monitor", () =>
  withPushInstances(async ({ sim, fcm, all }) => {
    assert.equal((await deviceToken(all[1].url, "DELETE")).status, 204);
    await monitoring(sim, DMITRY.ext, 0);
    assert.equal((await deviceToken(all[1].url, "POST")).status, 204);
    await monitoring(sim, DMITRY.ext, 2);
    const id = sim.incomingCall({ from: CALLER, to: DMITRY.ext });
    await waitUntil(() => phoneSaw(fcm).length === 1, { what: "the incoming push" });
    await stopAll(all); // waits for the pushes in flight: a second one would be in by now
    assert.deepEqual(phoneSaw(fcm), [`${id} incoming`]);
  }));
