/**
 * deploy.ts (Deno Deploy entry): configuration from environment variables, lazy start on
 * the first request, JSON logs, and the Flex API end to end against the MX simulator over
 * TLS, served through `Deno.serve` on 127.0.0.1 exactly as Deploy calls `fetch`.
 */
import assert from "node:assert/strict";
import { MxSimulator } from "../lib/mxsim/mod.ts";
import { createLogger } from "../lib/log.ts";
import { ConfigError } from "../lib/config.ts";
import deployEntry, { configFromEnv, createDeployHandler, type EnvSource } from "../deploy.ts";
import { CERT, DMITRY, KEY, SseReader } from "./helpers/harness.ts";
import { waitUntil } from "./helpers/wait.ts";

interface Running {
  url: string;
  logs: string[];
  close(): Promise<void>;
}

/** Starts the Deploy handler from `env(simPort)` behind Deno.serve on 127.0.0.1:0. */
async function withDeploy(
  env: (simPort: number) => EnvSource,
  fn: (r: Running, sim: MxSimulator) => Promise<void>,
): Promise<void> {
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  const logs: string[] = [];
  const handler = createDeployHandler(env(sim.port), {
    log: createLogger({ format: "json", sink: (l) => logs.push(l) }),
    backoff: { initialMs: 50, maxMs: 300, jitter: 0.1 },
  });
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler.fetch);
  try {
    await fn({
      url: `http://127.0.0.1:${http.addr.port}`,
      logs,
      close: () => handler.close(),
    }, sim);
  } finally {
    await handler.close();
    await http.shutdown();
    await sim.close();
  }
}

async function login(url: string): Promise<string> {
  const res = await fetch(`${url}/api/login`, {
    method: "POST",
    body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, "Bearer");
  assert.equal(typeof body.access_token, "string");
  return body.access_token;
}

async function healthzLoginContacts(url: string): Promise<void> {
  const h = await fetch(`${url}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: "ok" });
  const token = await login(url);
  const res = await fetch(`${url}/api/contacts`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(Array.isArray(body.contacts) && body.contacts.length > 0);
  assert.ok(body.contacts.some((c: { ext: string }) => c.ext === DMITRY.ext));
}

Deno.test("deploy: MXFLEX_CONFIG (seed-1 YAML) + MXFLEX_DB: healthz, login, contacts", async () => {
  await withDeploy(
    (port) => ({
      MXFLEX_CONFIG: `host: "localhost:8080"\nmx: {\n    addr: "127.0.0.1:${port}",\n` +
        `    login: "server",\n    password: "password"\n}\n`,
      MXFLEX_DB: ":memory:",
    }),
    async (r) => {
      await healthzLoginContacts(r.url);
      // JSON log lines, one of them the start-up line naming the MX.
      assert.ok(r.logs.length > 0);
      const parsed = r.logs.map((l) => JSON.parse(l));
      for (const p of parsed) assert.equal(typeof p.level, "string");
      assert.ok(parsed.some((p) => /Deno Deploy/.test(p.msg) && p.flexMx === "default"));
    },
  );
});

Deno.test("deploy: MXFLEX_CONFIG as seed-2 JSON with several MX; /mx/<name> works", async () => {
  await withDeploy(
    (port) => ({
      MXFLEX_CONFIG: JSON.stringify({
        mx: { dev: { addr: `127.0.0.1:${port}`, login: "server", password: "password" } },
      }),
      MXFLEX_DB: ":memory:",
    }),
    async (r) => {
      await healthzLoginContacts(r.url);
      const res = await fetch(`${r.url}/mx/dev/addressbook`, {
        headers: { authorization: "Basic " + btoa(`${DMITRY.login}:${DMITRY.password}`) },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    },
  );
});

Deno.test("deploy: env-only config (no MXFLEX_CONFIG) and overrides win over MXFLEX_CONFIG", async () => {
  await withDeploy(
    (port) => ({
      MXFLEX_MX_ADDR: `127.0.0.1:${port}`,
      MXFLEX_MX_LOGIN: "server",
      MXFLEX_MX_PASSWORD: "password",
      MXFLEX_DB: ":memory:",
    }),
    (r) => healthzLoginContacts(r.url),
  );
  await withDeploy(
    (port) => ({
      // Wrong address and password in the inline config; the single-key variables fix them.
      MXFLEX_CONFIG: "mx: {addr: 192.0.2.1, login: server, password: wrong}",
      MXFLEX_MX_ADDR: `127.0.0.1:${port}`,
      MXFLEX_MX_PASSWORD: "password",
      MXFLEX_TOKEN_TTL: "600",
      MXFLEX_DB: ":memory:",
    }),
    async (r) => {
      const res = await fetch(`${r.url}/api/login`, {
        method: "POST",
        body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).expires_in, 600);
    },
  );
});

Deno.test("deploy: configFromEnv names the variable or key at fault", async () => {
  await assert.rejects(
    configFromEnv({}),
    (e) => e instanceof ConfigError && /MXFLEX_CONFIG/.test(e.message),
  );
  await assert.rejects(
    configFromEnv({ MXFLEX_MX_ADDR: "10.0.0.1" }),
    (e) => e instanceof ConfigError && /MXFLEX_MX_LOGIN/.test(e.message),
  );
  await assert.rejects(
    configFromEnv({ MXFLEX_CONFIG: "host: x\nmx: {login: a}" }),
    (e) => e instanceof ConfigError && /^MXFLEX_CONFIG: mx\.addr is required/.test(e.message),
  );
  await assert.rejects(
    configFromEnv({ MXFLEX_CONFIG: "{ not: [json" }),
    (e) => e instanceof ConfigError && /^MXFLEX_CONFIG: /.test(e.message),
  );
  await assert.rejects(
    configFromEnv({ MXFLEX_MX_ADDR: "10.0.0.1", MXFLEX_MX_LOGIN: "s", MXFLEX_TOKEN_TTL: "x" }),
    (e) => e instanceof ConfigError && /MXFLEX_TOKEN_TTL/.test(e.message),
  );
  const cfg = await configFromEnv((k) => ({ MXFLEX_MX_ADDR: "10.0.0.1", MXFLEX_MX_LOGIN: "s" })[k]);
  assert.equal(cfg.mx[0].hostname, "10.0.0.1");
  assert.equal(cfg.mx[0].port, 7778);
  assert.equal(cfg.mx[0].password, "");
  assert.equal(cfg.db, "");
});

Deno.test("deploy: a configuration error answers 500 JSON (no details) and logs once", async () => {
  const logs: string[] = [];
  let opened = 0;
  const h = createDeployHandler({ MXFLEX_CONFIG: "mx: {}" }, {
    log: createLogger({ format: "json", sink: (l) => logs.push(l) }),
    openKv: () => {
      opened++;
      return Deno.openKv(":memory:");
    },
  });
  for (let i = 0; i < 2; i++) {
    const res = await h.fetch(new Request("http://deploy.test/healthz"));
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: "server configuration error" });
  }
  assert.equal(opened, 0);
  assert.equal(logs.length, 1);
  const line = JSON.parse(logs[0]);
  assert.equal(line.level, "error");
  assert.match(line.msg, /MXFLEX_CONFIG: mx must name at least one MX/);
  await h.close();
});

Deno.test("deploy: the default export has the Deno.serve shape", () => {
  assert.equal(typeof deployEntry.fetch, "function");
});

/** Two Deploy handlers (isolates) on one KV file against one simulator, each behind Deno.serve. */
async function withIsolates(
  fn: (a: string, b: string, sim: MxSimulator) => Promise<void>,
  simOpts: { answerAfterMs?: number } = {},
): Promise<void> {
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY }, ...simOpts });
  const dir = await Deno.makeTempDir();
  // The project's KV, seen by two isolates: two handles on one database.
  const env = {
    MXFLEX_MX_ADDR: `127.0.0.1:${sim.port}`,
    MXFLEX_MX_LOGIN: "server",
    MXFLEX_MX_PASSWORD: "password",
    MXFLEX_DB: `${dir}/kv.db`,
  };
  const isolates = [0, 1].map(() =>
    createDeployHandler(env, {
      log: createLogger({ sink: () => {} }),
      backoff: { initialMs: 50, maxMs: 300, jitter: 0.1 },
    })
  );
  const servers = isolates.map((h) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, h.fetch)
  );
  const [a, b] = servers.map((s) => `http://127.0.0.1:${s.addr.port}`);
  try {
    await fn(a, b, sim);
  } finally {
    for (const h of isolates) await h.close();
    for (const s of servers) await s.shutdown();
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function status(url: string, token: string, path: string): Promise<number> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return res.status;
}

Deno.test("deploy: two isolates on one KV: a token from one works on the other, a logout ends it on both", async () => {
  await withIsolates(async (a, b) => {
    const token = await login(a);
    assert.equal(await status(b, token, "/api/contacts"), 200);
    const out = await fetch(`${b}/api/logout`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(out.status, 204);
    // One process here; on Deploy the isolates share the project KV, where watch works too.
    await waitUntil(async () => (await status(a, token, "/api/contacts")) === 401, {
      what: "A refusing the token",
    });
  });
});

Deno.test("deploy: two isolates on one KV: history, voicemail, presence, current calls and events with the other's token", async () => {
  await withIsolates(async (a, b, sim) => {
    sim.addCallLog(DMITRY.ext, { callingPartyNo: "3044", originalCalledPartyNo: DMITRY.ext });
    const mailId = sim.addVoicemail(DMITRY.ext, { from: "3099", content: new Uint8Array(64) });
    const token = await login(a);
    const auth = { authorization: `Bearer ${token}` };
    const log = await (await fetch(`${b}/api/calllog`, { headers: auth })).json();
    assert.deepEqual(log.calllog.map((r: { callingPartyNo: string }) => r.callingPartyNo), [
      "3044",
    ]);
    const vm = await (await fetch(`${b}/api/voicemail`, { headers: auth })).json();
    assert.deepEqual(vm.voicemails.map((v: { id: string }) => v.id), [mailId]);
    const events = await fetch(`${b}/api/events?access_token=${token}`, {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(events.status, 200);
    const stream = new SseReader(events);
    const put = await fetch(`${a}/api/presence`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ status: "Busy" }),
    });
    assert.equal(put.status, 204);
    for (;;) {
      const ev = await stream.next();
      if (ev.event === "presence" && JSON.parse(ev.data).status === "Busy") break;
    }
    // B monitors the user of A's token: its tracker and stream see the call.
    await waitUntil(() => sim.monitorCount(DMITRY.ext) === 2, { what: "both isolates monitoring" });
    const id = sim.incomingCall({ from: "3044", to: DMITRY.ext });
    await stream.until("DeliveredEvent");
    const calls = await (await fetch(`${b}/api/calls`, { headers: auth })).json();
    assert.deepEqual(calls.calls.map((c: { callId: number }) => c.callId), [id]);
    // Logout on A: the sealed credential is gone, B opens no user session with the token.
    assert.equal(await status(a, token, "/api/logout"), 204);
    assert.equal(await status(b, token, "/api/voicemail"), 401);
    assert.ok(await stream.ended());
  }, { answerAfterMs: -1 });
});
