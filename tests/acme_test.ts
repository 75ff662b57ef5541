import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import { AcmeManager, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING } from "../lib/listen/acme.ts";
import { type CertStore, DirCertStore, KvCertStore } from "../lib/listen/cert_store.ts";
import { listen, type ListenAcmeOptions, type ListenLog } from "../lib/listen/listen.ts";
import { startLoopbackProxy, startPebble } from "./helpers/pebble.ts";
import { freePort } from "./helpers/free_port.ts";
import { needs } from "./helpers/tools.ts";
import { sleep, waitUntil } from "./helpers/wait.ts";
import { startHarness } from "./helpers/harness.ts";
import { HttpsStatus } from "../lib/listen/https_status.ts";

const DOMAIN = "mxflex.test";

/** Counts writes so tests can tell a cache hit from a new order. */
class CountingStore implements CertStore {
  inner = new Map<string, string>();
  sets: string[] = [];
  get(name: string) {
    return Promise.resolve(this.inner.get(name));
  }
  set(name: string, pem: string) {
    this.sets.push(name);
    this.inner.set(name, pem);
    return Promise.resolve();
  }
}

Deno.test("DirCertStore: round trip, 0600 files in a 0700 dir, safe names", async () => {
  const base = await Deno.makeTempDir();
  try {
    const store = new DirCertStore(`${base}/cache`);
    assert.equal(await store.get("missing.pem"), undefined);
    await store.set("example.com+acme.pem", "PEM-1");
    await store.set("example.com+acme.pem", "PEM-2");
    assert.equal(await store.get("example.com+acme.pem"), "PEM-2");
    assert.equal((await Deno.stat(`${base}/cache/example.com+acme.pem`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${base}/cache`)).mode! & 0o777, 0o700);
    const files = [];
    for await (const e of Deno.readDir(`${base}/cache`)) files.push(e.name);
    assert.deepEqual(files, ["example.com+acme.pem"], "no temporary files left behind");
    for (const bad of ["../escape", "a/b", "", ".hidden"]) {
      await assert.rejects(store.set(bad, "x"), TypeError, bad);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("KvCertStore: round trip under a prefix", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new KvCertStore(kv);
    assert.equal(await store.get("a.pem"), undefined);
    await store.set("a.pem", "PEM");
    assert.equal(await store.get("a.pem"), "PEM");
    assert.equal((await kv.get(["acme", "a.pem"])).value, "PEM");
    const other = new KvCertStore(kv, ["other"]);
    assert.equal(await other.get("a.pem"), undefined);
  } finally {
    kv.close();
  }
});

Deno.test("AcmeManager: challenge responder only handles ACME paths", async () => {
  const m = new AcmeManager({ domain: DOMAIN, store: new CountingStore() });
  const respond = m.challengeResponder();
  assert.equal(respond(new Request("http://mxflex.test/api/login")), undefined);
  const res = respond(new Request("http://mxflex.test/.well-known/acme-challenge/unknown"));
  assert.equal(res?.status, 404);
  await res?.body?.cancel();
  assert.match(LETS_ENCRYPT_PRODUCTION, /^https:\/\/acme-v02\.api\.letsencrypt\.org\//);
  assert.match(LETS_ENCRYPT_STAGING, /^https:\/\/acme-staging-v02\.api\.letsencrypt\.org\//);
});

Deno.test({
  ...needs("pebble", "AcmeManager + pebble: orders, caches, renews inside the renewal window"),
  async fn() {
    const httpPort = freePort();
    const pebble = await startPebble({ httpPort, validitySeconds: 3600 });
    let offset = 0;
    const logs: string[] = [];
    const store = new CountingStore();
    const manager = new AcmeManager({
      domain: DOMAIN,
      directoryUrl: pebble.directoryUrl,
      store,
      caCerts: [pebble.apiCert],
      now: () => Date.now() + offset,
      log: (m) => logs.push(m),
    });
    let respond = manager.challengeResponder();
    const challengeServer = Deno.serve(
      { hostname: "127.0.0.1", port: httpPort, onListen() {} },
      (req) => respond(req) ?? new Response("not a challenge", { status: 418 }),
    );
    try {
      const first = await manager.ensureCertificate().catch((err) => {
        throw new Error(`${err}\n${pebble.logs()}`);
      });
      const leaf = new X509Certificate(first.cert);
      assert.match(leaf.subjectAltName ?? "", /DNS:mxflex\.test/);
      assert.equal(first.notAfter.getTime(), new Date(leaf.validTo).getTime());
      assert.match(first.key, /^-----BEGIN PRIVATE KEY-----/);
      // The chain from pebble verifies against its management root.
      const root = new X509Certificate(await pebble.rootCert());
      const chain = first.cert.match(
        /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
      )!;
      assert.equal(chain.length, 2, "leaf + intermediate");
      assert.equal(new X509Certificate(chain[1]).verify(root.publicKey), true);
      const tag = new URL(pebble.directoryUrl).host.replace(":", "_");
      assert.deepEqual(store.sets, [
        `acme-account+${tag}.key`,
        `acme-account+${tag}.url`,
        `${DOMAIN}+${tag}.pem`,
      ]);
      assert.ok(logs.every((l) => !l.includes("PRIVATE KEY")), "no key material in logs");

      // Still fresh: served from the store, nothing ordered or written.
      const cached = await manager.ensureCertificate();
      assert.equal(cached.cert, first.cert);
      assert.equal(store.sets.length, 3);

      // A new manager on the same store reuses the cached certificate too.
      const again = new AcmeManager({ domain: DOMAIN, directoryUrl: pebble.directoryUrl, store });
      assert.equal((await again.ensureCertificate()).cert, first.cert);

      // 45 of 60 minutes gone: less than a third of the lifetime left (the
      // 30-day default is capped for short-lived certificates), so renew.
      offset = 45 * 60_000;
      const renewed = await manager.ensureCertificate();
      assert.notEqual(renewed.cert, first.cert, logs.join("\n"));
      assert.ok(renewed.notAfter >= first.notAfter);
      assert.deepEqual(store.sets.slice(3), [`${DOMAIN}+${tag}.pem`], "account reused");
      assert.equal((await store.get(store.sets[3]))?.includes(renewed.cert.trim()), true);

      // A stored key without its account URL is looked up by key (RFC 8555
      // §7.3.1 onlyReturnExisting), not registered again.
      const partial = new CountingStore();
      partial.inner.set(`acme-account+${tag}.key`, store.inner.get(`acme-account+${tag}.key`)!);
      const relooked = new AcmeManager({
        domain: DOMAIN,
        directoryUrl: pebble.directoryUrl,
        store: partial,
        caCerts: [pebble.apiCert],
      });
      respond = relooked.challengeResponder();
      await relooked.ensureCertificate();
      assert.deepEqual(partial.sets, [`acme-account+${tag}.url`, `${DOMAIN}+${tag}.pem`]);
      assert.equal(
        partial.inner.get(`acme-account+${tag}.url`),
        store.inner.get(`acme-account+${tag}.url`),
      );
    } finally {
      manager.stop();
      await challengeServer.shutdown();
      await pebble.close();
    }
  },
});

Deno.test({
  ...needs(
    "pebble",
    "listen + pebble: ACME mode serves HTTP/2, redirects port 80, swaps cert on renewal",
  ),
  async fn() {
    const httpPort = freePort();
    const pebble = await startPebble({ httpPort, validitySeconds: 3600 });
    let offset = 0;
    let renewed = Promise.withResolvers<{ cert: string }>();
    const logs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const enc = new TextEncoder();
    const handler = (req: Request) => {
      const path = new URL(req.url).pathname;
      if (path !== "/stream") return new Response(`hello ${path}`);
      // An SSE-like response that stays open across the certificate swap.
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(enc.encode("first\n"));
            await gate;
            c.enqueue(enc.encode("second\n"));
            c.close();
          },
        }),
      );
    };
    const srv = await listen(handler, {
      host: DOMAIN,
      log: (m) => {
        logs.push(m);
        // Fail fast instead of waiting forever when renewal or the swap breaks.
        if (/keeping the current certificate|failed at /.test(m)) {
          renewed.reject(new Error(`${m}\n${pebble.logs()}`));
        }
      },
      acme: {
        directoryUrl: pebble.directoryUrl,
        store: new CountingStore(),
        caCerts: [pebble.apiCert],
        hostname: "127.0.0.1",
        httpPort,
        httpsPort: 0,
        checkEveryMs: 50,
        now: () => Date.now() + offset,
        onCertificate: (c) => {
          // Back to real time before the next check is scheduled (checks wait
          // for the swap), so exactly one renewal happens.
          offset = 0;
          renewed.resolve(c);
        },
      },
    }).catch((err) => {
      throw new Error(`${err}\n${pebble.logs()}`);
    });
    const port = (await srv.serving).port;
    const root = await pebble.rootCert();
    // mxflex.test does not resolve here: a CONNECT proxy tunnels to loopback
    // while TLS still verifies (and SNI names) mxflex.test end to end.
    const proxy = startLoopbackProxy();
    const h2 = () =>
      Deno.createHttpClient({
        caCerts: [root],
        http1: false,
        http2: true,
        proxy: { url: proxy.url },
      });
    const streamClient = h2();
    const laterClient = h2();
    try {
      assert.equal(srv.url, `https://${DOMAIN}:${port}/`);
      assert.equal(srv.httpAddr?.port, httpPort);

      const res = await fetch(`${srv.url}hello`, { client: streamClient });
      assert.equal(await res.text(), "hello /hello");
      const servedSerial = await peerSerial(port, root);

      const redirect = await fetch(`http://127.0.0.1:${httpPort}/api/x?y=1`, {
        redirect: "manual",
      });
      assert.equal(redirect.status, 301);
      assert.equal(redirect.headers.get("location"), `https://${DOMAIN}:${port}/api/x?y=1`);
      await redirect.body?.cancel();

      const stream = await fetch(`${srv.url}stream`, { client: streamClient });
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      assert.equal((await reader.read()).value, "first\n");

      // Move into the renewal window; the next check orders and swaps.
      offset = 45 * 60_000;
      const next = await renewed.promise;
      renewed = Promise.withResolvers();
      const newSerial = new X509Certificate(next.cert).serialNumber;
      assert.notEqual(newSerial, servedSerial);
      assert.equal(await peerSerial(port, root), newSerial, "new connections get the new cert");
      const after = await fetch(`${srv.url}after`, { client: laterClient });
      assert.equal(await after.text(), "hello /after");

      // The stream opened before the swap is still alive and completes.
      release();
      assert.equal((await reader.read()).value, "second\n");
      assert.equal((await reader.read()).done, true);
      assert.ok(logs.some((l) => l.includes("switched to renewed certificate")), logs.join("\n"));
    } finally {
      release();
      streamClient.close();
      laterClient.close();
      await proxy.close();
      await srv.shutdown();
      await pebble.close();
    }
    await srv.finished;
  },
});

/** Serial number of the certificate our HTTPS server presents for DOMAIN. */
function peerSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: DOMAIN, ca: [ca] }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      socket.on("close", () => resolve(serial));
    });
    socket.on("error", reject);
  });
}

/**
 * Runs `fn` with an `unhandledrejection` listener that records instead of crashing, and fails
 * the test if anything was recorded: a failing ACME flow must never leave a rejection unhandled.
 */
async function withoutUnhandledRejections(fn: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const listener = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    seen.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", listener);
  try {
    await fn();
    // One macrotask turn: a rejection dropped during shutdown is reported by then.
    await sleep(0);
  } finally {
    globalThis.removeEventListener("unhandledrejection", listener);
  }
  assert.deepEqual(seen.map(String), [], "unhandled rejections");
}

/**
 * `listen()` in ACME mode for DOMAIN on loopback, as the failure tests use it: fresh store, any
 * free ports, brisk retries; `acme` adds or overrides.
 */
function listenAcme(
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>,
  https: HttpsStatus,
  log: ListenLog,
  acme: Partial<ListenAcmeOptions> & { directoryUrl: string },
) {
  return listen(handler, {
    host: DOMAIN,
    https,
    log,
    acme: {
      store: new CountingStore(),
      hostname: "127.0.0.1",
      httpPort: 0,
      httpsPort: 0,
      retry: { initialMs: 20, maxMs: 80 },
      ...acme,
    },
  });
}

Deno.test("listen ACME: CA unreachable is one classified line per attempt, retried; port 80 and /readyz say why", async () => {
  await withoutUnhandledRejections(async () => {
    const closed = freePort(); // nothing listens: the CA is unreachable
    const https = new HttpsStatus();
    const h = await startHarness({ https });
    const logs: { m: string; level?: string }[] = [];
    const srv = await listenAcme(h.server.fetch, https, (m, level) => logs.push({ m, level }), {
      directoryUrl: `https://127.0.0.1:${closed}/dir`,
    });
    let servingSettled = false;
    srv.serving.then(() => servingSettled = true, () => servingSettled = true);
    try {
      const failure = new RegExp(
        `^acme: certificate for ${DOMAIN.replace(".", "\\.")} failed at account: ` +
          `CA unreachable: 127\\.0\\.0\\.1:${closed}: ECONNREFUSED; next attempt in [\\d.]+ s`,
      );
      // Retried with backoff: several attempts, each one warning line.
      await waitUntil(() => logs.filter((l) => failure.test(l.m)).length >= 3, {
        what: () => logs.map((l) => l.m).join("\n"),
        timeoutMs: 20_000,
      });
      assert.ok(logs.filter((l) => failure.test(l.m)).every((l) => l.level === "warn"));
      assert.ok(logs.every((l) => !/TypeError|Cannot read properties/.test(l.m)), "no internals");
      assert.deepEqual(
        logs.map((l) => l.m).filter((m) => /ordering/.test(m)).slice(0, 1),
        [`acme: ordering a certificate for ${DOMAIN} from https://127.0.0.1:${closed}/dir`],
      );

      // Port 80 keeps answering: challenges, /readyz (why not ready), 503 for the rest.
      const port80 = `http://127.0.0.1:${srv.httpAddr!.port}`;
      const ready = await fetch(`${port80}/readyz`);
      assert.equal(ready.status, 503);
      const body = await ready.json();
      assert.equal(body.ready, false);
      assert.equal(body.mx.test.state, "connected", "the MX is fine: HTTPS is what is missing");
      assert.equal(body.https.state, "waiting for certificate");
      assert.equal(body.https.domain, DOMAIN);
      assert.equal(body.https.lastError, `CA unreachable: 127.0.0.1:${closed}: ECONNREFUSED`);
      assert.ok(Date.parse(body.https.nextAttempt) > 0);
      const other = await fetch(`${port80}/api/contacts`, { redirect: "manual" });
      assert.equal(other.status, 503);
      assert.equal(other.headers.get("retry-after"), "60");
      assert.deepEqual(await other.json(), { error: "waiting for certificate" });
      const challenge = await fetch(`${port80}/.well-known/acme-challenge/unknown`);
      assert.equal(challenge.status, 404);
      await challenge.body?.cancel();
      const health = await fetch(`${port80}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      assert.throws(() => srv.addr, /HTTPS is not serving yet/);
      assert.equal(servingSettled, false, "no HTTPS without a certificate");
    } finally {
      await srv.shutdown();
      await h.close();
    }
    await assert.rejects(srv.serving, /listener shut down/);
  });
});

Deno.test({
  ...needs(
    "pebble",
    "listen ACME + pebble: a failing challenge is 'challenge failed', retried, every step logged",
  ),
  async fn() {
    await withoutUnhandledRejections(async () => {
      // Pebble validates on a port where nothing listens; ours is elsewhere.
      const validationPort = freePort();
      const pebble = await startPebble({ httpPort: validationPort, validitySeconds: 3600 });
      const https = new HttpsStatus();
      const logs: string[] = [];
      const srv = await listenAcme(() => new Response("app"), https, (m) => logs.push(m), {
        directoryUrl: pebble.directoryUrl,
        caCerts: [pebble.apiCert],
      });
      try {
        const failed =
          /^acme: certificate for mxflex\.test failed at validation: challenge failed: .+; next attempt in [\d.]+ s/;
        await waitUntil(() => logs.filter((m) => failed.test(m)).length >= 2, {
          what: () => `${logs.join("\n")}\n${pebble.logs()}`,
          timeoutMs: 20_000,
        });
        const steps = [
          /^acme: ordering a certificate for mxflex\.test from https:\/\/127\.0\.0\.1:\d+\/dir$/,
          /^acme: account \S+ registered at https:\/\/127\.0\.0\.1:\d+$/,
          /^acme: order for mxflex\.test created$/,
          /^acme: HTTP-01 challenge for mxflex\.test published at http:\/\/mxflex\.test\/\.well-known\/acme-challenge\/\S+$/,
          /^acme: using account \S+$/, // the second attempt reuses the account
        ];
        for (const re of steps) {
          assert.ok(logs.some((m) => re.test(m)), `${re}\n${logs.join("\n")}`);
        }
        const view = https.view()!;
        assert.equal(view.state, "waiting for certificate");
        assert.match(view.lastError!, /^challenge failed: /);
        assert.ok(logs.every((m) => !/TypeError|Cannot read properties|PRIVATE KEY/.test(m)));
      } finally {
        await srv.shutdown();
        await pebble.close();
      }
    });
  },
});

Deno.test({
  ...needs(
    "pebble",
    "listen ACME + pebble: renewal failures are logged, counted in /metrics, expiry exported",
  ),
  async fn() {
    await withoutUnhandledRejections(async () => {
      const httpPort = freePort();
      const pebble = await startPebble({ httpPort, validitySeconds: 3600 });
      let pebbleClosed: Promise<void> | undefined;
      const closePebble = () => pebbleClosed ??= pebble.close();
      let offset = 0;
      const https = new HttpsStatus();
      const h = await startHarness({ https });
      const logs: string[] = [];
      const srv = await listenAcme(h.server.fetch, https, (m) => logs.push(m), {
        directoryUrl: pebble.directoryUrl,
        caCerts: [pebble.apiCert],
        httpPort,
        checkEveryMs: 50,
        retry: { initialMs: 20, maxMs: 40 },
        now: () => Date.now() + offset,
      });
      const metrics = async () =>
        await (await h.server.fetch(
          new Request("http://localhost/metrics"),
          {
            remoteAddr: { hostname: "127.0.0.1", port: 1, transport: "tcp" },
            completed: Promise.resolve(),
          } as Deno.ServeHandlerInfo,
        )).text();
      try {
        await srv.serving.catch((err) => {
          throw new Error(`${err}\n${logs.join("\n")}\n${pebble.logs()}`);
        });
        const notAfter = https.notAfter!;
        assert.equal(https.view()!.state, "serving");
        assert.ok(logs.some((m) => /^acme: renewal check for mxflex\.test scheduled at /.test(m)));
        let text = await metrics();
        assert.match(
          text,
          new RegExp(
            `^tls_certificate_expiry_timestamp_seconds ${Math.floor(notAfter.getTime() / 1000)}$`,
            "m",
          ),
        );
        assert.match(text, /^acme_renewal_failures_total 0$/m);
        const ready = await fetch(`http://127.0.0.1:${srv.httpAddr!.port}/readyz`);
        assert.equal(ready.status, 200, "MX connected and a certificate served");
        await ready.body?.cancel();

        // The CA goes away while renewal is due: failures are logged and counted, the site stays up.
        await closePebble();
        offset = 45 * 60_000;
        await waitUntil(() => https.renewalFailures >= 2, {
          what: () => logs.join("\n"),
          timeoutMs: 20_000,
        });
        assert.ok(
          logs.some((m) =>
            /failed at \w+: CA unreachable: .*; still serving the current one; next attempt/
              .test(m)
          ),
          logs.join("\n"),
        );
        text = await metrics();
        const failures = Number(text.match(/^acme_renewal_failures_total (\d+)$/m)?.[1]);
        assert.ok(failures >= 2, text);
        const view = https.view()!;
        assert.equal(view.state, "serving");
        assert.match(view.lastError!, /^CA unreachable: /);
        assert.equal(srv.addr.port > 0, true, "HTTPS still bound");
      } finally {
        offset = 0;
        await srv.shutdown();
        await h.close();
        await closePebble();
      }
    });
  },
});

Deno.test("listen ACME: a rate-limited CA is 'rate limited', and the next attempt honours Retry-After", async () => {
  await withoutUnhandledRejections(async () => {
    // A minimal ACME server (RFC 8555 directory, nonces) that refuses new accounts with 429.
    const cert = await Deno.readTextFile(new URL("./fixtures/mx-cert.pem", import.meta.url));
    const key = await Deno.readTextFile(new URL("./fixtures/mx-key.pem", import.meta.url));
    let accountPosts = 0;
    const ca: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert,
      key,
      onListen() {},
    }, (req): Response => {
      const base = `https://127.0.0.1:${ca.addr.port}`;
      const path = new URL(req.url).pathname;
      const nonce = { "replay-nonce": crypto.randomUUID() };
      if (path === "/dir") {
        return Response.json({
          newNonce: `${base}/nonce`,
          newAccount: `${base}/account`,
          newOrder: `${base}/order`,
        });
      }
      if (path === "/nonce") return new Response(null, { headers: nonce });
      accountPosts++;
      return Response.json({
        type: "urn:ietf:params:acme:error:rateLimited",
        detail: "too many new registrations (10) from this IP address in the last 3h0m0s",
        status: 429,
      }, {
        status: 429,
        headers: { ...nonce, "retry-after": "120", "content-type": "application/problem+json" },
      });
    });
    const https = new HttpsStatus();
    const logs: string[] = [];
    const srv = await listenAcme(() => new Response("app"), https, (m) => logs.push(m), {
      directoryUrl: `https://127.0.0.1:${ca.addr.port}/dir`,
      caCerts: [cert],
    });
    try {
      await waitUntil(() => https.view()?.lastError !== undefined, {
        what: () => logs.join("\n"),
        timeoutMs: 20_000,
      });
      assert.equal(
        https.view()!.lastError,
        "rate limited: too many new registrations (10) from this IP address in the last 3h0m0s",
      );
      const line = logs.find((m) => m.includes("rate limited"))!;
      assert.match(line, /failed at account: rate limited: .*; next attempt in 120 s /, line);
      assert.equal(accountPosts, 1, "acme-client did not retry the 429 by itself");
    } finally {
      await srv.shutdown();
      await ca.shutdown();
    }
  });
});
