/**
 * Why the HTTP side could not start, in one line an operator can act on: the address or file
 * and the cause, never a stack trace (`main.ts` prints the message and exits with code 2).
 *
 * @example
 * ```ts
 * try {
 *   await listen(handler, { host: "127.0.0.1:8080" });
 * } catch (err) {
 *   if (err instanceof ListenError) console.error(err.message);
 *   // cannot listen on 127.0.0.1:8080: address already in use (another program holds the port)
 * }
 * ```
 *
 * @module
 */

/**
 * A bind or TLS-file failure of {@link listen}; the message names the address or file.
 *
 * @example
 * ```ts
 * throw new ListenError("cannot listen on 0.0.0.0:80: permission denied", "0.0.0.0:80");
 * ```
 */
export class ListenError extends Error {
  /** The address (`host:port`) or file path that failed. */
  readonly target: string;

  /**
   * @param message the whole line, naming `target` and the cause
   * @param target the address or path
   * @param options `cause`: the runtime's error
   */
  constructor(message: string, target: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListenError";
    this.target = target;
  }
}

/**
 * Wraps a failure to bind `hostname:port` (what `Deno.serve` or `Deno.listen` threw).
 *
 * @example
 * ```ts
 * bindError(new Deno.errors.AddrInUse("Address already in use"), "0.0.0.0", 80).message;
 * // "cannot listen on 0.0.0.0:80: address already in use (another program holds the port)"
 * ```
 */
export function bindError(err: unknown, hostname: string, port: number): ListenError {
  const addr = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  let why: string;
  if (err instanceof Deno.errors.AddrInUse) {
    why = "address already in use (another program holds the port)";
  } else if (err instanceof Deno.errors.PermissionDenied) {
    why = port < 1024
      ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
      : "permission denied";
  } else if (err instanceof Deno.errors.AddrNotAvailable) {
    why = "this host has no such address";
  } else if (/lookup address information/i.test(errorText(err))) {
    why = "the host name does not resolve";
  } else {
    why = errorText(err);
  }
  return new ListenError(`cannot listen on ${addr}: ${why}`, addr, { cause: err });
}

/**
 * Wraps a failure to read a TLS file (`what`: "certificate" or "key").
 *
 * @example
 * ```ts
 * fileError(new Deno.errors.NotFound("…"), "certificate", "/etc/mxflex/cert.pem").message;
 * // "cannot read the TLS certificate /etc/mxflex/cert.pem: no such file"
 * ```
 */
export function fileError(err: unknown, what: string, path: string): ListenError {
  let why: string;
  if (err instanceof Deno.errors.NotFound) why = "no such file";
  else if (err instanceof Deno.errors.PermissionDenied) why = "permission denied";
  else if (err instanceof Deno.errors.IsADirectory) why = "it is a directory";
  else why = errorText(err);
  return new ListenError(`cannot read the TLS ${what} ${path}: ${why}`, path, { cause: err });
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\(os error \d+\)$/, "");
}

/** Why an ACME attempt failed, as the operator must act on it. */
export type AcmeFailure = "dns" | "ca-unreachable" | "challenge" | "rate-limited" | "other";

/** The ACME step that failed (shown in logs). */
export type AcmeStep =
  | "account"
  | "order"
  | "challenge"
  | "validation"
  | "finalize"
  | "certificate"
  | "cache";

/** The label each {@link AcmeFailure} starts its message with. */
export const ACME_FAILURE_LABELS: Readonly<Record<AcmeFailure, string>> = Object.freeze({
  dns: "DNS",
  "ca-unreachable": "CA unreachable",
  challenge: "challenge failed",
  "rate-limited": "rate limited",
  other: "ACME error",
});

/**
 * A failed certificate attempt, classified: the message is one line starting with the
 * {@link ACME_FAILURE_LABELS label} of `kind` (`"CA unreachable: ECONNREFUSED
 * 127.0.0.1:14000"`), never acme-client's internals.
 *
 * @example
 * ```ts
 * const err = new AcmeError("rate-limited", "order", "too many certificates", { retryAfterMs: 3_600_000 });
 * err.message; // "rate limited: too many certificates"
 * ```
 */
export class AcmeError extends Error {
  /** What kind of failure. */
  readonly kind: AcmeFailure;
  /** Where in the order it happened. */
  readonly step: AcmeStep;
  /** The CA's `Retry-After`, when it sent one. */
  readonly retryAfterMs?: number;

  /**
   * @param kind the classification
   * @param step the failed step
   * @param detail what happened, without the label
   * @param options `retryAfterMs`, and `cause`: the underlying error
   */
  constructor(
    kind: AcmeFailure,
    step: AcmeStep,
    detail: string,
    options: ErrorOptions & { retryAfterMs?: number } = {},
  ) {
    super(`${ACME_FAILURE_LABELS[kind]}: ${detail}`, options);
    this.name = "AcmeError";
    this.kind = kind;
    this.step = step;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * A request to the CA that got no response: the socket's code and the URL. Raised inside
 * the ACME client's HTTP hooks and classified into an {@link AcmeError} (`ca-unreachable`,
 * `dns`) before it leaves `acme.ts`.
 *
 * @example
 * ```ts
 * const err = new AcmeTransportError("ECONNREFUSED", "https://127.0.0.1:14000/dir");
 * err.message; // "ECONNREFUSED https://127.0.0.1:14000/dir"
 * ```
 */
export class AcmeTransportError extends Error {
  /**
   * @param code the socket error's code, e.g. `ECONNREFUSED`
   * @param url the request's URL
   * @param options `cause`: the underlying error
   */
  constructor(readonly code: string, readonly url: string, options?: ErrorOptions) {
    super(`${code} ${url}`, options);
    this.name = "AcmeTransportError";
  }
}
