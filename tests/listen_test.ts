import assert from "node:assert/strict";
import { hostMode, isIpLiteral } from "../lib/listen/host_rule.ts";
import { ListenError } from "../lib/listen/errors.ts";
import { listen, redirectToHttps } from "../lib/listen/listen.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const certFile = new URL("mx-cert.pem", FIXTURES).pathname;
const keyFile = new URL("mx-key.pem", FIXTURES).pathname;

Deno.test("hostMode: the seed's Let's Encrypt rule (mx-protocol §5.9)", () => {
  const table: [string, ReturnType<typeof hostMode>][] = [
    // ACME: a real name with no port, 443 or https.
    ["flex.example.com", { mode: "acme", domain: "flex.example.com", port: 443 }],
    ["flex.example.com:443", { mode: "acme", domain: "flex.example.com", port: 443 }],
    ["flex.example.com:https", { mode: "acme", domain: "flex.example.com", port: 443 }],
    ["Flex.Example.COM.", { mode: "acme", domain: "flex.example.com", port: 443 }],
    ["  flex.example.com  ", { mode: "acme", domain: "flex.example.com", port: 443 }],
    ["intranet", { mode: "acme", domain: "intranet", port: 443 }],
    // A domain with any other port: plain HTTP on that name and port.
    ["flex.example.com:8080", { mode: "http", hostname: "flex.example.com", port: 8080 }],
    ["flex.example.com:http", { mode: "http", hostname: "flex.example.com", port: 80 }],
    // No name: all interfaces.
    [":8080", { mode: "http", hostname: "0.0.0.0", port: 8080 }],
    [":443", { mode: "http", hostname: "0.0.0.0", port: 443 }],
    ["", { mode: "http", hostname: "0.0.0.0", port: 80 }],
    [":", { mode: "http", hostname: "0.0.0.0", port: 80 }],
    // localhost and *.local never get ACME, whatever the port.
    ["localhost", { mode: "http", hostname: "localhost", port: 80 }],
    ["localhost:8080", { mode: "http", hostname: "localhost", port: 8080 }],
    ["localhost:443", { mode: "http", hostname: "localhost", port: 443 }],
    ["LOCALHOST", { mode: "http", hostname: "LOCALHOST", port: 80 }],
    ["app.localhost", { mode: "http", hostname: "app.localhost", port: 80 }],
    ["pbx.local", { mode: "http", hostname: "pbx.local", port: 80 }],
    ["pbx.local:https", { mode: "http", hostname: "pbx.local", port: 443 }],
    ["PBX.LOCAL.", { mode: "http", hostname: "PBX.LOCAL.", port: 80 }],
    // IP literals, v4 and v6 (bracketed or bare).
    ["127.0.0.1", { mode: "http", hostname: "127.0.0.1", port: 80 }],
    ["127.0.0.1:8080", { mode: "http", hostname: "127.0.0.1", port: 8080 }],
    ["192.168.1.10:443", { mode: "http", hostname: "192.168.1.10", port: 443 }],
    ["[::1]", { mode: "http", hostname: "::1", port: 80 }],
    ["[::1]:8080", { mode: "http", hostname: "::1", port: 8080 }],
    ["[2001:db8::1]:443", { mode: "http", hostname: "2001:db8::1", port: 443 }],
    ["::1", { mode: "http", hostname: "::1", port: 80 }],
    ["2001:db8::1", { mode: "http", hostname: "2001:db8::1", port: 80 }],
    ["[::]:0", { mode: "http", hostname: "::", port: 0 }],
    // Not a dotted quad, so a (strange) DNS name.
    ["1.2.3.400", { mode: "acme", domain: "1.2.3.400", port: 443 }],
  ];
  for (const [host, want] of table) {
    assert.deepEqual(hostMode(host), want, `host ${JSON.stringify(host)}`);
  }
});

Deno.test("hostMode rejects malformed ports and brackets", () => {
  for (const host of ["example.com:99999", "example.com:ftp", "localhost:-1", "[::1", "[::1]x"]) {
    assert.throws(() => hostMode(host), TypeError, host);
  }
});

Deno.test("isIpLiteral", () => {
  assert.equal(isIpLiteral("10.0.0.1"), true);
  assert.equal(isIpLiteral("255.255.255.255"), true);
  assert.equal(isIpLiteral("fe80::1%eth0"), true);
  assert.equal(isIpLiteral("10.0.0"), false);
  assert.equal(isIpLiteral("256.0.0.1"), false);
  assert.equal(isIpLiteral("a.b.c.d"), false);
});

Deno.test("redirectToHttps: 301 keeps path and query, answers challenges first", async () => {
  const challenge = (req: Request) =>
    new URL(req.url).pathname === "/.well-known/acme-challenge/t1" ? new Response("ka") : undefined;
  const onTestPort = redirectToHttps("flex.example.com", () => 8443, challenge);
  const r1 = onTestPort(new Request("http://flex.example.com/api/contacts?x=1&y=%20"));
  assert.equal(r1.status, 301);
  assert.equal(r1.headers.get("location"), "https://flex.example.com:8443/api/contacts?x=1&y=%20");
  const r2 = redirectToHttps("flex.example.com", () => 443)(
    new Request("http://flex.example.com/"),
  );
  assert.equal(r2.headers.get("location"), "https://flex.example.com/");
  const r3 = onTestPort(new Request("http://flex.example.com/.well-known/acme-challenge/t1"));
  assert.equal(r3.status, 200);
  assert.equal(await r3.text(), "ka");
});

Deno.test("listen: plain HTTP on a loopback host", async () => {
  let seen: Deno.NetAddr | undefined;
  const srv = await listen((req) => new Response(`hello ${new URL(req.url).pathname}`), {
    host: "127.0.0.1:0",
    onListen: (addr) => seen = addr,
  });
  try {
    assert.equal(srv.addr.hostname, "127.0.0.1");
    assert.deepEqual(seen, srv.addr);
    assert.equal(srv.url, `http://127.0.0.1:${srv.addr.port}/`);
    const res = await fetch(`${srv.url}x`);
    assert.equal(await res.text(), "hello /x");
  } finally {
    await srv.shutdown();
  }
  await srv.finished;
});

Deno.test("listen: static TLS serves HTTP/2 via ALPN", async () => {
  const srv = await listen(() => new Response("secure"), {
    host: "127.0.0.1:0",
    tls: { certFile, keyFile },
  });
  // http1: false makes any non-h2 negotiation a request failure.
  const client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(certFile)],
    http1: false,
    http2: true,
  });
  try {
    assert.equal(srv.url, `https://127.0.0.1:${srv.addr.port}/`);
    const res = await fetch(`https://localhost:${srv.addr.port}/`, { client });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "secure");
    // The same listener also rejects a client that does not trust the cert.
    await assert.rejects(fetch(`https://localhost:${srv.addr.port}/`));
  } finally {
    client.close();
    await srv.shutdown();
  }
});

Deno.test("listen: aborting the signal shuts the server down", async () => {
  const ac = new AbortController();
  const srv = await listen(() => new Response("ok"), { host: "127.0.0.1:0", signal: ac.signal });
  const res = await fetch(srv.url);
  await res.body?.cancel();
  ac.abort();
  await srv.finished;
  await assert.rejects(fetch(srv.url));
});

Deno.test("listen: unreadable TLS files fail without leaking a server, naming the file", async () => {
  await assert.rejects(
    listen(() => new Response(), {
      host: "127.0.0.1:0",
      tls: { certFile: "/nonexistent/cert.pem", keyFile },
    }),
    (err) =>
      err instanceof ListenError &&
      err.message === "cannot read the TLS certificate /nonexistent/cert.pem: no such file",
  );
  await assert.rejects(
    listen(() => new Response(), { host: "127.0.0.1:0", tls: { certFile: keyFile, keyFile } }),
    (err) =>
      err instanceof ListenError &&
      err.message.startsWith(`the TLS certificate ${keyFile} or key ${keyFile} is not usable: `),
  );
});

Deno.test("listen: a port in use is a ListenError naming the address", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr as Deno.NetAddr;
  try {
    await assert.rejects(
      listen(() => new Response(), { host: `127.0.0.1:${port}` }),
      (err) =>
        err instanceof ListenError &&
        err.message ===
          `cannot listen on 127.0.0.1:${port}: address already in use (another program holds the port)`,
    );
  } finally {
    taken.close();
  }
});
