/**
 * Opens the byte stream to an MX: TLS (the only thing real MX servers speak) or plain TCP
 * (tests and benchmarks).
 *
 * MX servers present self-signed certificates addressed by bare IP, so ordinary verification
 * cannot work (mx-protocol §7.13). We use `node:tls` because it can skip chain verification
 * for this one socket and still hands us the peer certificate, which lets us apply trust on
 * first use: record the SHA-256 fingerprint the first time and refuse a different one later,
 * unless the operator pins a fingerprint or gives a CA file.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import {
  CertificateError,
  ConnectionClosedError,
  ConnectTimeoutError,
  NotAnMxError,
  UnreachableError,
} from "./errors.ts";

/** How to authenticate the MX's certificate. */
export interface MxTlsOptions {
  /** PEM CA certificates: when set, normal chain verification is done (host name is not checked). */
  ca?: string[];
  /** Expected SHA-256 fingerprint ("AB:CD:…" or plain hex, any case). */
  fingerprint?: string;
  /**
   * Trust-on-first-use memory: called with the fingerprint seen; returns false to refuse.
   * Ignored when `fingerprint` or `ca` is set.
   */
  tofu?: (fingerprint: string) => boolean;
}

/** Options for {@link openTransport}. */
export interface TransportOptions {
  hostname: string;
  port: number;
  /** `false` = plain TCP (tests only); otherwise TLS with these options. */
  tls: MxTlsOptions | false;
  /** Connect (TCP + TLS handshake) timeout; default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /**
   * Aborting gives up a connect in progress at once (the socket is destroyed and the promise
   * rejects with {@link ConnectionClosedError}); ignored once connected.
   */
  signal?: AbortSignal;
}

/**
 * Connect timeout when none is given (the config's `connectTimeoutMs` default too): an MX
 * answers a TLS handshake in milliseconds; 5 s allows a slow link and keeps a login against an
 * MX that accepts TCP but says nothing well under 10 s.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * A connected byte stream with just what the CSTA connection needs. Socket errors reach the
 * close receiver as a {@link ConnectionClosedError}, never raw.
 */
export interface Transport {
  /** Sends bytes; order is preserved. */
  write(bytes: Uint8Array): void;
  /** Registers the single data receiver. */
  onData(cb: (chunk: Uint8Array) => void): void;
  /** Registers the single close receiver; `err` is set for abnormal ends. */
  onClose(cb: (err?: Error) => void): void;
  /** Closes the stream; pending writes are flushed first. */
  close(): void;
  /** Destroys the stream at once. */
  destroy(): void;
  /** SHA-256 fingerprint of the peer certificate (TLS only). */
  readonly fingerprint?: string;
}

/** The system error code of a `node:net` / `node:tls` error, if it has one. */
function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code ? code : undefined;
}

// OpenSSL / rustls verification failures as node:tls reports them (only possible when a `ca`
// is configured: otherwise the chain is not checked and the fingerprint decides).
const CERT_CODES =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SIGNATURE|UnknownIssuer/i;

// What node:tls reports when the peer's first bytes are not a TLS record.
const NOT_TLS = /WRONG_VERSION_NUMBER|InvalidContentType|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL/;

/**
 * Wraps a socket error raised before the session was up into a CSTA error: a peer that does
 * not speak TLS becomes {@link NotAnMxError}, a certificate
 * verification failure becomes {@link CertificateError}, anything else
 * {@link UnreachableError}; the system code is kept in the message, the error as `cause`.
 *
 * @example
 * ```ts
 * connectError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:7778"), { code: "ECONNREFUSED" }))
 *   .message; // "MX unreachable: ECONNREFUSED"
 * ```
 */
export function connectError(
  err: unknown,
): CertificateError | UnreachableError | NotAnMxError {
  if (
    err instanceof CertificateError || err instanceof UnreachableError ||
    err instanceof NotAnMxError
  ) return err;
  const code = codeOf(err);
  const text = err instanceof Error ? err.message : String(err);
  // A TLS client hello answered by something that is not TLS (HTTP, an SSH banner, …).
  if (NOT_TLS.test(code ?? "") || NOT_TLS.test(text)) {
    return new NotAnMxError(`the far end does not speak TLS (${code ?? "no TLS"})`, {
      cause: err,
    });
  }
  if (CERT_CODES.test(code ?? "") || CERT_CODES.test(text)) {
    return new CertificateError(`MX certificate rejected: ${code ?? "verification failed"}`, {
      cause: err,
    });
  }
  return new UnreachableError(code ?? "socket error", { cause: err });
}

/**
 * Wraps a socket error of an established session (`ECONNRESET`, `EPIPE`, …) into
 * {@link ConnectionClosedError}, keeping the system code in the message.
 *
 * @example
 * ```ts
 * lostError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })).message;
 * // "MX connection lost: ECONNRESET"
 * ```
 */
export function lostError(err: unknown): ConnectionClosedError {
  if (err instanceof ConnectionClosedError) return err;
  return new ConnectionClosedError(`MX connection lost: ${codeOf(err) ?? "socket error"}`, {
    cause: err,
  });
}

/**
 * Normalises a fingerprint to upper-case colon-separated hex.
 *
 * @example
 * ```ts
 * normalizeFingerprint("ab12cd"); // "AB:12:CD"
 * ```
 */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[^0-9a-fA-F]/g, "").toUpperCase();
  return hex.match(/.{2}/g)?.join(":") ?? "";
}

/**
 * Connects to the MX.
 *
 * @example
 * ```ts
 * const t = await openTransport({ hostname: "127.0.0.1", port: 7778, tls: {} });
 * ```
 */
export function openTransport(opts: TransportOptions): Promise<Transport> {
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise<Transport>((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new ConnectionClosedError("connect aborted"));
    let sock: net.Socket;
    const tlsOpts = opts.tls;
    try {
      if (tlsOpts === false) {
        sock = net.connect({ host: opts.hostname, port: opts.port });
      } else {
        sock = tls.connect({
          host: opts.hostname,
          port: opts.port,
          // Chain checked only when the operator gave a CA; otherwise TOFU / pin below.
          rejectUnauthorized: !!tlsOpts.ca?.length,
          ca: tlsOpts.ca,
          // MX servers are addressed by IP and their certificates rarely name it.
          checkServerIdentity: () => undefined,
        });
      }
    } catch (err) {
      // e.g. an invalid port or a malformed CA: still one of our errors, never a raw one.
      return reject(connectError(err));
    }
    sock.setNoDelay(true);
    // Like the Go dialer: OS keep-alive every 60 s.
    sock.setKeepAlive(true, 60_000);
    let settled = false;
    const onAbort = () => giveUp(new ConnectionClosedError("connect aborted"));
    const giveUp = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => giveUp(new ConnectTimeoutError()), timeoutMs);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const fail = (err: Error) => giveUp(connectError(err));
    sock.once("error", fail);
    const ready = () => {
      if (settled) return;
      let fingerprint: string | undefined;
      if (tlsOpts !== false) {
        const peer = (sock as tls.TLSSocket).getPeerCertificate();
        fingerprint = peer?.fingerprint256 ? normalizeFingerprint(peer.fingerprint256) : undefined;
        if (!fingerprint) return fail(new CertificateError("MX presented no certificate"));
        if (tlsOpts.fingerprint) {
          if (normalizeFingerprint(tlsOpts.fingerprint) !== fingerprint) {
            return fail(
              new CertificateError(`MX certificate fingerprint mismatch: ${fingerprint}`),
            );
          }
        } else if (!tlsOpts.ca?.length && tlsOpts.tofu && !tlsOpts.tofu(fingerprint)) {
          return fail(
            new CertificateError(`MX certificate changed (now ${fingerprint}); refusing`),
          );
        }
      }
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      sock.off("error", fail);
      resolve(wrap(sock, fingerprint));
    };
    sock.once(tlsOpts === false ? "connect" : "secureConnect", ready);
  });
}

function wrap(sock: net.Socket, fingerprint: string | undefined): Transport {
  let closeCb: ((err?: Error) => void) | undefined;
  let lastErr: Error | undefined;
  let closed = false;
  sock.on("error", (e: Error) => {
    lastErr = e;
  });
  sock.on("close", () => {
    if (closed) return;
    closed = true;
    closeCb?.(lastErr && lostError(lastErr));
  });
  return {
    fingerprint,
    write(bytes) {
      if (!sock.destroyed) sock.write(bytes);
    },
    onData(cb) {
      sock.on("data", (d: Uint8Array) => cb(d));
    },
    onClose(cb) {
      closeCb = cb;
    },
    close() {
      sock.end();
      // A peer that never closes its side must not keep us waiting.
      Deno.unrefTimer(setTimeout(() => sock.destroy(), 2_000) as unknown as number);
    },
    destroy() {
      sock.destroy();
    },
  };
}
