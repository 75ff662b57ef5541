import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import { AcmeManager, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING } from "../lib/listen/acme.ts";
import { type CertStore, DirCertStore, KvCertStore } from "../lib/listen/cert_store.ts";
import { listen } from "../lib/listen/listen.ts";
import { freePort, startLoopbackProxy, startPebble } from "./helpers/pebble.ts";
import { needs } from "./helpers/tools.ts";

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
        if (/keeping the current certificate|renewal check .* failed|failed, keeping/.test(m)) {
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
    const port = srv.addr.port;
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
