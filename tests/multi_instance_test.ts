/**
 * Several MXFlex processes on one Deno KV file (issue 15), each a real `main.ts` process
 * against the simulator in this process: tokens issued by one are accepted by the others,
 * a logout anywhere ends the token everywhere, every instance receives the calls of every
 * live token, tokens survive restarts and key rotation, pushes stay single, and a supervisor
 * (`-instances N`) runs instances on one shared port, restarting one that dies.
 */
import assert from "node:assert/strict";
import { basic, DMITRY, flexLogin as login, openEvents } from "./helpers/harness.ts";
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
import { freePort } from "./helpers/free_port.ts";
import { MOCK_TLS_CERT_PATH, MockApns, MockFcm } from "./helpers/mock_push.ts";
import { waitUntil } from "./helpers/wait.ts";
import { kidOf } from "./helpers/kv.ts";

const FIXTURES = new URL("./fixtures/push/", import.meta.url).pathname;
const APNS_TOKEN = "a1b2c3d4".repeat(8);

Deno.test("instances: three processes on one KV file, different ports: tokens, events, logout and login limits are shared", () =>
  withEnv(async ({ sim, dir, db }) => {
    const config = await writeInstanceConfig(dir, sim.port, {
      rateLimits: { loginAddress: { failures: 3, windowSeconds: 3600, blockSeconds: 900 } },
    });
    const all: Instance[] = [];
    try {
      for (let i = 0; i < 3; i++) all.push(await startInstance({ config, db }));
      const [a, b, c] = all;
      const token = await login(a.url);
      // Issued on A, accepted on B and C (the key and the live token are in KV).
      assert.equal(await contactsStatus(b.url, token), 200);
      assert.equal(await contactsStatus(c.url, token), 200);
      // Every instance monitors the extension of every live token: three server sessions.
      await monitoring(sim, DMITRY.ext, 3);
      const onA = await openEvents(a.url, token);
      const onC = await openEvents(c.url, token);
      const callId = sim.incomingCall({ from: "3044", to: DMITRY.ext });
      for (const s of [onA, onC]) {
        const ev = (await s.until("DeliveredEvent")).at(-1)!;
        assert.equal(JSON.parse(ev.data).callId, callId);
      }
      // Logout on B: A refuses the token and ends its stream; so does C.
      const out = await fetch(`${b.url}/api/logout`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(out.status, 204);
      const t0 = performance.now();
      await waitUntil(async () => (await contactsStatus(a.url, token)) === 401, {
        what: "A refusing the token logged out on B",
      });
      console.log(`  logout on B refused on A after ${Math.round(performance.now() - t0)} ms`);
      assert.ok(await onA.ended());
      assert.ok(await onC.ended());
      assert.equal(await contactsStatus(c.url, token), 401);
      // No token left: every instance stops its monitor.
      await monitoring(sim, DMITRY.ext, 0);

      // Login limits count across instances: three failures spread over A, B and C block
      // the fourth attempt wherever it lands (3 per instance would let it through).
      const attempt = async (url: string, password: string) => {
        const res = await fetch(`${url}/api/login`, {
          method: "POST",
          body: new URLSearchParams({ login: "maxim", password }),
        });
        await res.body?.cancel();
        return res.status;
      };
      assert.deepEqual(
        [await attempt(a.url, "x"), await attempt(b.url, "x"), await attempt(c.url, "x")],
        [401, 401, 401],
      );
      assert.equal(await attempt(a.url, "secret"), 429);
      assert.equal(await attempt(b.url, "secret"), 429);
    } finally {
      await stopAll(all);
    }
  }));

Deno.test("instances: restart all, with key rotation: tokens from before stay valid and monitored", () =>
  withEnv(async ({ sim, dir, db }) => {
    // A new key every second: the second login below is signed with a newer key.
    const config = await writeInstanceConfig(dir, sim.port, { tokenKeyRotation: 1 });
    let all: Instance[] = [];
    try {
      all = [await startInstance({ config, db }), await startInstance({ config, db })];
      const first = await login(all[0].url);
      let second = first;
      await waitUntil(async () => kidOf(second = await login(all[1].url)) !== kidOf(first), {
        what: "a login signed with a rotated key",
        intervalMs: 200,
      });
      for (const inst of all) {
        assert.equal(await contactsStatus(inst.url, first), 200);
        assert.equal(await contactsStatus(inst.url, second), 200);
      }
      await stopAll(all);
      await monitoring(sim, DMITRY.ext, 0);
      all = [await startInstance({ config, db }), await startInstance({ config, db })];
      // Still valid on both, and monitored again without any new login.
      for (const inst of all) {
        assert.equal(await contactsStatus(inst.url, first), 200);
        assert.equal(await contactsStatus(inst.url, second), 200);
      }
      await monitoring(sim, DMITRY.ext, 2);
      const stream = await openEvents(all[1].url, first);
      const callId = sim.incomingCall({ from: "3044", to: DMITRY.ext });
      const ev = (await stream.until("DeliveredEvent")).at(-1)!;
      assert.equal(JSON.parse(ev.data).callId, callId);
      await stream.cancel();
    } finally {
      await stopAll(all);
    }
  }));

Deno.test("instances: kill A with a live stream and a push token: the stream resumes on B with a snapshot, then the next call; pushed once", () =>
  withEnv(async ({ sim, dir, db }) => {
    const apns = MockApns.start();
    const fcm = MockFcm.start();
    const config = await writeInstanceConfig(dir, sim.port, {
      apns: { [`${FIXTURES}apns-both.p12`]: "mxflex-test" },
      pushEndpoints: {
        apnsProduction: apns.url,
        apnsSandbox: apns.url,
        fcm: fcm.url,
        fcmOauth: fcm.oauthUrl,
        caFile: MOCK_TLS_CERT_PATH,
      },
    });
    const all: Instance[] = [];
    try {
      all.push(await startInstance({ config, db }), await startInstance({ config, db }));
      const [a, b] = all;
      const res = await fetch(`${a.url}/mx/test/token/apns/com.example.mxflex`, {
        method: "POST",
        headers: { authorization: basic(), "content-type": "application/json" },
        body: JSON.stringify({ token: APNS_TOKEN }),
      });
      assert.equal(res.status, 204);
      // B learns of the registration from the push feed and monitors the user too.
      await monitoring(sim, DMITRY.ext, 2);
      const incoming = () =>
        apns.requestsFor(APNS_TOKEN).map((r) => JSON.parse(r.body))
          .filter((p) => p.event === "incoming").map((p) => p.callId);
      // A Flex client with a live stream on A.
      const token = await login(a.url);
      const onA = await openEvents(a.url, token);
      const first = sim.incomingCall({ from: "3044", to: DMITRY.ext });
      const seen = await onA.until("DeliveredEvent");
      const lastId = seen.at(-1)!.id!;
      await waitUntil(() => incoming().length >= 1, { what: "first push" });
      // Both instances saw the call; the KV claim lets one push. Now A dies.
      a.kill("SIGKILL");
      await a.status;
      // The connection is reset, not closed: the read fails.
      await assert.rejects(onA.ended(), /error reading a body from connection/);
      await monitoring(sim, DMITRY.ext, 1); // A's MX session is gone
      // The client reconnects to B with its token and Last-Event-ID: B cannot replay A's ids,
      // so it sends the snapshot (the current calls, presence), then live events.
      const onB = await openEvents(b.url, token, { lastEventId: lastId });
      const snap = await onB.next();
      assert.equal(snap.event, "snapshot");
      assert.notEqual(snap.id!.split(".")[0], lastId.split(".")[0], "B's own id epoch");
      assert.ok(JSON.parse(snap.data).calls.some((c: { callId: number }) => c.callId === first));
      const next = sim.incomingCall({ from: "3099", to: DMITRY.ext });
      const after = (await onB.until("DeliveredEvent")).at(-1)!;
      assert.equal(JSON.parse(after.data).callId, next);
      // The next call is pushed by B alone, and it is the second incoming push of all: the
      // first call was pushed once although both instances saw it.
      await waitUntil(() => incoming().length >= 2, { what: "second push" });
      assert.deepEqual(incoming(), [first, next]);
      const sent = apns.requestsFor(APNS_TOKEN).map((r) => {
        const p = JSON.parse(r.body);
        return `${p.callId} ${p.event}`;
      });
      assert.equal(new Set(sent).size, sent.length, `one push per call and event: ${sent}`);
      await onB.cancel();
      await waitReady(b.url);
    } finally {
      await stopAll(all);
      await apns.close();
      await fcm.close();
    }
  }));

Deno.test("instances: -instances 3 on one shared port; one killed, the others serve, it is restarted", () =>
  withEnv(async ({ sim, dir, db }) => {
    const port = freePort();
    const config = await writeInstanceConfig(dir, sim.port, { opsHost: "127.0.0.1:0" });
    const url = `http://127.0.0.1:${port}`;
    const sup = startMxflex(
      mxflexArgs({ config, db, host: `127.0.0.1:${port}`, instances: 3 }),
    );
    try {
      const started = await sup.waitFor(/instance (\d) started \(pid (\d+)\)/g, { count: 3 });
      const ops = await sup.waitFor(/ops endpoints on (http\S+?)\/? instance=(\d)/g, { count: 3 });
      const opsOf = new Map(ops.map((m) => [Number(m[2]), m[1]]));
      await sup.waitFor(/listening on http\S+ instance=\d/g, { count: 3 });
      for (const u of opsOf.values()) await waitReady(u, () => sup.log);
      // Each instance answers /readyz and /metrics for itself on its ops port.
      for (const [k, u] of opsOf) {
        const r = await (await fetch(`${u}/readyz`)).json();
        assert.match(r.instance, new RegExp(`-${k}$`));
        const m = await (await fetch(`${u}/metrics`)).text();
        assert.ok(m.includes(`mxflex_instance_info{instance_id="${r.instance}"} 1`), m);
        const other = await fetch(`${u}/api/contacts`);
        await other.body?.cancel();
        assert.equal(other.status, 404); // ops paths only
      }
      const token = await login(url);
      // Every instance knows the token (login on one of them, the feed to the others).
      for (const u of opsOf.values()) {
        await waitUntil(
          async () => /flex_live_tokens 1\n/.test(await (await fetch(`${u}/metrics`)).text()),
          {
            what: `${u} knowing the live token`,
          },
        );
      }
      // New connections spread over the three: each instance serves the token at some point.
      const served = async (u: string) => {
        const text = await (await fetch(`${u}/metrics`)).text();
        return /http_requests_total\{route="\/api\/contacts",method="GET",status="200"\} [1-9]/
          .test(text);
      };
      await waitUntil(async () => {
        assert.equal(await contactsStatus(url, token), 200);
        return (await Promise.all([...opsOf.values()].map(served))).every(Boolean);
      }, { what: "every instance serving the token", intervalMs: 0 });

      // Kill instance 2: the others keep serving, the supervisor starts it again.
      const pid2 = Number(started.find((m) => m[1] === "2")![2]);
      Deno.kill(pid2, "SIGKILL");
      await sup.waitFor(/instance 2 \(pid \d+\) exited \(signal SIGKILL\); restarting/);
      for (let i = 0; i < 10; i++) assert.equal(await contactsStatus(url, token), 200);
      await sup.waitFor(/instance 2 started \(pid (\d+)\)/g, { count: 2 });
      await sup.waitFor(/listening on http\S+ instance=2/g, { count: 2 });

      // SIGTERM: every instance stops, the supervisor exits 0.
      const st = await sup.stop();
      assert.equal(st.code, 0, sup.log);
      assert.match(sup.log, /all 3 instances stopped/);
      await waitUntil(() => sim.sessionCount() === 0, { what: "every MX session closed" });
    } finally {
      await sup.stop();
    }
  }));
