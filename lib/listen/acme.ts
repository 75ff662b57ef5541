/**
 * Automatic certificates over ACME (RFC 8555) with the HTTP-01 challenge,
 * the working replacement for the seed's TLS-SNI-01 (mx-protocol §7.14).
 *
 * `acme-client` runs on Deno's Node compatibility layer; its HTTP client is a
 * shared axios instance using `node:https`. To trust a private ACME server
 * (Pebble in tests) without touching process-wide trust (`--cert`,
 * `DENO_CERT`), requests to the directory's origin get an `https.Agent` whose
 * `ca` is the public roots plus `caCerts` (see {@linkcode trustAcmeServer}).
 *
 * @module
 */

import * as acme from "acme-client";
import { Agent } from "node:https";
import { rootCertificates } from "node:tls";
import type { CertStore } from "./cert_store.ts";

/** Let's Encrypt production directory (the default). */
export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt staging directory: untrusted certificates, generous rate limits. */
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/** Where HTTP-01 challenge files are fetched by the CA (RFC 8555 §8.3). */
const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
const DAY_MS = 86_400_000;

/** Options for {@linkcode AcmeManager}. */
export interface AcmeOptions {
  /** The one host name to certify (mx-protocol §5.9: only that host is allowed). */
  domain: string;
  /** Contact address registered with the account (expiry notices). */
  email?: string;
  /** ACME directory URL; default {@linkcode LETS_ENCRYPT_PRODUCTION}. */
  directoryUrl?: string;
  /** Cache for the account key and the certificate. */
  store: CertStore;
  /** Extra PEM roots to trust for the ACME server's own HTTPS (e.g. Pebble's). */
  caCerts?: string[];
  /**
   * Renew when fewer than this many days remain (default 30). For short-lived
   * certificates the threshold is capped at a third of the lifetime, as Let's
   * Encrypt recommends, so a 6-day or 1-hour certificate is not re-ordered on
   * every check.
   */
  renewBeforeDays?: number;
  /** Clock in ms since the epoch; tests move it forward to force renewal. */
  now?: () => number;
  /** Diagnostic sink. Never receives key material. */
  log?: (message: string) => void;
}

/** A certificate chain with its private key, both PEM. */
export interface IssuedCertificate {
  /** Leaf first, then intermediates. */
  cert: string;
  /** PKCS#8 private key of the leaf. */
  key: string;
  /** Expiry of the leaf. */
  notAfter: Date;
}

/**
 * Obtains, caches and renews the certificate for one domain.
 *
 * @example
 * ```ts
 * const acmeMgr = new AcmeManager({ domain: "flex.example.com", store: new DirCertStore("letsEncrypt.cache") });
 * // Route port 80 through acmeMgr.challengeResponder() first, then:
 * const { cert, key } = await acmeMgr.ensureCertificate();
 * ```
 */
export class AcmeManager {
  #domain: string;
  #email?: string;
  #directoryUrl: string;
  #store: CertStore;
  #renewBeforeMs: number;
  #now: () => number;
  #log: (message: string) => void;
  /** token -> key authorization, alive only while an order is pending. */
  #challenges = new Map<string, string>();
  #inflight?: Promise<IssuedCertificate>;
  #current?: IssuedCertificate;
  #timer?: ReturnType<typeof setTimeout>;
  #stopped = false;

  /** Validates options; no network traffic until {@linkcode ensureCertificate}. */
  constructor(opts: AcmeOptions) {
    this.#domain = opts.domain.toLowerCase();
    this.#email = opts.email;
    this.#directoryUrl = opts.directoryUrl ?? LETS_ENCRYPT_PRODUCTION;
    this.#store = opts.store;
    this.#renewBeforeMs = (opts.renewBeforeDays ?? 30) * DAY_MS;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? (() => {});
    if (opts.caCerts?.length) trustAcmeServer(this.#directoryUrl, opts.caCerts);
  }

  /**
   * A handler for the port-80 server: answers
   * `GET /.well-known/acme-challenge/<token>` with the key authorization
   * (404 for unknown tokens) and returns `undefined` for every other request.
   */
  challengeResponder(): (req: Request) => Response | undefined {
    return (req) => {
      const path = new URL(req.url).pathname;
      if (!path.startsWith(CHALLENGE_PREFIX)) return undefined;
      const answer = this.#challenges.get(path.slice(CHALLENGE_PREFIX.length));
      if (answer === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
        return new Response("not found\n", { status: 404 });
      }
      return new Response(answer, { headers: { "content-type": "text/plain" } });
    };
  }

  /**
   * Returns the stored certificate when it is still valid and not due for
   * renewal; otherwise orders a new one over HTTP-01 and stores it. If an
   * order fails while the stored certificate has not expired yet, that one is
   * returned (and the failure logged) so the site stays up. Concurrent calls
   * share one order.
   */
  ensureCertificate(): Promise<IssuedCertificate> {
    this.#inflight ??= this.#ensure().finally(() => this.#inflight = undefined);
    return this.#inflight;
  }

  /**
   * Re-checks every `checkEveryMs` (default 12 h) and calls `onRenewed` with
   * each newly issued certificate. The next check is scheduled only after
   * `onRenewed` (if async) settled, so certificate swaps never overlap.
   * Errors are logged and retried next time.
   */
  startRenewal(
    onRenewed: (c: IssuedCertificate) => void | Promise<void>,
    checkEveryMs = 12 * 3_600_000,
  ): void {
    this.#stopped = false;
    clearTimeout(this.#timer);
    let last = this.#current?.cert;
    const tick = async () => {
      try {
        const c = await this.ensureCertificate();
        if (!this.#stopped && c.cert !== last) {
          last = c.cert;
          await onRenewed(c);
        }
      } catch (err) {
        this.#log(`acme: renewal check for ${this.#domain} failed: ${errorText(err)}`);
      } finally {
        if (!this.#stopped) this.#timer = setTimeout(tick, checkEveryMs);
      }
    };
    this.#timer = setTimeout(tick, checkEveryMs);
  }

  /** Stops renewal checks. An order already in flight still completes. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #ensure(): Promise<IssuedCertificate> {
    const stored = await this.#loadStored();
    if (stored && !this.#isDue(stored)) return this.#current = stored;
    try {
      const fresh = await this.#order();
      await this.#store.set(this.#certName(), `${fresh.key.trim()}\n${fresh.cert.trim()}\n`);
      this.#log(
        `acme: certificate for ${this.#domain} valid until ${fresh.notAfter.toISOString()}`,
      );
      return this.#current = fresh;
    } catch (err) {
      if (stored && stored.notAfter.getTime() > this.#now()) {
        this.#log(`acme: renewal for ${this.#domain} failed, keeping current: ${errorText(err)}`);
        return this.#current = stored;
      }
      throw err;
    }
  }

  /** True when the remaining lifetime is below the renewal threshold. */
  #isDue(c: IssuedCertificate & { notBefore: Date }): boolean {
    const lifetime = c.notAfter.getTime() - c.notBefore.getTime();
    const threshold = Math.min(this.#renewBeforeMs, lifetime / 3);
    return c.notAfter.getTime() - this.#now() < threshold;
  }

  async #loadStored(): Promise<(IssuedCertificate & { notBefore: Date }) | undefined> {
    const pem = await this.#store.get(this.#certName());
    if (!pem) return undefined;
    const key = pem.match(
      /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/,
    )
      ?.[0];
    const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!key || !certs) {
      this.#log(`acme: ignoring unreadable stored certificate for ${this.#domain}`);
      return undefined;
    }
    const cert = certs.join("\n") + "\n";
    try {
      const info = acme.crypto.readCertificateInfo(cert);
      const names = [info.domains.commonName, ...info.domains.altNames].map((n) =>
        n?.toLowerCase()
      );
      if (!names.includes(this.#domain)) return undefined;
      return { cert, key: key + "\n", notAfter: info.notAfter, notBefore: info.notBefore };
    } catch (err) {
      this.#log(`acme: ignoring stored certificate for ${this.#domain}: ${errorText(err)}`);
      return undefined;
    }
  }

  async #order(): Promise<IssuedCertificate> {
    this.#log(`acme: ordering certificate for ${this.#domain} from ${this.#directoryUrl}`);
    const account = await this.#account();
    const client = new acme.Client({
      directoryUrl: this.#directoryUrl,
      accountKey: account.key,
      accountUrl: account.url,
      // acme-client's defaults (5–30 s between polls) suit a public CA; an
      // order normally completes in a few seconds, so poll more briskly.
      backoffMin: 500,
      backoffMax: 10_000,
      backoffAttempts: 12,
    });
    if (!account.url) await this.#register(client, account);
    const key = (await acme.crypto.createPrivateEcdsaKey()).toString();
    const [, csr] = await acme.crypto.createCsr({ commonName: this.#domain }, key);
    const cert = await client.auto({
      csr,
      challengePriority: ["http-01"],
      // The self-check fetches http://<domain>/ from this host, which fails
      // behind NAT without hairpinning; the CA's own validation decides anyway.
      skipChallengeVerification: true,
      challengeCreateFn: (_authz, challenge, keyAuthorization) => {
        this.#challenges.set(challenge.token, keyAuthorization);
        return Promise.resolve();
      },
      challengeRemoveFn: (_authz, challenge) => {
        this.#challenges.delete(challenge.token);
        return Promise.resolve();
      },
    });
    const info = acme.crypto.readCertificateInfo(cert);
    return { cert, key, notAfter: info.notAfter };
  }

  /** The stored account key and URL, or a fresh (not yet stored) key. */
  async #account(): Promise<{ key: string; url?: string; created: boolean }> {
    const stored = await this.#store.get(this.#accountName("key"));
    if (stored) {
      const url = (await this.#store.get(this.#accountName("url")))?.trim() || undefined;
      return { key: stored, url, created: false };
    }
    return { key: (await acme.crypto.createPrivateEcdsaKey()).toString(), created: true };
  }

  /**
   * Registers (or looks up) the account and stores key and URL. With a known
   * account URL, `client.auto()` skips its own registration, which would
   * otherwise send an "empty update" for an existing account that has no
   * email — an error on Pebble. The key is stored only after the CA accepted
   * it, so a failed first registration leaves nothing half-done behind.
   */
  async #register(
    client: acme.Client,
    account: { key: string; created: boolean },
  ): Promise<void> {
    await client.createAccount(
      account.created
        ? {
          // Configuring a public domain as `host` is the operator's request
          // for a certificate; the seed (Go autocert) accepted the terms too.
          termsOfServiceAgreed: true,
          contact: this.#email ? [`mailto:${this.#email}`] : undefined,
        }
        // Known key, unknown URL: RFC 8555 §7.3.1 lookup by key.
        : { onlyReturnExisting: true },
    );
    if (account.created) await this.#store.set(this.#accountName("key"), account.key);
    await this.#store.set(this.#accountName("url"), client.getAccountUrl());
  }

  #accountName(kind: "key" | "url"): string {
    return `acme-account+${this.#directoryTag()}.${kind}`;
  }

  /**
   * Certificates are cached per directory, so switching from staging to
   * production (or between Pebble runs) never serves the other CA's certificate.
   */
  #certName(): string {
    return `${this.#domain}+${this.#directoryTag()}.pem`;
  }

  #directoryTag(): string {
    return new URL(this.#directoryUrl).host.replace(/[^A-Za-z0-9.-]/g, "_");
  }
}

/** origin -> agent trusting that ACME server; consulted by one axios interceptor. */
const trustedAgents = new Map<string, Agent>();
let interceptorInstalled = false;

/**
 * Makes acme-client's (process-wide) axios instance trust `caCerts`, in
 * addition to the public roots, for requests to `directoryUrl`'s origin only.
 */
export function trustAcmeServer(directoryUrl: string, caCerts: string[]): void {
  trustedAgents.set(
    new URL(directoryUrl).origin,
    new Agent({ ca: [...rootCertificates, ...caCerts], keepAlive: false }),
  );
  if (interceptorInstalled) return;
  interceptorInstalled = true;
  acme.axios.interceptors.request.use((config) => {
    const agent = config.url ? trustedAgents.get(new URL(config.url).origin) : undefined;
    if (agent) config.httpsAgent = agent;
    return config;
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
