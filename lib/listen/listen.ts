/**
 * Starts the HTTP side of MXFlex in one of three modes, chosen by the `host`
 * setting (mx-protocol §5.9, see {@linkcode hostMode}). Every mode serves through
 * `Deno.serve` (hyper): HTTP/1.1 on plain HTTP, HTTP/2 or HTTP/1.1 by ALPN with TLS.
 *
 * - **plain HTTP** on `name:port` (localhost, IPs, `*.local`, other ports);
 * - **static TLS** from certificate/key files (HTTP/2 via ALPN);
 * - **ACME**: a port-80 server answers HTTP-01 challenges and redirects
 *   everything else to HTTPS, then HTTPS with HTTP/2 on 443 using a
 *   certificate obtained and renewed by {@linkcode AcmeManager}.
 *
 * Before the first certificate (ACME mode): `listen()` returns once port 80
 * is bound and port 443 was found free; port 80 answers challenges, `/healthz`
 * and `/readyz` (which says why HTTPS is not ready) and 503 `waiting for
 * certificate` with `Retry-After` to everything else; 443 is bound as soon as
 * a certificate is there (`serving` resolves). Failed attempts are retried with
 * backoff (see {@linkcode AcmeManager.start}) and recorded in the
 * {@linkcode HttpsStatus} passed as `https`.
 *
 * Start-up mistakes (a port in use or below 1024 without permission, an
 * address the host does not have, an unreadable TLS file) reject with a
 * {@linkcode ListenError} whose message names the address or file and why.
 *
 * Certificate swap on renewal: `Deno.serve` cannot change the certificate of a
 * running server. Options examined on Deno 2.9:
 *
 * - `reusePort: true` (start the new server beside the old one) needs
 *   `--unstable-net` for TLS listeners and, without it, exits the process
 *   (code 70) instead of throwing — too dangerous for a timer-driven swap;
 * - a per-handshake certificate resolver exists only as an internal symbol
 *   (`Deno[Deno.internal].resolverSymbol`) and would also need the internal
 *   `serveHttpOnListener`, so it may vanish in any release.
 *
 * So a renewal gracefully shuts the old server down (its listening socket
 * closes; accepted connections and their open streams, e.g. SSE, keep running
 * with the old, still valid certificate until they end) and immediately binds
 * a new `Deno.serve` with the new certificate on the same port, retrying while
 * the old socket is still being closed (typically one event-loop turn).
 * Connections attempted inside that gap are refused and retried by clients.
 * Only stable APIs are used and no flags are needed.
 *
 * @module
 */

import type { AcmeManager } from "./acme.ts";
import { type CertStore, DirCertStore } from "./cert_store.ts";
import { bindError, fileError, ListenError } from "./errors.ts";
import { errorResponse } from "../http/errors.ts";
import { hostMode } from "./host_rule.ts";
import { HttpsStatus } from "./https_status.ts";

/** A request handler as accepted by `Deno.serve`. */
export type Handler = (
  req: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/** A diagnostic sink; `level` is "info" unless given. Never receives key material. */
export type ListenLog = (message: string, level?: "info" | "warn") => void;

/** ACME settings for {@linkcode listen}; used only when the host rule picks ACME. */
export interface ListenAcmeOptions {
  /** Account contact address. */
  email?: string;
  /** ACME directory; default Let's Encrypt production. */
  directoryUrl?: string;
  /** Certificate cache; default `DirCertStore("letsEncrypt.cache")` (the seed's cache dir). */
  store: CertStore;
  /** Extra roots to trust for the ACME server itself (Pebble in tests). */
  caCerts?: string[];
  /** Port of the challenge/redirect server; default 80. */
  httpPort?: number;
  /** Port of the HTTPS server; default 443 (tests override it). */
  httpsPort?: number;
  /** Address both servers bind; default all IPv4 interfaces (`0.0.0.0`). */
  hostname?: string;
  /** See {@linkcode AcmeOptions.renewBeforeDays}. */
  renewBeforeDays?: number;
  /** How often renewal is checked; default 12 h. */
  checkEveryMs?: number;
  /** Backoff after a failed attempt; default {@linkcode ACME_RETRY} (1 min doubling to 1 h). */
  retry?: { initialMs?: number; maxMs?: number };
  /** Clock for renewal decisions (tests). */
  now?: () => number;
  /** Called after the HTTPS server switched to a renewed certificate. */
  onCertificate?: (c: { cert: string; notAfter: Date }) => void;
}

/** Options for {@linkcode listen}. */
export interface ListenOptions {
  /** The configured `host`, e.g. `"localhost:8080"`, `":8080"`, `"flex.example.com"`. */
  host: string;
  /** Serve HTTPS with these PEM files instead of plain HTTP or ACME. */
  tls?: { certFile: string; keyFile: string };
  /** ACME settings; when omitted and needed, defaults apply. */
  acme?: ListenAcmeOptions;
  /** Where ACME mode records its state (for `/readyz` and `/metrics`). */
  https?: HttpsStatus;
  /** Aborting shuts everything down (like `shutdown()`). */
  signal?: AbortSignal;
  /** Called once with the address of the main (HTTP or HTTPS) server. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Diagnostic sink; never receives key material. */
  log?: ListenLog;
  /**
   * Bind with `SO_REUSEPORT`, so several instances share the port and the kernel spreads new
   * connections over them (Linux; see {@linkcode checkReusePort}).
   */
  reusePort?: boolean;
}

/** A running listener. */
export interface Listening {
  /**
   * Address of the main server (the HTTPS one in TLS/ACME modes). In ACME mode
   * it exists once `serving` resolved; reading it earlier throws.
   */
  readonly addr: Deno.NetAddr;
  /** Address of the port-80 challenge/redirect server (ACME mode only). */
  httpAddr?: Deno.NetAddr;
  /** Public base URL, e.g. `https://flex.example.com/` or `http://localhost:8080/`. */
  readonly url: string;
  /**
   * Resolves with {@linkcode addr} once the main server serves: at once, except
   * in ACME mode, where that is when the first certificate is there. Rejects
   * if the listener shuts down first.
   */
  serving: Promise<Deno.NetAddr>;
  /** Stops renewal and all servers, waiting for in-flight requests. */
  shutdown(): Promise<void>;
  /** Settles when everything has shut down. */
  finished: Promise<void>;
}

/** Paths port 80 answers from the application in ACME mode (no secrets travel there). */
const PORT80_APP_PATHS = new Set(["/healthz", "/readyz"]);

/**
 * Starts serving `handler` according to `opts.host` (see module docs).
 * @throws {ListenError} naming the address or file when a port or TLS file is unusable
 *
 * @example
 * ```ts
 * const srv = await listen(app.fetch, { host: "flex.example.com", acme: { store } });
 * console.log(`serving ${srv.url}`);
 * ```
 */
export async function listen(handler: Handler, opts: ListenOptions): Promise<Listening> {
  const mode = hostMode(opts.host);
  if (opts.reusePort) checkReusePort();
  const reusePort = opts.reusePort === true;
  const log: ListenLog = opts.log ?? (() => {});
  const group = new ServerGroup();
  const serving = Promise.withResolvers<Deno.NetAddr>();
  serving.promise.catch(() => {}); // nobody has to wait for it
  let acmeManager: AcmeManager | undefined;
  let httpAddr: Deno.NetAddr | undefined;
  let url: () => string;

  try {
    if (opts.tls) {
      const hostname = mode.mode === "http" ? mode.hostname : "0.0.0.0";
      const [cert, key] = await Promise.all([
        Deno.readTextFile(opts.tls.certFile).catch((e) => {
          throw fileError(e, "certificate", opts.tls!.certFile);
        }),
        Deno.readTextFile(opts.tls.keyFile).catch((e) => {
          throw fileError(e, "key", opts.tls!.keyFile);
        }),
      ]);
      try {
        group.current = bind(handler, { hostname, port: mode.port, cert, key, reusePort });
      } catch (err) {
        if (!(err instanceof Deno.errors.InvalidData)) throw err;
        throw new ListenError(
          `the TLS certificate ${opts.tls.certFile} or key ${opts.tls.keyFile} is not usable: ` +
            err.message,
          opts.tls.certFile,
          { cause: err },
        );
      }
      const name = mode.mode === "acme" ? mode.domain : hostname;
      url = () => baseUrl("https", name, group.addr.port);
      serving.resolve(group.addr);
    } else if (mode.mode === "http") {
      group.current = bind(handler, { hostname: mode.hostname, port: mode.port, reusePort });
      url = () => baseUrl("http", mode.hostname, group.addr.port);
      serving.resolve(group.addr);
    } else {
      const a = opts.acme ?? { store: new DirCertStore("letsEncrypt.cache") };
      const https = opts.https ?? new HttpsStatus();
      // acme-client and its X.509 stack (~29 MB resident) are loaded only in ACME mode.
      const { AcmeManager } = await import("./acme.ts");
      acmeManager = new AcmeManager({
        domain: mode.domain,
        email: a.email,
        directoryUrl: a.directoryUrl,
        store: a.store,
        caCerts: a.caCerts,
        renewBeforeDays: a.renewBeforeDays,
        now: a.now,
        log: (m) => log(m, /failed|ignoring/.test(m) ? "warn" : "info"),
      });
      const acme = serveAcme(handler, a, acmeManager, group, https, serving, log);
      httpAddr = acme.httpAddr;
      url = acme.url;
    }
  } catch (err) {
    acmeManager?.stop();
    await group.shutdown();
    throw err;
  }

  const shutdown = async () => {
    acmeManager?.stop();
    serving.reject(new Error("listener shut down"));
    await group.shutdown();
  };
  opts.signal?.addEventListener("abort", () => void shutdown(), { once: true });
  if (opts.signal?.aborted) void shutdown();
  if (!httpAddr) opts.onListen?.(group.addr);
  else serving.promise.then((addr) => opts.onListen?.(addr), () => {});
  return {
    get addr() {
      return group.addr;
    },
    httpAddr,
    get url() {
      return url();
    },
    serving: serving.promise,
    shutdown,
    finished: group.finished,
  };
}

/**
 * ACME mode: the port-80 server now, HTTPS once the first certificate is
 * there, renewal with certificate swap. Servers are registered in `group` as
 * soon as they exist, so a failure anywhere is cleaned up by the caller.
 */
function serveAcme(
  handler: Handler,
  a: ListenAcmeOptions,
  manager: AcmeManager,
  group: ServerGroup,
  https: HttpsStatus,
  serving: PromiseWithResolvers<Deno.NetAddr>,
  log: ListenLog,
): { httpAddr: Deno.NetAddr; url: () => string } {
  const domain = manager.domain;
  const hostname = a.hostname ?? "0.0.0.0";
  let publicPort = a.httpsPort ?? 443;
  // 443 cannot be bound before there is a certificate; find out now whether it could be.
  if (publicPort !== 0) {
    try {
      Deno.listen({ hostname, port: publicPort }).close();
    } catch (err) {
      throw bindError(err, hostname, publicPort);
    }
  }
  https.begin(domain);
  // Port 80 first: the CA validates HTTP-01 against it during the order. The
  // redirect needs the final HTTPS port, known only after binding when
  // httpsPort is 0 (tests), hence the late-bound getter.
  const redirect = redirectToHttps(domain, () => publicPort, manager.challengeResponder());
  const http = bind((req, info) => {
    const path = new URL(req.url).pathname;
    if (PORT80_APP_PATHS.has(path)) return handler(req, info);
    if (group.current || path.startsWith("/.well-known/acme-challenge/")) return redirect(req);
    return errorResponse(503, "waiting for certificate", { "Retry-After": "60" });
  }, { hostname, port: a.httpPort ?? 80 });
  group.extra.push(http);
  let served: string | undefined;
  manager.start(async (attempt) => {
    const c = attempt.certificate;
    if (c && !group.current) {
      // The first certificate: HTTPS starts.
      try {
        group.current = bind(handler, { hostname, port: publicPort, ...pems(c) });
      } catch (err) {
        throw bindError(err, hostname, publicPort);
      }
      publicPort = group.addr.port;
      served = c.cert;
      log(`https: serving ${baseUrl("https", domain, publicPort)}`);
      serving.resolve(group.addr);
    } else if (c && c.cert !== served) {
      // Check the PEMs before the old server is touched, so a bad
      // certificate never takes the site down.
      try {
        Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...pems(c) }).close();
      } catch (err) {
        log(`https: keeping the current certificate: ${errorText(err)}`, "warn");
        return;
      }
      const swapped = await group.replace(
        () => serve(handler, { hostname, port: publicPort, ...pems(c) }),
        (m) => log(`https: ${m}`, "warn"),
      );
      if (!swapped) return;
      served = c.cert;
      log(`https: switched to renewed certificate for ${domain}`);
      a.onCertificate?.({ cert: c.cert, notAfter: c.notAfter });
    }
    if (c) https.serving(c.notAfter, attempt.next);
    if (attempt.error) https.failed(attempt.error.message, attempt.next);
  }, { checkEveryMs: a.checkEveryMs, retry: a.retry });
  return { httpAddr: http.addr, url: () => baseUrl("https", domain, publicPort) };
}

/** Only the PEM fields (never spread key material into anything logged). */
function pems(c: { cert: string; key: string }): { cert: string; key: string } {
  return { cert: c.cert, key: c.key };
}

/**
 * The port-80 handler in ACME mode: ACME challenges first, then a 301 to the
 * same path and query on `https://domain[:port]`.
 *
 * @example
 * ```ts
 * const port80 = redirectToHttps("mxflex.example.com", () => 443);
 * port80(new Request("http://mxflex.example.com/api?x=1")).headers.get("location");
 * // "https://mxflex.example.com/api?x=1"
 * ```
 */
export function redirectToHttps(
  domain: string,
  httpsPort: () => number,
  challenge?: (req: Request) => Response | undefined,
): (req: Request) => Response {
  return (req) => {
    const answer = challenge?.(req);
    if (answer) return answer;
    const { pathname, search } = new URL(req.url);
    const port = httpsPort();
    const location = `https://${domain}${port === 443 ? "" : `:${port}`}${pathname}${search}`;
    return new Response(null, { status: 301, headers: { location } });
  };
}

interface ServeOpts {
  hostname: string;
  port: number;
  cert?: string;
  key?: string;
  reusePort?: boolean;
}

/**
 * Throws unless `reusePort` can work here. On Deno 2.9.6 `Deno.serve({reusePort: true})`, plain
 * or TLS, needs `--unstable-net`; without it the process *exits* (code 70) instead of throwing,
 * so this check comes first. `--unstable-net` is detected by the API it unlocks
 * (`Deno.listenDatagram`). The option is honoured on Linux (the kernel balances new
 * connections across the sockets); elsewhere Deno ignores it and the second bind fails.
 *
 * @example
 * ```ts
 * checkReusePort(); // throws "reusePort needs --unstable-net" without the flag
 * ```
 */
export function checkReusePort(): void {
  if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    throw new Error("sharing the port (reusePort) needs deno run --unstable-net");
  }
}

/** {@linkcode serve} at start-up: a failure is a {@linkcode ListenError} naming the address. */
function bind(handler: Handler, o: ServeOpts): Deno.HttpServer<Deno.NetAddr> {
  try {
    return serve(handler, o);
  } catch (err) {
    if (err instanceof Deno.errors.InvalidData) throw err; // bad PEM: the caller names the files
    throw bindError(err, o.hostname, o.port);
  }
}

/** Deno.serve without its default "Listening on" console line. */
function serve(handler: Handler, o: ServeOpts): Deno.HttpServer<Deno.NetAddr> {
  const base = {
    hostname: o.hostname,
    port: o.port,
    onListen: () => {},
    ...(o.reusePort ? { reusePort: true } : {}),
  };
  if (o.cert === undefined || o.key === undefined) return Deno.serve(base, handler);
  return Deno.serve({ ...base, cert: o.cert, key: o.key }, handler);
}

/** What the group needs of a server (a `Deno.HttpServer`). */
type RunningServer = Pick<Deno.HttpServer<Deno.NetAddr>, "addr" | "shutdown">;

/** Tracks the active main server, servers being retired, and auxiliary servers. */
class ServerGroup {
  current?: RunningServer;
  extra: RunningServer[] = [];
  #retiring = new Map<RunningServer, Promise<void>>();
  #done = Promise.withResolvers<void>();
  #shutdown?: Promise<void>;

  get addr(): Deno.NetAddr {
    if (!this.current) throw new Error("HTTPS is not serving yet (no certificate)");
    return this.current.addr;
  }

  get finished(): Promise<void> {
    return this.#done.promise;
  }

  /**
   * Replaces the current server by `make()` on the same port (see module
   * docs). Returns false when the group shut down meanwhile.
   */
  async replace(
    make: () => RunningServer,
    log: (m: string) => void,
  ): Promise<boolean> {
    const prev = this.current;
    if (!prev || this.#shutdown) return false;
    this.#retire(prev);
    for (let attempt = 0;; attempt++) {
      if (this.#shutdown) return false;
      try {
        this.current = make();
        return true;
      } catch (err) {
        // AddrInUse is expected: the old socket closes asynchronously. Anything
        // else (or another process holding the port) is logged once, and we
        // keep trying: giving up would leave the site without a listener.
        if (attempt === 20 || (attempt === 0 && !(err instanceof Deno.errors.AddrInUse))) {
          log(`rebinding port ${prev.addr.port}: ${err instanceof Error ? err.message : err}`);
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(2 ** attempt, 1000)));
    }
  }

  #retire(server: RunningServer): void {
    if (!this.#retiring.has(server)) this.#retiring.set(server, server.shutdown());
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      for (const s of [...this.extra, ...(this.current ? [this.current] : [])]) this.#retire(s);
      await Promise.all(this.#retiring.values());
      this.#done.resolve();
    })();
    return this.#shutdown;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function baseUrl(scheme: "http" | "https", host: string, port: number): string {
  const name = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  const shown = name.includes(":") ? `[${name}]` : name;
  const standard = (scheme === "http" && port === 80) || (scheme === "https" && port === 443);
  return `${scheme}://${shown}${standard ? "" : `:${port}`}/`;
}
