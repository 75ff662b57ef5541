/**
 * Maps MX-side failures to HTTP errors, in one place so every route answers alike:
 *
 * | failure                                   | status | why                                  |
 * |-------------------------------------------|--------|--------------------------------------|
 * | `loginFailed` (wrong credentials)         | 401    | the client must authenticate again   |
 * | `CSTAErrorCode` (MX refused the command)  | 422    | request understood, MX said no       |
 * | reply or connect timeout                  | 504    | the MX is a gateway we wait on       |
 * | session down, refused, TLS, busy          | 503    | try again later                      |
 * | anything else                             | 500    | message hidden, logged by the caller |
 *
 * The originals answered 500 for CSTA errors and 408 for reply timeouts (mx-protocol §5.7,
 * §6.10); a CRM cannot act on those, so we use the codes above (documented in README.md).
 *
 * @module
 */
import { HttpError } from "./errors.ts";
import { CstaError, LoginFailedError } from "../csta/commands.ts";
import { BusyError, ConnectionClosedError, TimeoutError } from "../csta/connection.ts";
import { UnavailableError } from "../csta/client.ts";
import { CertificateError, ConnectTimeoutError } from "../csta/transport.ts";

/**
 * Converts an error from the MX layer into an {@link HttpError}, or returns `undefined` for
 * errors that are not MX failures (the caller treats those as internal errors).
 *
 * @example
 * ```ts
 * try { await op(); } catch (err) { throw mxHttpError(err) ?? err; }
 * ```
 */
export function mxHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof LoginFailedError) return new HttpError(401, err.message || "login failed");
  if (err instanceof CstaError) return new HttpError(422, err.message);
  if (err instanceof TimeoutError || err instanceof ConnectTimeoutError) {
    return new HttpError(504, err.message);
  }
  if (
    err instanceof UnavailableError || err instanceof ConnectionClosedError ||
    err instanceof BusyError || err instanceof CertificateError
  ) {
    return new HttpError(503, err.message);
  }
  // Socket-level errors from node:net / node:tls (ECONNREFUSED, ECONNRESET, …).
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  if (typeof code === "string") return new HttpError(503, `MX unreachable: ${code}`);
  return undefined;
}
