import assert from "node:assert/strict";
import { importSPKI, jwtVerify } from "jose";
import { P12Error, readApnsP12 } from "../lib/push/p12.ts";
import { ApnsSender, type ApnsSenderOptions, ApnsTokenSigner } from "../lib/push/apns.ts";
import { LEGACY_FCM_WARNING, stringifyData } from "../lib/push/fcm.ts";
import {
  closePushApps,
  isSupportedApp,
  loadPushConfig,
  pushKindFromPath,
} from "../lib/push/config.ts";
import { PushDispatcher, type PushDispatcherOptions } from "../lib/push/dispatcher.ts";
import type { PushEvent, PushResult, PushSender } from "../lib/push/types.ts";
import { parseRetryAfter } from "../lib/push/gateway.ts";
import { TokenStore } from "../lib/store/tokens.ts";
import { PushDedupe } from "../lib/store/dedupe.ts";
import { waitUntil } from "./helpers/wait.ts";
import {
  fcmError,
  MOCK_TLS_CERT,
  MOCK_TLS_CERT_PATH,
  MockApns,
  MockFcm,
} from "./helpers/mock_push.ts";

const FIX = new URL("./fixtures/push/", import.meta.url).pathname;
const P12_PASS = "mxflex-test";
const MX = "63022";
const JID = "43884851147406145";
const BUNDLE = "com.example.mxflex";
const VOIP_BUNDLE = "com.example.voipapp";
const APNS_TOKEN_1 = "a1".repeat(32);
const APNS_TOKEN_2 = "b2".repeat(32);
const FCM_TOKEN_1 = "fcm1:" + "x".repeat(60);
const FCM_TOKEN_2 = "fcm2:" + "y".repeat(60);
const ALL_TOKENS = [APNS_TOKEN_1, APNS_TOKEN_2, FCM_TOKEN_1, FCM_TOKEN_2];

/** §4.8 seed payload (globalCallId kept as a string). */
const PAYLOAD = {
  callId: 21,
  deviceId: "3095",
  globalCallId: "2808630435142226622",
  alertingDevice: "3095",
  callingDevice: "3044",
  calledDevice: "3095",
  lastRedirectionDevice: "3044",
  localConnectionInfo: "alerting",
  cause: "normal",
  callTypeFlags: 170917889,
  time: 1501101426,
};

/** A test world: mocks, KV, store, config; disposed by `close()`. */
async function world(extraConfig: Record<string, unknown> = {}) {
  const prod = MockApns.start();
  const sandbox = MockApns.start();
  const fcm = MockFcm.start();
  const kv = await Deno.openKv(":memory:");
  const store = new TokenStore(kv);
  const dedupe = new PushDedupe(kv);
  const config = {
    apns: { "apns-both.p12": P12_PASS },
    apnsKeys: [{
      key: "AuthKey_TESTKEY123.p8",
      keyId: "TESTKEY123",
      teamId: "TEAM123456",
      topic: VOIP_BUNDLE,
      voip: true,
    }],
    fcm: { "app-name": "service-account.json" },
    pushEndpoints: {
      apnsProduction: prod.url,
      apnsSandbox: sandbox.url,
      fcm: fcm.url,
      fcmOauth: fcm.oauthUrl,
      caFile: MOCK_TLS_CERT_PATH,
    },
    ...extraConfig,
  };
  const { apps, warnings } = await loadPushConfig(config, FIX);
  const logs: string[] = [];
  const delays: number[] = [];
  const dispatcher = (opts: Partial<PushDispatcherOptions> = {}) =>
    new PushDispatcher({
      store,
      dedupe,
      apps,
      baseBackoffMs: 1,
      log: (m) => logs.push(m),
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
      ...opts,
    });
  return {
    prod,
    sandbox,
    fcm,
    kv,
    store,
    apps,
    warnings,
    logs,
    delays,
    dispatcher,
    async close() {
      closePushApps(apps);
      kv.close();
      await Promise.all([prod.close(), sandbox.close(), fcm.close()]);
      // Secrets never reach logs.
      for (const line of logs) {
        for (const t of ALL_TOKENS) assert.ok(!line.includes(t), `token leaked into log: ${line}`);
      }
    },
  };
}

/** Runs `fn` with a fresh {@link world} and always closes it. */
async function withWorld(
  fn: (w: Awaited<ReturnType<typeof world>>) => Promise<void>,
  extraConfig: Record<string, unknown> = {},
): Promise<void> {
  const w = await world(extraConfig);
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

/** A provider-token signer with the test key (`AuthKey_TESTKEY123.p8`). */
async function testSigner(now?: () => number): Promise<ApnsTokenSigner> {
  return new ApnsTokenSigner({
    keyPem: await Deno.readTextFile(FIX + "AuthKey_TESTKEY123.p8"),
    keyId: "K",
    teamId: "T",
    ...(now ? { now } : {}),
  });
}

/** A token-auth sender for {@link BUNDLE} at `endpoint`, signed with {@link testSigner}. */
async function tokenSender(
  endpoint: string,
  o: Partial<ApnsSenderOptions> = {},
): Promise<ApnsSender> {
  return new ApnsSender({
    endpoint,
    topic: BUNDLE,
    auth: { type: "token", signer: await testSigner() },
    ...o,
  });
}

// --- PKCS#12 -------------------------------------------------------------------------

Deno.test("p12: universal certificate yields topic, both environments and topic list", async () => {
  const c = readApnsP12(await Deno.readFile(FIX + "apns-both.p12"), P12_PASS);
  assert.equal(c.topic, BUNDLE);
  assert.deepEqual(c.environments.sort(), ["production", "sandbox"]);
  assert.deepEqual(c.topics, [BUNDLE, BUNDLE + ".voip"]);
  assert.match(c.certPem, /BEGIN CERTIFICATE/);
  assert.match(c.keyPem, /PRIVATE KEY/);
});

Deno.test("p12: development-only legacy-encrypted certificate is sandbox only", async () => {
  const c = readApnsP12(await Deno.readFile(FIX + "apns-dev.p12"), P12_PASS);
  assert.equal(c.topic, "com.example.devonly");
  assert.deepEqual(c.environments, ["sandbox"]);
  assert.deepEqual(c.topics, []);
});

Deno.test("p12: no environment extension means both", async () => {
  const c = readApnsP12(await Deno.readFile(FIX + "apns-plain.p12"), P12_PASS);
  assert.deepEqual(c.environments.sort(), ["production", "sandbox"]);
});

Deno.test("p12: wrong password and expired certificate are load errors", async () => {
  const der = await Deno.readFile(FIX + "apns-both.p12");
  assert.throws(() => readApnsP12(der, "wrong-secret"), (e: unknown) => {
    assert.ok(e instanceof P12Error);
    assert.ok(!e.message.includes("wrong-secret"));
    return true;
  });
  assert.throws(() => readApnsP12(der, P12_PASS, new Date("2300-01-01")), /not valid now/);
});

// --- config ----------------------------------------------------------------------------

Deno.test("config: seed format loads; gfcm is kept but warned about", async () => {
  const { apps, warnings } = await loadPushConfig({
    mx: { dev: { addr: "127.0.0.1:7778", login: "server", password: "password" } },
    apns: { "apns-both.p12": P12_PASS, "apns-dev.p12": P12_PASS, "missing.p12": "x" },
    gfcm: { "app-name": "GOOGLE-APP-KEY" },
  }, FIX);
  try {
    assert.deepEqual([...apps.keys()].sort(), [
      "apns:com.example.devonly~",
      "apns:com.example.mxflex",
      "apns:com.example.mxflex~",
      "fcm:app-name",
    ]);
    assert.ok(isSupportedApp(apps, "apns", "com.example.mxflex~"));
    assert.ok(!isSupportedApp(apps, "apns", "com.example.devonly"));
    assert.ok(isSupportedApp(apps, "fcm", "app-name"));
    assert.ok(warnings.some((w) => w.includes(LEGACY_FCM_WARNING)));
    assert.ok(warnings.some((w) => w.includes("missing.p12")));
    assert.equal(warnings.length, 2);
    // Secrets from the config never appear in warnings.
    for (const w of warnings) {
      assert.ok(!w.includes(P12_PASS) && !w.includes("GOOGLE-APP-KEY"), w);
    }
  } finally {
    closePushApps(apps);
  }
});

Deno.test("config: a mistyped pushEndpoints key is a warning naming it", async () => {
  const { apps, warnings } = await loadPushConfig({
    pushEndpoints: { apnsSandbox: "https://127.0.0.1:1", caFlie: "ca.pem" },
  }, FIX);
  closePushApps(apps);
  assert.deepEqual(warnings, [
    "push: pushEndpoints.caFlie: unknown key, ignored " +
    "(known: apnsProduction, apnsSandbox, fcm, fcmOauth, caFile)",
  ]);
});

Deno.test("config: modern forms, .p8 inside apns, sandbox flags, bad entries", async () => {
  const { apps, warnings } = await loadPushConfig({
    apns: {
      "AuthKey_TESTKEY123.p8": { keyId: "K", teamId: "T", topic: "com.p8.inline", sandbox: true },
    },
    apnsKeys: [
      {
        key: "AuthKey_TESTKEY123.p8",
        keyId: "K",
        teamId: "T",
        topic: "com.p8.prod",
        sandbox: false,
      },
      { key: "AuthKey_TESTKEY123.p8", keyId: "K", teamId: "T", topic: "com.p8.both" },
      { key: "AuthKey_TESTKEY123.p8", keyId: "K", topic: "com.bad" },
      { key: "service-account.json", keyId: "K", teamId: "T", topic: "com.badkey" },
    ],
    fcm: { "app-name": "service-account.json", broken: "AuthKey_TESTKEY123.p8" },
    gfcm: { "app-name": "LEGACY" },
  }, FIX);
  try {
    assert.deepEqual([...apps.keys()].sort(), [
      "apns:com.p8.both",
      "apns:com.p8.both~",
      "apns:com.p8.inline~",
      "apns:com.p8.prod",
      "fcm:app-name",
    ]);
    assert.ok(warnings.some((w) => w.includes("apnsKeys[2]") && w.includes("teamId")));
    assert.ok(warnings.some((w) => w.includes("apnsKeys[3]")));
    assert.ok(warnings.some((w) => w.includes("fcm broken")));
    // gfcm under a name that has a service account: the service account wins.
    assert.ok(!apps.get("fcm:app-name")!.constructor.name.startsWith("Legacy"));
    assert.ok(warnings.some((w) => w.includes("gfcm app-name") && w.includes("ignored")));
  } finally {
    closePushApps(apps);
  }
});

Deno.test("config: path type mapping", () => {
  assert.equal(pushKindFromPath("apns"), "apns");
  assert.equal(pushKindFromPath("gfcm"), "fcm");
  assert.equal(pushKindFromPath("fcm"), "fcm");
  assert.equal(pushKindFromPath("wns"), undefined);
});

// --- APNs --------------------------------------------------------------------------------

Deno.test("apns: certificate auth sends an alert push over HTTP/2 with the modern headers", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    const d = w.dispatcher();
    const before = Math.floor(Date.now() / 1000);
    await d.push({ mx: MX, jid: JID, callKey: PAYLOAD.globalCallId, payload: PAYLOAD });
    const after = Math.floor(Date.now() / 1000);
    await d.close();
    assert.equal(w.sandbox.requests.length, 0);
    const [req] = w.prod.requestsFor(APNS_TOKEN_1);
    assert.ok(req, "production gateway got the push");
    assert.equal(req.method, "POST");
    assert.equal(req.headers["apns-topic"], BUNDLE);
    assert.equal(req.headers["apns-push-type"], "alert");
    assert.equal(req.headers["apns-priority"], "10");
    assert.equal(req.headers["apns-collapse-id"], PAYLOAD.globalCallId);
    assert.equal(req.headers["authorization"], undefined, "certificate auth sends no JWT");
    const exp = Number(req.headers["apns-expiration"]);
    assert.ok(exp >= before + 30 && exp <= after + 30, `expiration ${exp}`);
    const body = JSON.parse(req.body);
    assert.deepEqual(body, {
      ...PAYLOAD,
      aps: { alert: { title: "Incoming call", body: "3044" }, sound: "default" },
    });
    assert.deepEqual(d.stats(), {
      [`apns:${BUNDLE}`]: { sent: 1, failed: 0, pruned: 0, retried: 0 },
    });
  }));

Deno.test("apns: sandbox registrations go to the sandbox gateway", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE + "~", token: APNS_TOKEN_1 });
    await w.store.add({
      mx: MX,
      jid: JID,
      kind: "apns",
      app: VOIP_BUNDLE + "~",
      token: APNS_TOKEN_2,
    });
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "1", payload: PAYLOAD });
    await d.close();
    assert.equal(w.prod.requests.length, 0);
    assert.equal(w.sandbox.requestsFor(APNS_TOKEN_1).length, 1);
    assert.equal(w.sandbox.requestsFor(APNS_TOKEN_2).length, 1);
    assert.equal(w.sandbox.requestsFor(APNS_TOKEN_1)[0].headers["apns-topic"], BUNDLE);
  }));

Deno.test("apns: token (.p8) auth sends a VoIP push with a valid ES256 JWT and no aps", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: VOIP_BUNDLE, token: APNS_TOKEN_1 });
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: VOIP_BUNDLE, token: APNS_TOKEN_2 });
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "c1", payload: PAYLOAD });
    await d.close();
    assert.equal(w.prod.requests.length, 2);
    const pub = await importSPKI(
      await Deno.readTextFile(FIX + "AuthKey_TESTKEY123.pub.pem"),
      "ES256",
    );
    const jwts = new Set<string>();
    for (const req of w.prod.requests) {
      assert.equal(req.headers["apns-topic"], VOIP_BUNDLE + ".voip");
      assert.equal(req.headers["apns-push-type"], "voip");
      assert.deepEqual(JSON.parse(req.body), PAYLOAD);
      const jwt = req.headers["authorization"].replace(/^bearer /, "");
      const { payload, protectedHeader } = await jwtVerify(jwt, pub, { issuer: "TEAM123456" });
      assert.equal(protectedHeader.alg, "ES256");
      assert.equal(protectedHeader.kid, "TESTKEY123");
      assert.equal(typeof payload.iat, "number");
      jwts.add(jwt);
    }
    assert.equal(jwts.size, 1, "the provider token is cached");
  }));

Deno.test("apns: provider token is re-signed after 50 minutes, not before", async () => {
  let now = Date.UTC(2026, 0, 1);
  const signer = await testSigner(() => now);
  const first = await signer.token();
  now += 49 * 60 * 1000;
  assert.equal(await signer.token(), first);
  now += 60 * 1000 + 1;
  const second = await signer.token();
  assert.notEqual(second, first);
  signer.invalidate();
  now += 1000;
  assert.notEqual(await signer.token(), second);
});

Deno.test("apns: expiration is exactly now + 30 s and long collapse ids are cut to 64", async () => {
  const prod = MockApns.start();
  const sender = await tokenSender(prod.url, {
    caCerts: [MOCK_TLS_CERT],
    now: () => 1_700_000_000_500,
  });
  try {
    const r = await sender.send(APNS_TOKEN_1, { payload: { a: 1 }, collapseId: "x".repeat(100) });
    assert.deepEqual(r, { status: "ok" });
    assert.equal(prod.requests[0].headers["apns-expiration"], "1700000030");
    assert.equal(prod.requests[0].headers["apns-collapse-id"], "x".repeat(64));
  } finally {
    sender.close();
    await prod.close();
  }
});

Deno.test("apns: an untrusted gateway certificate is a transport error, token redacted", async () => {
  const prod = MockApns.start();
  const sender = await tokenSender(prod.url); // no caCerts: the mock's certificate is unknown
  try {
    const r = await sender.send(APNS_TOKEN_1, { payload: {} });
    assert.equal(r.status, "retry");
    assert.ok(r.status === "retry" && !r.reason.includes(APNS_TOKEN_1), JSON.stringify(r));
  } finally {
    sender.close();
    await prod.close();
  }
});

// --- retries and results ------------------------------------------------------------------

Deno.test("dispatcher: 503 is retried with backoff, Retry-After is honoured, then success", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    w.prod.script(
      APNS_TOKEN_1,
      { status: 503, body: { reason: "ServiceUnavailable" } },
      { status: 429, body: { reason: "TooManyRequests" }, headers: { "retry-after": "2" } },
    );
    const d = w.dispatcher({ baseBackoffMs: 5 });
    await d.push({ mx: MX, jid: JID, callKey: "r1", payload: PAYLOAD });
    await d.close();
    assert.equal(w.prod.requestsFor(APNS_TOKEN_1).length, 3);
    // First retry: base backoff; second: 2 s from Retry-After beats the 10 ms backoff.
    assert.deepEqual(w.delays, [5, 2000]);
    assert.deepEqual(d.stats()[`apns:${BUNDLE}`], { sent: 1, failed: 0, pruned: 0, retried: 2 });
    assert.equal((await w.store.listForUser(MX, JID)).length, 1);
  }));

Deno.test("dispatcher: retries stop after maxRetries and when Retry-After outlives the call", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_2 });
    const down = { status: 500, body: { reason: "InternalServerError" } };
    w.prod.script(APNS_TOKEN_1, down, down, down, down, down);
    w.prod.script(APNS_TOKEN_2, { ...down, headers: { "retry-after": "3600" } });
    const d = w.dispatcher({ maxRetries: 2 });
    await d.push({ mx: MX, jid: JID, callKey: "r2", payload: PAYLOAD });
    await d.close();
    assert.equal(w.prod.requestsFor(APNS_TOKEN_1).length, 3);
    assert.equal(w.prod.requestsFor(APNS_TOKEN_2).length, 1);
    assert.deepEqual(d.stats()[`apns:${BUNDLE}`], { sent: 0, failed: 2, pruned: 0, retried: 2 });
    assert.equal((await w.store.listForUser(MX, JID)).length, 2, "tokens are kept");
  }));

Deno.test("dispatcher: 400 other than a token error is not retried and keeps the token", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    w.prod.script(APNS_TOKEN_1, { status: 400, body: { reason: "BadTopic" } });
    w.fcm.script(FCM_TOKEN_1, fcmError(400, "INVALID_ARGUMENT", undefined, "message.data"));
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "n1", payload: PAYLOAD });
    await d.close();
    assert.equal(w.prod.requests.length, 1);
    assert.equal(w.fcm.requests.length, 1);
    assert.deepEqual(w.delays, []);
    assert.equal(d.stats()[`apns:${BUNDLE}`].failed, 1);
    assert.equal(d.stats()["fcm:app-name"].failed, 1);
    assert.equal((await w.store.listForUser(MX, JID)).length, 2);
    assert.ok(w.logs.some((l) => l.includes("BadTopic")));
  }));

Deno.test("dispatcher: dead tokens (410, BadDeviceToken, UNREGISTERED, token INVALID_ARGUMENT) are pruned", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_2 });
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_2 });
    w.prod.script(APNS_TOKEN_1, { status: 410, body: { reason: "Unregistered", timestamp: 1 } });
    w.prod.script(APNS_TOKEN_2, { status: 400, body: { reason: "BadDeviceToken" } });
    w.fcm.script(FCM_TOKEN_1, fcmError(404, "NOT_FOUND", "UNREGISTERED"));
    w.fcm.script(
      FCM_TOKEN_2,
      fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.token"),
    );
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "p1", payload: PAYLOAD });
    await d.close();
    assert.deepEqual(await w.store.listForUser(MX, JID), []);
    assert.deepEqual(await w.store.listUsers(MX), []);
    assert.equal(d.stats()[`apns:${BUNDLE}`].pruned, 2);
    assert.equal(d.stats()["fcm:app-name"].pruned, 2);
    assert.deepEqual(w.delays, []);
  }));

Deno.test("dispatcher: bounded concurrency", async () => {
  let active = 0;
  let peak = 0;
  const release: Array<() => void> = [];
  const sender: PushSender = {
    kind: "fcm",
    async send(): Promise<PushResult> {
      active++;
      peak = Math.max(peak, active);
      await new Promise<void>((r) => release.push(r));
      active--;
      return { status: "ok" };
    },
    close() {},
  };
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new TokenStore(kv);
    for (let i = 0; i < 6; i++) {
      await store.add({
        mx: MX,
        jid: JID,
        kind: "fcm",
        app: "stub",
        token: `tok-${i}-`.padEnd(30, "z"),
      });
    }
    const d = new PushDispatcher({
      store,
      dedupe: new PushDedupe(kv),
      apps: new Map([["fcm:stub", sender]]),
      concurrency: 2,
    });
    const done = d.push({ mx: MX, jid: JID, callKey: "cc", payload: {} });
    for (let finished = 0; finished < 6; finished++) {
      await waitUntil(() => release.length > 0, { what: `send ${finished + 1} in progress` });
      release.shift()!();
    }
    await done;
    await d.close();
    assert.equal(peak, 2);
    assert.equal(d.stats()["fcm:stub"].sent, 6);
  } finally {
    kv.close();
  }
});

Deno.test("dispatcher: close waits for deliveries in flight, then closes every sender once", async () => {
  const events: string[] = [];
  let release: (() => void) | undefined;
  const sender: PushSender = {
    kind: "fcm",
    async send(): Promise<PushResult> {
      events.push("send");
      await new Promise<void>((r) => release = r);
      events.push("sent");
      return { status: "ok" };
    },
    close() {
      events.push("close");
    },
  };
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new TokenStore(kv);
    await store.add({ mx: MX, jid: JID, kind: "fcm", app: "stub", token: "tok-".padEnd(30, "z") });
    const d = new PushDispatcher({
      store,
      dedupe: new PushDedupe(kv),
      apps: new Map([["fcm:stub", sender]]),
    });
    const done = d.push({ mx: MX, jid: JID, callKey: "cl", payload: {} });
    await waitUntil(() => release !== undefined, { what: "send in progress" });
    const closed = d.close();
    release!();
    await Promise.all([done, closed, d.close()]);
    assert.deepEqual(events, ["send", "sent", "close"]);
  } finally {
    kv.close();
  }
});

// --- FCM -----------------------------------------------------------------------------------

Deno.test("fcm: v1 messages with stringified data; OAuth token fetched once and cached", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_2 });
    const d = w.dispatcher();
    await Promise.all([
      d.push({ mx: MX, jid: JID, callKey: "f1", payload: PAYLOAD }),
      d.push({ mx: MX, jid: JID, callKey: "f2", payload: PAYLOAD }),
    ]);
    await d.push({ mx: MX, jid: JID, callKey: "f3", payload: PAYLOAD });
    await d.close();
    assert.equal(w.fcm.requests.length, 6);
    assert.equal(w.fcm.tokenRequests.length, 1, "one OAuth exchange for all sends");

    const form = new URLSearchParams(w.fcm.tokenRequests[0].body);
    assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
    const pub = await importSPKI(await Deno.readTextFile(FIX + "service-account.pub.pem"), "RS256");
    const { payload: claims, protectedHeader } = await jwtVerify(form.get("assertion")!, pub, {
      issuer: "push@mxflex-test.iam.gserviceaccount.com",
      audience: w.fcm.oauthUrl,
    });
    assert.equal(protectedHeader.alg, "RS256");
    assert.equal(protectedHeader.kid, "test-key-id");
    assert.equal(claims.scope, "https://www.googleapis.com/auth/firebase.messaging");

    const req = w.fcm.requests.find((r) => JSON.parse(r.body).message.token === FCM_TOKEN_1)!;
    assert.equal(req.path, "/v1/projects/mxflex-test/messages:send");
    assert.equal(req.headers["authorization"], "Bearer mock-access-1");
    const body = JSON.parse(req.body);
    assert.deepEqual(body.message.data, {
      callId: "21",
      deviceId: "3095",
      globalCallId: "2808630435142226622",
      alertingDevice: "3095",
      callingDevice: "3044",
      calledDevice: "3095",
      lastRedirectionDevice: "3044",
      localConnectionInfo: "alerting",
      cause: "normal",
      callTypeFlags: "170917889",
      time: "1501101426",
    });
    assert.equal(body.message.android.priority, "high");
    assert.equal(body.message.android.ttl, "30s");
    assert.deepEqual(d.stats()["fcm:app-name"], { sent: 6, failed: 0, pruned: 0, retried: 0 });
  }));

Deno.test("fcm: a revoked access token (401) is replaced and the push retried", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "a1", payload: PAYLOAD });
    w.fcm.revokeAccessTokens();
    await d.push({ mx: MX, jid: JID, callKey: "a2", payload: PAYLOAD });
    await d.close();
    assert.equal(w.fcm.tokenRequests.length, 2);
    assert.equal(w.fcm.requests.length, 3);
    assert.deepEqual(d.stats()["fcm:app-name"], { sent: 2, failed: 0, pruned: 0, retried: 1 });
  }));

Deno.test("fcm: 503 with Retry-After is retried", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    w.fcm.script(FCM_TOKEN_1, { ...fcmError(503, "UNAVAILABLE"), headers: { "retry-after": "1" } });
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "u1", payload: PAYLOAD });
    await d.close();
    assert.deepEqual(w.delays, [1000]);
    assert.equal(w.fcm.requests.length, 2);
    assert.deepEqual(d.stats()["fcm:app-name"], { sent: 1, failed: 0, pruned: 0, retried: 1 });
  }));

Deno.test("fcm: legacy gfcm apps load with a warning and never report success", () =>
  withWorld(async (w) => {
    const warning = w.warnings.find((x) => x.includes("old-app"));
    assert.ok(warning?.includes(LEGACY_FCM_WARNING), String(warning));
    assert.ok(!warning?.includes("AAAA-server-key"));
    assert.ok(isSupportedApp(w.apps, "fcm", "old-app"));
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "old-app", token: FCM_TOKEN_1 });
    const d = w.dispatcher();
    await d.push({ mx: MX, jid: JID, callKey: "l1", payload: PAYLOAD });
    await d.close();
    assert.deepEqual(d.stats()["fcm:old-app"], { sent: 0, failed: 1, pruned: 0, retried: 0 });
    assert.equal(w.fcm.requests.length + w.fcm.tokenRequests.length, 0, "nothing was contacted");
    assert.equal(
      (await w.store.listForUser(MX, JID)).length,
      1,
      "token kept for a later fcm config",
    );
    assert.ok(w.logs.some((l) => l.includes("retired")));
  }, { fcm: {}, gfcm: { "old-app": "AAAA-server-key" } }));

Deno.test("fcm: data values are stringified, null and undefined dropped", () => {
  assert.deepEqual(stringifyData({ a: 1, b: true, c: "s", d: null, e: undefined, f: { x: 1 } }), {
    a: "1",
    b: "true",
    c: "s",
    f: '{"x":1}',
  });
});

Deno.test("Retry-After parsing: seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.UTC(2026, 0, 1, 0, 0, 0);
  assert.equal(parseRetryAfter(new Date(now + 5000).toUTCString(), now), 5000);
});

// --- de-duplication across processes -------------------------------------------------------

Deno.test("dedupe: two dispatchers on one KV file push once per device per call", async () => {
  const prod = MockApns.start();
  const fcm = MockFcm.start();
  const dir = await Deno.makeTempDir();
  const kv1 = await Deno.openKv(`${dir}/push.db`);
  const kv2 = await Deno.openKv(`${dir}/push.db`);
  const config = {
    apns: { "apns-both.p12": P12_PASS },
    fcm: { "app-name": "service-account.json" },
    pushEndpoints: {
      apnsProduction: prod.url,
      fcm: fcm.url,
      fcmOauth: fcm.oauthUrl,
      caFile: MOCK_TLS_CERT_PATH,
    },
  };
  // Each "process" has its own config, senders, store and dedupe over its own KV handle.
  const a = await loadPushConfig(config, FIX);
  const b = await loadPushConfig(config, FIX);
  try {
    const storeA = new TokenStore(kv1);
    await storeA.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    await storeA.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_2 });
    await storeA.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    const dA = new PushDispatcher({ store: storeA, dedupe: new PushDedupe(kv1), apps: a.apps });
    const dB = new PushDispatcher({
      store: new TokenStore(kv2),
      dedupe: new PushDedupe(kv2),
      apps: b.apps,
    });
    const call = { mx: MX, jid: JID, callKey: PAYLOAD.globalCallId, payload: PAYLOAD };
    // Repeated DeliveredEvents seen by both processes.
    await Promise.all([
      dA.push(call),
      dB.push(call),
      dA.push(call),
      dB.push(call),
    ]);
    assert.equal(prod.requestsFor(APNS_TOKEN_1).length, 1);
    assert.equal(prod.requestsFor(APNS_TOKEN_2).length, 1);
    assert.equal(fcm.requests.length, 1);
    // A new call pushes again.
    await Promise.all([
      dA.push({ ...call, callKey: "next" }),
      dB.push({ ...call, callKey: "next" }),
    ]);
    assert.equal(prod.requests.length, 4);
    assert.equal(fcm.requests.length, 2);
    await Promise.all([dA.close(), dB.close()]);
  } finally {
    closePushApps(a.apps);
    closePushApps(b.apps);
    kv1.close();
    kv2.close();
    await Promise.all([prod.close(), fcm.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fcm: pushEndpoints.caFile is trusted for the OAuth and send requests (no env override)", async () => {
  const fcm = MockFcm.start({ tls: true });
  const { apps } = await loadPushConfig({
    fcm: { "app-name": "service-account.json" },
    pushEndpoints: { fcm: fcm.url, fcmOauth: fcm.oauthUrl, caFile: MOCK_TLS_CERT_PATH },
  }, FIX);
  try {
    assert.equal(Deno.env.get("DENO_CERT"), undefined);
    const r = await apps.get("fcm:app-name")!.send(FCM_TOKEN_1, { payload: PAYLOAD });
    assert.deepEqual(r, { status: "ok" });
    assert.equal(fcm.tokenRequests.length, 1);
    assert.equal(fcm.requests.length, 1);
  } finally {
    closePushApps(apps);
    await fcm.close();
  }
});

// --- lifecycle pushes: transport per event -------------------------------------------------

const ALERT_TOKEN_1 = "c3".repeat(32);
/** A VoIP app's device: PushKit token plus its ordinary APNs token. */
const VOIP_DEVICE = {
  mx: MX,
  jid: JID,
  kind: "apns" as const,
  app: VOIP_BUNDLE,
  token: APNS_TOKEN_1,
  alertToken: ALERT_TOKEN_1,
};
const LIFECYCLE: PushEvent[] = ["incoming", "cancelled", "missed"];

/** Pushes `events` of one call (the dispatcher claims one follow-up, so one call each). */
async function pushSteps(
  d: PushDispatcher,
  events: PushEvent[],
  eventAt: number,
  callKey = PAYLOAD.globalCallId,
) {
  for (const [i, event] of events.entries()) {
    // incoming and one follow-up per call: later follow-ups get their own call key.
    const key = i < 2 ? callKey : `${callKey}-${i}`;
    await d.push({
      mx: MX,
      jid: JID,
      callKey: key,
      event,
      payload: { ...PAYLOAD, event },
      eventAt,
    });
  }
}

Deno.test("lifecycle apns: a VoIP app gets incoming as VoIP, every follow-up on its bundle id", () =>
  withWorld(async (w) => {
    await w.store.add(VOIP_DEVICE);
    const d = w.dispatcher();
    const at = Date.now();
    await pushSteps(d, ["incoming", "answered_elsewhere", "missed"], at);
    await d.close();
    const [incoming] = w.prod.requestsFor(APNS_TOKEN_1);
    assert.equal(w.prod.requestsFor(APNS_TOKEN_1).length, 1, "the VoIP token gets only incoming");
    assert.equal(incoming.headers["apns-topic"], VOIP_BUNDLE + ".voip");
    assert.equal(incoming.headers["apns-push-type"], "voip");
    assert.equal(incoming.headers["apns-priority"], "10");
    assert.equal(incoming.headers["apns-expiration"], String(Math.floor((at + 30_000) / 1000)));
    assert.equal(incoming.headers["apns-collapse-id"], PAYLOAD.globalCallId);
    assert.deepEqual(JSON.parse(incoming.body), { ...PAYLOAD, event: "incoming" });

    const [elsewhere, missed] = w.prod.requestsFor(ALERT_TOKEN_1);
    assert.equal(w.prod.requestsFor(ALERT_TOKEN_1).length, 2);
    assert.equal(elsewhere.headers["apns-topic"], VOIP_BUNDLE, "never .voip");
    assert.equal(elsewhere.headers["apns-push-type"], "background");
    assert.equal(elsewhere.headers["apns-priority"], "5");
    assert.equal(elsewhere.headers["apns-expiration"], String(Math.floor((at + 30_000) / 1000)));
    assert.equal(elsewhere.headers["apns-collapse-id"], PAYLOAD.globalCallId);
    assert.deepEqual(JSON.parse(elsewhere.body), {
      ...PAYLOAD,
      event: "answered_elsewhere",
      aps: { "content-available": 1 },
    });
    assert.equal(missed.headers["apns-topic"], VOIP_BUNDLE);
    assert.equal(missed.headers["apns-push-type"], "alert");
    assert.equal(missed.headers["apns-priority"], "10");
    assert.equal(missed.headers["apns-expiration"], String(Math.floor((at + 86_400_000) / 1000)));
    assert.deepEqual(JSON.parse(missed.body).aps, {
      alert: {
        title: "Missed call",
        body: "Missed call from 3044",
        "title-loc-key": "Missed call",
        "loc-key": "Missed call from %@",
        "loc-args": ["3044"],
      },
      sound: "default",
    });
    // Token auth: one provider token for every topic of the key.
    const auths = new Set(w.prod.requests.map((r) => r.headers["authorization"]));
    assert.equal(auths.size, 1);
  }));

Deno.test("lifecycle apns: a VoIP registration without an alert token gets no follow-ups", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: VOIP_BUNDLE, token: APNS_TOKEN_1 });
    const d = w.dispatcher();
    await pushSteps(d, LIFECYCLE, Date.now());
    await d.close();
    assert.deepEqual(
      w.prod.requests.map((r) => r.headers["apns-push-type"]),
      ["voip"],
      "never a VoIP push after incoming",
    );
  }));

Deno.test("lifecycle apns: an alert app gets alert, background, alert on one token", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    const d = w.dispatcher();
    await pushSteps(d, ["incoming", "answered", "missed"], Date.now());
    await d.close();
    const reqs = w.prod.requestsFor(APNS_TOKEN_1);
    assert.deepEqual(
      reqs.map((
        r,
      ) => [r.headers["apns-topic"], r.headers["apns-push-type"], r.headers["apns-priority"]]),
      [[BUNDLE, "alert", "10"], [BUNDLE, "background", "5"], [BUNDLE, "alert", "10"]],
    );
    assert.equal(JSON.parse(reqs[0].body).aps.alert.title, "Incoming call");
  }));

Deno.test("lifecycle fcm: high-priority data, short ttl follow-ups, missed with a notification", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    const d = w.dispatcher({ ringTimeoutMs: 20_000 });
    await pushSteps(d, ["incoming", "cancelled", "missed"], Date.now());
    await d.close();
    const [incoming, cancelled, missed] = w.fcm.requests.map((r) => JSON.parse(r.body).message);
    const ttl = (m: { android: { ttl: string } }) => Number(m.android.ttl.replace(/s$/, ""));
    assert.equal(incoming.android.priority, "high");
    assert.ok(ttl(incoming) > 15 && ttl(incoming) <= 20, incoming.android.ttl);
    assert.equal(incoming.android.collapse_key, PAYLOAD.globalCallId);
    assert.equal(incoming.data.event, "incoming");
    assert.equal(incoming.notification, undefined);
    assert.equal(cancelled.android.priority, "high");
    assert.ok(ttl(cancelled) > 15 && ttl(cancelled) <= 20, cancelled.android.ttl);
    assert.equal(cancelled.data.event, "cancelled");
    assert.equal(cancelled.notification, undefined);
    assert.equal(missed.android.priority, "normal");
    assert.ok(ttl(missed) > 86_000 && ttl(missed) <= 86_400, missed.android.ttl);
    assert.deepEqual(missed.notification, { title: "Missed call", body: "Missed call from 3044" });
    assert.deepEqual(missed.android.notification, {
      title_loc_key: "mxflex_missed_call_title",
      body_loc_key: "mxflex_missed_call_body",
      body_loc_args: ["3044"],
      tag: `${PAYLOAD.globalCallId}-2`,
    });
  }));

Deno.test("lifecycle: one follow-up per call and device, whatever the second one says", () =>
  withWorld(async (w) => {
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    const d = w.dispatcher();
    const call = { mx: MX, jid: JID, callKey: "one", payload: PAYLOAD };
    await d.push({ ...call, event: "incoming" });
    await d.push({ ...call, event: "answered" });
    await d.push({ ...call, event: "missed" });
    await d.push({ ...call, event: "incoming" });
    await d.close();
    assert.deepEqual(
      w.fcm.requests.map((r) => JSON.parse(r.body).message.data.callId),
      ["21", "21"],
    );
    assert.deepEqual(d.stats()["fcm:app-name"], { sent: 2, failed: 0, pruned: 0, retried: 0 });
  }));

Deno.test("lifecycle: an expired push is not sent; pushRingTimeout sets the expiry", () =>
  withWorld(async (w) => {
    assert.equal(
      (await loadPushConfig({ pushRingTimeout: "soon" }, FIX)).warnings.length,
      1,
      "a bad value is a warning",
    );
    const cfg = await loadPushConfig({ pushRingTimeout: 12 }, FIX);
    assert.equal(cfg.ringTimeoutMs, 12_000);
    await w.store.add({ mx: MX, jid: JID, kind: "apns", app: BUNDLE, token: APNS_TOKEN_1 });
    const d = w.dispatcher({ ringTimeoutMs: cfg.ringTimeoutMs });
    const at = Date.now();
    await d.push({ mx: MX, jid: JID, callKey: "late", payload: PAYLOAD, eventAt: at - 13_000 });
    await d.push({ mx: MX, jid: JID, callKey: "fresh", payload: PAYLOAD, eventAt: at });
    await d.close();
    const reqs = w.prod.requestsFor(APNS_TOKEN_1);
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0].headers["apns-expiration"], String(Math.floor((at + 12_000) / 1000)));
    assert.deepEqual(d.stats()[`apns:${BUNDLE}`], { sent: 1, failed: 1, pruned: 0, retried: 0 });
    assert.ok(w.logs.some((l) => l.includes("expired before delivery")));
  }, { pushRingTimeout: 12 }));

Deno.test("lifecycle: observer gets sent with latency, failed and pruned per app and event", () =>
  withWorld(async (w) => {
    await w.store.add(VOIP_DEVICE);
    await w.store.add({ mx: MX, jid: JID, kind: "fcm", app: "app-name", token: FCM_TOKEN_1 });
    w.prod.script(ALERT_TOKEN_1, { status: 400, body: { reason: "BadDeviceToken" } });
    w.fcm.script(FCM_TOKEN_1, { status: 200 }, fcmError(400, "INVALID_ARGUMENT", undefined, "x"));
    const seen: string[] = [];
    const d = w.dispatcher({
      observer: {
        sent: (app, event, ms) => {
          assert.ok(ms >= 1000 && ms < 60_000, `latency ${ms}`);
          seen.push(`sent ${app} ${event}`);
        },
        failed: (app, event) => seen.push(`failed ${app} ${event}`),
        pruned: (app, event) => seen.push(`pruned ${app} ${event}`),
      },
    });
    const call = { mx: MX, jid: JID, callKey: "obs", payload: PAYLOAD, eventAt: Date.now() - 1000 };
    await d.push({ ...call, event: "incoming" });
    await d.push({ ...call, event: "cancelled" });
    await d.close();
    assert.deepEqual(
      seen.sort(),
      [
        "failed fcm:app-name cancelled",
        `pruned apns:${VOIP_BUNDLE} cancelled`,
        "sent apns:" + VOIP_BUNDLE + " incoming",
        "sent fcm:app-name incoming",
      ].sort(),
    );
    // A dead alert token is dropped; the device's VoIP token stays and keeps ringing.
    const [voip] = (await w.store.listForUser(MX, JID)).filter((t) => t.kind === "apns");
    assert.equal(voip.token, APNS_TOKEN_1);
    assert.equal(voip.alertToken, undefined);
    assert.equal(typeof voip.lastSuccessAt, "number", "last-success time kept");
  }));

Deno.test("config: a VoIP Services certificate is warned about (follow-ups need the bundle topic)", async () => {
  const { apps, warnings } = await loadPushConfig({
    apns: {
      "apns-voip.p12": { password: P12_PASS },
      "apns-both.p12": { password: P12_PASS, voip: true },
    },
  }, FIX);
  try {
    const s = apps.get("apns:com.example.voiponly.voip") as ApnsSender;
    assert.equal(s.apnsTopic, "com.example.voiponly.voip");
    assert.equal(s.bundleTopic, "com.example.voiponly");
    assert.ok(s.voip);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /apns-voip\.p12: certificate does not cover com\.example\.voiponly;/);
  } finally {
    closePushApps(apps);
  }
});
