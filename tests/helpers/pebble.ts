/**
 * Runs Let's Encrypt's test CA, Pebble (Debian package `pebble`), on loopback
 * for ACME tests, with `pebble-challtestsrv` (same package) as its DNS server
 * so any test domain resolves to 127.0.0.1 during HTTP-01 validation.
 *
 * The Debian package ships no certificates for Pebble's own HTTPS listener, so
 * the repository fixture `tests/fixtures/mx-cert.pem` (self-signed, CA:FALSE,
 * valid for 127.0.0.1/localhost) is used; clients trust it via {@linkcode
 * Pebble.apiCert}.
 *
 * Equivalent manual invocation (ports are free ones picked per run):
 *
 * ```sh
 * pebble-challtestsrv -dns01 127.0.0.1:$DNS -http01 "" -https01 "" -tlsalpn01 "" \
 *   -management 127.0.0.1:$CHALL_MGMT -defaultIPv4 127.0.0.1 -defaultIPv6 ""
 * PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
 *   pebble -config $TMP/pebble-config.json -dnsserver 127.0.0.1:$DNS -strict=false
 * ```
 *
 * @module
 */
import { freePort } from "./free_port.ts";
import { Program } from "./program.ts";
import { waitForUrl } from "./wait.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** Options for {@linkcode startPebble}. */
export interface PebbleOptions {
  /** Port Pebble uses for HTTP-01 validation: where the challenge server listens. */
  httpPort: number;
  /** Lifetime of issued certificates in seconds (Pebble's `certificateValidityPeriod`). */
  validitySeconds?: number;
}

/** A running Pebble + challtestsrv pair. */
export interface Pebble {
  /** ACME directory URL. */
  directoryUrl: string;
  /** Management API base URL (`/roots/0` etc.). */
  managementUrl: string;
  /** PEM that Pebble's own HTTPS endpoints present; pass as `caCerts`. */
  apiCert: string;
  /** The root that issued certificates chain to (regenerated per Pebble run). */
  rootCert(): Promise<string>;
  /** Everything both processes printed so far (for assertion messages). */
  logs(): string;
  /** Stops both processes and removes the temporary config. */
  close(): Promise<void>;
}

/** Starts Pebble and its DNS stub on loopback and waits until the directory answers. */
export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "pebble-" });
  const apiCert = await Deno.readTextFile(new URL("mx-cert.pem", FIXTURES));
  const [acmePort, mgmtPort, dnsPort, challMgmtPort, tlsPort] = [1, 2, 3, 4, 5].map(freePort);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: new URL("mx-cert.pem", FIXTURES).pathname,
      privateKey: new URL("mx-key.pem", FIXTURES).pathname,
      httpPort: opts.httpPort,
      tlsPort, // TLS-ALPN-01 is not used; any closed port will do.
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
      certificateValidityPeriod: opts.validitySeconds ?? 3600,
    },
  };
  const configPath = `${dir}/pebble-config.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));

  const procs: Program[] = [];
  const client = Deno.createHttpClient({ caCerts: [apiCert] });
  const close = async () => {
    client.close();
    await Promise.all(procs.map((p) => p.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const logs = () => procs.map((p) => p.log).join("\n");
  try {
    procs.push(
      Program.spawn([
        "pebble-challtestsrv",
        "-dns01",
        `127.0.0.1:${dnsPort}`,
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        `127.0.0.1:${challMgmtPort}`,
        "-defaultIPv4",
        "127.0.0.1",
        // No AAAA answers: our challenge server binds IPv4 loopback only.
        "-defaultIPv6",
        "",
      ]),
    );
    // Management comes up after the DNS listener, so it doubles as readiness.
    await pebbleReady(`http://127.0.0.1:${challMgmtPort}/`, undefined, procs, logs);
    procs.push(
      Program.spawn([
        "pebble",
        "-config",
        configPath,
        "-dnsserver",
        `127.0.0.1:${dnsPort}`,
        "-strict=false",
      ], {
        env: {
          PEBBLE_VA_NOSLEEP: "1", // validate immediately instead of sleeping 0–15 s
          PEBBLE_WFE_NONCEREJECT: "0", // no random badNonce errors: deterministic runs
          PEBBLE_AUTHZREUSE: "0", // every order runs a fresh HTTP-01 challenge
        },
      }),
    );
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    await pebbleReady(directoryUrl, client, procs, logs);
    const managementUrl = `https://127.0.0.1:${mgmtPort}`;
    return {
      directoryUrl,
      managementUrl,
      apiCert,
      logs,
      close,
      async rootCert() {
        const res = await fetch(`${managementUrl}/roots/0`, { client });
        if (!res.ok) throw new Error(`pebble /roots/0: ${res.status}`);
        return await res.text();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Waits until `url` answers; fails early if a process died. */
function pebbleReady(
  url: string,
  client: Deno.HttpClient | undefined,
  procs: Program[],
  logs: () => string,
): Promise<void> {
  // A bound against hangs, not a timing assertion: start-up normally takes < 1 s.
  return waitForUrl(url, {
    client,
    check: () => {
      if (procs.some((p) => p.exited)) throw new Error(`pebble exited early:\n${logs()}`);
    },
    what: () => `pebble at ${url}:\n${logs()}`,
    timeoutMs: 20_000,
    intervalMs: 50,
  });
}

/** A running {@linkcode startLoopbackProxy}. */
export interface LoopbackProxy {
  /** `http://127.0.0.1:<port>`, for `Deno.createHttpClient({ proxy: { url } })`. */
  url: string;
  /** Closes the listener and every tunnel. */
  close(): Promise<void>;
}

/**
 * A minimal HTTP CONNECT proxy that tunnels `CONNECT <any-name>:<port>` to
 * `127.0.0.1:<port>`. Test domains such as `mxflex.test` do not resolve on
 * this machine; through the tunnel, fetch still sends SNI and verifies the
 * certificate for the real name, end to end.
 */
export function startLoopbackProxy(): LoopbackProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tunnels: Promise<void>[] = [];
  const closeAll = () => {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // already closed by the other side
      }
    }
  };
  const tunnel = async (client: Deno.Conn) => {
    conns.add(client);
    const buf = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await client.read(buf).catch(() => null);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    const port = head.match(/^CONNECT [^\s]+:(\d+) HTTP\/1\.[01]\r\n/)?.[1];
    const enc = new TextEncoder();
    if (!port) {
      await client.write(enc.encode("HTTP/1.1 405 Method Not Allowed\r\n\r\n")).catch(() => {});
      return;
    }
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    conns.add(upstream);
    // The client waits for this reply before its TLS hello: nothing is buffered yet.
    await client.write(enc.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
    await Promise.allSettled([
      client.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(client.writable),
    ]);
  };
  const accepting = (async () => {
    for await (const conn of listener) tunnels.push(tunnel(conn).catch(() => {}));
  })();
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      listener.close();
      await accepting.catch(() => {});
      closeAll();
      await Promise.allSettled(tunnels);
      closeAll();
    },
  };
}
