/**
 * The far end is not an MX: an HTTP server, HTTPS, an SSH banner, TLS to a plain port. The log,
 * `/readyz` and a login say what it looks like ("not an MX: received HTTP"), never
 * "bad frame length 1213486160".
 */
import assert from "node:assert/strict";
import { CERT, DMITRY, KEY, startHarness } from "./helpers/harness.ts";
import { recordingLogger } from "./helpers/recording_logger.ts";
import { waitUntil } from "./helpers/wait.ts";

/** A TCP server that sends `banner` to everyone who connects (an SSH daemon, say). */
function bannerServer(banner: string): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const loop = (async () => {
    for await (const c of listener) {
      conns.push(c);
      c.write(new TextEncoder().encode(banner)).catch(() => {});
      c.readable.pipeTo(new WritableStream()).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed already
        }
      }
      await loop;
    },
  };
}

const cases: {
  name: string;
  start: () => { port: number; close(): Promise<void> };
  tls: Record<string, unknown>;
  error: string;
}[] = [
  {
    name: "a plain HTTP server, spoken to with TLS",
    start: () => {
      const s = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        () => new Response("hi"),
      );
      return { port: s.addr.port, close: () => s.shutdown() };
    },
    tls: {},
    error: "not an MX: the far end does not speak TLS (ERR_SSL_WRONG_VERSION_NUMBER)",
  },
  {
    name: "an HTTPS server",
    start: () => {
      const s = Deno.serve(
        { hostname: "127.0.0.1", port: 0, cert: CERT, key: KEY, onListen() {} },
        () => new Response("hi"),
      );
      return { port: s.addr.port, close: () => s.shutdown() };
    },
    tls: {},
    error: 'not an MX: received HTTP ("HTTP/1.1 400 Bad Request")',
  },
  {
    name: "an SSH daemon on a plain port",
    start: () => bannerServer("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
    tls: { plain: true },
    error: 'not an MX: received an SSH banner ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")',
  },
];

for (const c of cases) {
  Deno.test(`not an MX: ${c.name} is named in the log, /readyz and the login's answer`, async () => {
    const far = c.start();
    const log = recordingLogger();
    const h = await startHarness({
      waitReady: false,
      log,
      config: {
        mx: {
          test: {
            addr: `127.0.0.1:${far.port}`,
            login: "server",
            password: "password",
            tls: c.tls,
          },
        },
      },
    });
    try {
      const mx = h.server.sessions.get("test")!;
      await waitUntil(() => mx.lastError !== "", { what: "the first connect attempt" });
      assert.equal(mx.lastError, c.error);
      const line = log.lines.find((l) => l.includes(c.error));
      assert.match(
        line ?? "",
        new RegExp(`^warn mx test: MX connect to 127\\.0\\.0\\.1:${far.port} failed: not an MX`),
        log.lines.join("\n"),
      );
      assert.ok(log.lines.every((l) => !/bad frame length/.test(l)), log.lines.join("\n"));
      const ready = await (await fetch(`${h.url}/readyz`)).json();
      assert.equal(ready.mx.test.error, c.error);
      const login = await fetch(`${h.url}/api/login`, {
        method: "POST",
        body: new URLSearchParams({ login: DMITRY.login, password: DMITRY.password }),
      });
      assert.equal(login.status, 503);
      assert.deepEqual(await login.json(), { error: c.error });
    } finally {
      await h.close();
      await far.close();
    }
  });
}
