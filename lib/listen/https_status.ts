/**
 * What the automatic-certificate (ACME) side is doing, for `/readyz` and `/metrics`: written
 * by {@link listen} and its {@link AcmeManager}, read by the ops routes and the metrics
 * collector. In the other modes (plain HTTP, static TLS) it stays inactive and is not shown.
 *
 * @module
 */

/** `"waiting for certificate"` until the first certificate is served on HTTPS, then `"serving"`. */
export type HttpsState = "waiting for certificate" | "serving";

/** The `/readyz` view (`https` key). */
export interface HttpsStatusView {
  state: HttpsState;
  /** The domain being certified. */
  domain: string;
  /** Expiry of the certificate being served (ISO 8601). */
  certificateExpires?: string;
  /** The last failure, classified (`"CA unreachable: …"`); absent after a success. */
  lastError?: string;
  /** When the next attempt or renewal check runs (ISO 8601). */
  nextAttempt?: string;
}

/**
 * @example
 * ```ts
 * const https = new HttpsStatus();
 * const srv = await listen(handler, { host: "flex.example.com", acme: { store }, https });
 * https.view(); // { state: "waiting for certificate", domain: "flex.example.com", … }
 * ```
 */
export class HttpsStatus {
  #domain?: string;
  #state: HttpsState = "waiting for certificate";
  #notAfter?: Date;
  #lastError?: string;
  #next?: Date;
  #renewalFailures = 0;

  /** True in ACME mode (set by `listen`). */
  get active(): boolean {
    return this.#domain !== undefined;
  }

  /** True when nothing blocks readiness: inactive, or serving a certificate. */
  get ready(): boolean {
    return !this.active || this.#state === "serving";
  }

  /** Expiry of the certificate being served. */
  get notAfter(): Date | undefined {
    return this.#notAfter;
  }

  /** Failed renewals of a certificate that was being served (a counter). */
  get renewalFailures(): number {
    return this.#renewalFailures;
  }

  /** The `/readyz` view; `undefined` when inactive. */
  view(): HttpsStatusView | undefined {
    if (this.#domain === undefined) return undefined;
    return {
      state: this.#state,
      domain: this.#domain,
      certificateExpires: this.#notAfter?.toISOString(),
      lastError: this.#lastError,
      nextAttempt: this.#next?.toISOString(),
    };
  }

  /** ACME mode begins for `domain` (nothing served yet). */
  begin(domain: string): void {
    this.#domain = domain;
  }

  /** A certificate valid until `notAfter` is being served; the next check is at `next`. */
  serving(notAfter: Date, next: Date): void {
    this.#state = "serving";
    this.#notAfter = notAfter;
    this.#lastError = undefined;
    this.#next = next;
  }

  /** An attempt failed with `message`; the next one is at `next`. */
  failed(message: string, next: Date): void {
    if (this.#state === "serving") this.#renewalFailures++;
    this.#lastError = message;
    this.#next = next;
  }
}
