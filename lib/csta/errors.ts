/**
 * Every error the CSTA client raises, in one place. All derive from {@link CstaError}, so a
 * caller can tell "the MX side failed" from its own bugs by `instanceof` alone: nothing needs
 * to guess from a `code` property (Deno's own errors carry codes too, e.g. `Deno.errors.NotFound`
 * has `code === "ENOENT"`). Raw `node:net` / `node:tls` socket errors never leave the
 * transport: it wraps them into {@link UnreachableError}, {@link CertificateError} or
 * {@link ConnectionClosedError}, keeping the system code in the message and the original
 * error as `cause`.
 *
 * | class                    | raised when                                               |
 * |--------------------------|-----------------------------------------------------------|
 * | {@link RefusedError}     | the MX answered `CSTAErrorCode`                           |
 * | {@link LoginFailedError} | the MX answered `loginFailed`                             |
 * | {@link ProtocolError}    | a reply this client does not understand                   |
 * | {@link TimeoutError}     | no reply in time ({@link ConnectTimeoutError}: no connect) |
 * | {@link ConnectionClosedError} | the session ended or was never up                    |
 * | {@link UnavailableError} | an operation needs the MX while its session is down       |
 * | {@link BusyError}        | too many requests are waiting for this MX                 |
 * | {@link UnreachableError} | the MX could not be reached (refused, reset, DNS, …)      |
 * | {@link CertificateError} | the MX's certificate is not the one we trust              |
 * | {@link FrameError}       | bytes that violate the frame format                       |
 * | {@link XmlError}         | a payload that is not well-formed XML                     |
 *
 * This module knows nothing about HTTP: `lib/http/mx_errors.ts` maps these to statuses.
 *
 * @example
 * ```ts
 * import { CstaError, RefusedError } from "./errors.ts";
 * try {
 *   await conn.request(payload);
 * } catch (err) {
 *   if (err instanceof RefusedError) console.log("the MX said no:", err.message);
 *   else if (err instanceof CstaError) console.log("MX trouble:", err.name);
 *   else throw err;
 * }
 * ```
 *
 * @module
 */

/**
 * The common base of every CSTA client error. Not raised itself.
 *
 * @example
 * ```ts
 * if (err instanceof CstaError) log.warn(`MX failure: ${err.message}`);
 * ```
 */
export class CstaError extends Error {
  /**
   * @param message what failed; subclasses document whether it is safe to show clients
   * @param options `cause`: the lower-level error, kept for logs
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CstaError";
  }
}

/**
 * The MX answered a command with `CSTAErrorCode`; the message is its character data.
 *
 * @example
 * ```ts
 * throw new RefusedError("URM Denied");
 * ```
 */
export class RefusedError extends CstaError {
  /** @param message the error text from the MX, e.g. "URM Denied" */
  constructor(message: string) {
    super(message);
    this.name = "RefusedError";
  }
}

/**
 * The MX answered with something this client does not understand.
 *
 * @example
 * ```ts
 * throw new ProtocolError("unknown makecall response Foo");
 * ```
 */
export class ProtocolError extends CstaError {
  /** @param message what was unexpected */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * The MX refused a login (`loginFailed`, mx-protocol §2.4). `code` is the MX's own number,
 * not a system error code.
 *
 * @example
 * ```ts
 * const err = new LoginFailedError(1, 11, "631HC", "bad password");
 * err.code; // 1
 * ```
 */
export class LoginFailedError extends CstaError {
  /**
   * @param code the `Code` attribute (no list of codes is known)
   * @param apiVersion the server's `apiversion`
   * @param sn the MX serial number
   * @param message the element text (the reason)
   */
  constructor(
    readonly code: number,
    readonly apiVersion: number,
    readonly sn: string,
    message: string,
  ) {
    super(message);
    this.name = "LoginFailedError";
  }
}

/**
 * An MX reply did not arrive in time. Its message is what the HTTP layer shows.
 *
 * @example
 * ```ts
 * throw new TimeoutError(); // "MX response timeout"
 * ```
 */
export class TimeoutError extends CstaError {
  /** @param message shown to clients */
  constructor(message = "MX response timeout") {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * The connection (TCP + TLS handshake) could not be made in time.
 *
 * @example
 * ```ts
 * throw new ConnectTimeoutError(); // "MX connect timeout"
 * ```
 */
export class ConnectTimeoutError extends TimeoutError {
  constructor() {
    super("MX connect timeout");
    this.name = "ConnectTimeoutError";
  }
}

/**
 * The session ended (socket closed, server `Logout`, protocol error) or was never up.
 *
 * @example
 * ```ts
 * throw new ConnectionClosedError("logout: ServerShutdown");
 * ```
 */
export class ConnectionClosedError extends CstaError {
  /**
   * @param message why the connection is gone
   * @param options `cause`: the socket error, if any
   */
  constructor(message = "MX connection closed", options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionClosedError";
  }
}

/**
 * An operation needs the MX but its session is down (or not ready: e.g. the address book has
 * not been loaded yet).
 *
 * @example
 * ```ts
 * throw new UnavailableError("MX unavailable: address book not loaded yet");
 * ```
 */
export class UnavailableError extends CstaError {
  /** @param message why; shown to clients */
  constructor(message = "MX unavailable") {
    super(message);
    this.name = "UnavailableError";
  }
}

/**
 * Too many requests are waiting for this MX: refuse rather than pile up.
 *
 * @example
 * ```ts
 * throw new BusyError(); // "too many pending MX requests"
 * ```
 */
export class BusyError extends CstaError {
  constructor() {
    super("too many pending MX requests");
    this.name = "BusyError";
  }
}

/**
 * The MX could not be reached or the socket failed while connecting (`ECONNREFUSED`,
 * `ENOTFOUND`, `ECONNRESET`, …). The message names the system code only (the MX's address
 * stays out of client-visible text); the socket error is the `cause`.
 *
 * @example
 * ```ts
 * new UnreachableError("ECONNREFUSED").message; // "MX unreachable: ECONNREFUSED"
 * ```
 */
export class UnreachableError extends CstaError {
  /** The system error code, e.g. `ECONNREFUSED` (`"socket error"` when the socket gave none). */
  readonly reason: string;

  /**
   * @param reason the system error code
   * @param options `cause`: the socket error
   */
  constructor(reason: string, options?: ErrorOptions) {
    super(`MX unreachable: ${reason}`, options);
    this.name = "UnreachableError";
    this.reason = reason;
  }
}

/**
 * The MX's certificate does not match what we trust (pinned fingerprint, trust on first use,
 * or the configured CA).
 *
 * @example
 * ```ts
 * throw new CertificateError("MX certificate fingerprint mismatch: AB:CD:…");
 * ```
 */
export class CertificateError extends CstaError {
  /**
   * @param message what did not match
   * @param options `cause`: the TLS error, if any
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CertificateError";
  }
}

/**
 * Bytes that violate the wire format. The stream cannot be resynchronised.
 *
 * @example
 * ```ts
 * throw new FrameError("bad frame length 3");
 * ```
 */
export class FrameError extends CstaError {
  /** @param message what was wrong with the frame */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * A payload that is not well-formed within the supported XML subset.
 *
 * @example
 * ```ts
 * throw new XmlError("unclosed element <a>");
 * ```
 */
export class XmlError extends CstaError {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "XmlError";
  }
}
