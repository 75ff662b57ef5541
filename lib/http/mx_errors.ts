/**
 * Maps MX-side failures to HTTP errors, in one place so every route answers alike. Only the
 * CSTA client's own error classes (all deriving from `CstaError`, `lib/csta/errors.ts`) are
 * MX failures, matched by `instanceof`; nothing is guessed from a `code` property, since
 * Deno's own errors carry codes too (`Deno.errors.NotFound` has `code === "ENOENT"`).
 *
 * | failure                                          | status | why                                  |
 * |--------------------------------------------------|--------|--------------------------------------|
 * | `LoginFailedError` (wrong credentials)           | 401    | the client must authenticate again   |
 * | `RefusedError` (`CSTAErrorCode`: the MX said no) | 422    | request understood, MX said no       |
 * | `UserSessionLimitError` (lib/mx: too many user sessions open) | 429 | `Retry-After: 5` |
 * | `TimeoutError`, `ConnectTimeoutError`            | 504    | the MX is a gateway we wait on       |
 * | `UnavailableError` (session down, address book not loaded), `ConnectionClosedError`, `UnreachableError` (refused, reset, DNS), `NotAnMxError` (the address is another service), `CertificateError`, `BusyError` | 503 | try again later |
 * | anything else (also `ProtocolError`, `FrameError`, `XmlError`, KV and file errors) | 500 | message hidden, logged by the caller |
 *
 * The originals answered 500 for CSTA errors and 408 for reply timeouts (mx-protocol §5.7,
 * §6.10); a CRM cannot act on those, so we use the codes above (documented in README.md).
 *
 * @module
 */
import { HttpError, tooManyRequests } from "./errors.ts";
import { UserSessionLimitError } from "../mx/mod.ts";
import {
  BusyError,
  CertificateError,
  ConnectionClosedError,
  LoginFailedError,
  NotAnMxError,
  RefusedError,
  TimeoutError,
  UnavailableError,
  UnreachableError,
} from "../csta/mod.ts";

/**
 * Converts an error from the MX layer into an {@link HttpError}, or returns `undefined` for
 * errors that are not MX failures (the caller treats those as internal errors).
 *
 * @example
 * ```ts
 * app.onError((err) => toErrorResponse(mxHttpError(err) ?? err));
 * ```
 */
export function mxHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof LoginFailedError) return new HttpError(401, err.message || "login failed");
  // The client's own doing: its other user sessions end soon (a download within its stall limit).
  if (err instanceof UserSessionLimitError) return tooManyRequests(err.message, 5);
  if (err instanceof RefusedError) return new HttpError(422, err.message);
  // ConnectTimeoutError is a TimeoutError.
  if (err instanceof TimeoutError) return new HttpError(504, err.message);
  if (
    err instanceof UnavailableError || err instanceof ConnectionClosedError ||
    err instanceof UnreachableError || err instanceof CertificateError ||
    err instanceof BusyError || err instanceof NotAnMxError
  ) {
    return new HttpError(503, err.message);
  }
  return undefined;
}
