/**
 * Automatic certificates over ACME (RFC 8555) with the HTTP-01 challenge,
 * the working replacement for the seed's TLS-SNI-01 (mx-protocol §7.14).
 *
 * Every step is logged (account, order, challenge published and served,
 * validation, certificate issued, cached, next renewal check) and every failure
 * is one classified line ({@linkcode AcmeError}: DNS, CA unreachable, challenge
 * failed, rate limited, other), followed by a retry with backoff (see
 * {@linkcode AcmeManager.start}).
 *
 * `acme-client` runs on Deno's Node compatibility layer; its HTTP client is a
 * shared axios instance using `node:https`. Three process-wide adjustments are
 * made to that instance (and only to it) the first time a manager is built:
 *
 * - a request that got no response at all (connection refused, DNS, TLS,
 *   timeout) fails with its own error and code. acme-client's retry interceptor
 *   otherwise retried it silently for 75 s and then failed reading `config` of
 *   the missing response (`TypeError: Cannot read properties of undefined`);
 * - its own retries (5xx, 429) are off: the manager retries whole attempts with
 *   a logged backoff instead of sleeping unseen inside one request;
 * - requests time out after 30 s, and ACME problem documents are remembered
 *   per CA so a failure can be classified by its type (`rateLimited`, …).
 *
 * To trust a private ACME server (Pebble in tests) without touching
 * process-wide trust (`--cert`, `DENO_CERT`), requests to the directory's
 * origin get an `https.Agent` whose `ca` is the public roots plus `caCerts`
 * (see {@linkcode trustAcmeServer}).
 *
 * @module
 */

import * as acme from "acme-client";
import axios, { type AxiosAdapter, type AxiosResponse } from "axios";
import { Agent } from "node:https";
import { rootCertificates } from "node:tls";
import type { CertStore } from "./cert_store.ts";
import { AcmeError, type AcmeFailure, type AcmeStep, AcmeTransportError } from "./errors.ts";

/** Let's Encrypt production directory (the default). */
export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";
/** Let's Encrypt staging directory: untrusted certificates, generous rate limits. */
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

/**
 * Retry schedule after a failed attempt: 1 min, doubling, at most 1 h (a CA
 * rate limit's `Retry-After` is honoured up to 24 h). Renewal checks run every
 * 12 h; while a valid certificate is served a failed renewal is retried on the
 * same schedule but never later than the next regular check.
 */
export const ACME_RETRY = Object.freeze({ initialMs: 60_000, maxMs: 3_600_000 });
/** Longest `Retry-After` of a rate limit that is honoured. */
const MAX_RETRY_AFTER_MS = 24 * 3_600_000;
/** Timeout of every request to the CA. */
const REQUEST_TIMEOUT_MS = 30_000;

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

/** A certificate with its start of validity (renewal is due after two thirds of the lifetime). */
type Held = IssuedCertificate & { notBefore: Date };

/** What {@linkcode AcmeManager.start} reports after each attempt. */
export interface AcmeAttempt {
  /** The certificate to serve (new, or the cached one still valid); absent when none is. */
  certificate?: IssuedCertificate;
  /** Why the attempt failed, classified; absent on success. */
  error?: AcmeError;
  /** When the next attempt or renewal check runs. */
  next: Date;
}

/** Options for {@linkcode AcmeManager.start}. */
export interface AcmeScheduleOptions {
  /** Regular renewal check interval; default 12 h. */
  checkEveryMs?: number;
  /** Backoff after failures; default {@linkcode ACME_RETRY}. */
  retry?: { initialMs?: number; maxMs?: number };
}

/**
 * Obtains, caches and renews the certificate for one domain.
 *
 * @example
 * ```ts
 * const acmeMgr = new AcmeManager({ domain: "flex.example.com", store: new DirCertStore("letsEncrypt.cache") });
 * // Route port 80 through acmeMgr.challengeResponder() first, then:
 * acmeMgr.start(async (certificate) => { if (certificate) await serveHttps(certificate); });
 * ```
 */
export class AcmeManager {
  #domain: string;
  #email?: string;
  #directoryUrl: string;
  #origin: string;
  #store: CertStore;
  #renewBeforeMs: number;
  #now: () => number;
  #log: (message: string) => void;
  /** token -> key authorization, alive only while an order is pending. */
  #challenges = new Map<string, string>();
  /** Tokens whose challenge was served to the CA at least once (logged once). */
  #served = new Set<string>();
  #inflight?: Promise<Held>;
  #current?: Held;
  #timer?: ReturnType<typeof setTimeout>;
  #stopped = false;

  /** Validates options; no network traffic until {@linkcode ensureCertificate}. */
  constructor(opts: AcmeOptions) {
    this.#domain = opts.domain.toLowerCase();
    this.#email = opts.email;
    this.#directoryUrl = opts.directoryUrl ?? LETS_ENCRYPT_PRODUCTION;
    this.#origin = new URL(this.#directoryUrl).origin;
    this.#store = opts.store;
    this.#renewBeforeMs = (opts.renewBeforeDays ?? 30) * DAY_MS;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? (() => {});
    installAcmeHttpHooks();
    if (opts.caCerts?.length) trustAcmeServer(this.#directoryUrl, opts.caCerts);
  }

  /** The domain being certified (lower case). */
  get domain(): string {
    return this.#domain;
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
      const token = path.slice(CHALLENGE_PREFIX.length);
      const answer = this.#challenges.get(token);
      if (answer === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
        return new Response("not found\n", { status: 404 });
      }
      if (!this.#served.has(token)) {
        this.#served.add(token);
        this.#log(`acme: HTTP-01 challenge for ${this.#domain} served to the CA`);
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
   * @throws {AcmeError} when no certificate can be had, classified
   */
  async ensureCertificate(): Promise<IssuedCertificate> {
    const r = await this.#attempt();
    if (!r.certificate) throw r.error;
    if (r.error) {
      this.#log(`acme: renewal for ${this.#domain} failed, keeping current: ${r.error.message}`);
    }
    return r.certificate;
  }

  /**
   * Runs the certificate life cycle until {@linkcode stop}: an attempt now, then
   * a renewal check every `checkEveryMs` (default 12 h) after a success, or a
   * retry with backoff ({@linkcode ACME_RETRY}) after a failure. `onAttempt` gets
   * every outcome (the certificate to serve, or the classified error and when
   * the next attempt runs); the next attempt is scheduled only after it settled,
   * so certificate swaps never overlap. Never rejects.
   */
  start(
    onAttempt: (a: AcmeAttempt) => void | Promise<void>,
    o: AcmeScheduleOptions = {},
  ): void {
    this.#stopped = false;
    clearTimeout(this.#timer);
    const checkEveryMs = o.checkEveryMs ?? 12 * 3_600_000;
    const initialMs = o.retry?.initialMs ?? ACME_RETRY.initialMs;
    const maxMs = o.retry?.maxMs ?? ACME_RETRY.maxMs;
    let failures = 0;
    const tick = async () => {
      let delay = checkEveryMs;
      try {
        const r = await this.#attempt();
        if (r.error) {
          delay = Math.min(maxMs, initialMs * 2 ** Math.min(failures++, 30));
          if (r.error.retryAfterMs) {
            delay = Math.max(delay, Math.min(r.error.retryAfterMs, MAX_RETRY_AFTER_MS));
          }
          // A valid certificate is still served: retry, but not later than a regular check.
          if (r.certificate) delay = Math.min(delay, checkEveryMs);
          const next = new Date(Date.now() + delay);
          this.#log(
            `acme: certificate for ${this.#domain} failed at ${r.error.step}: ${r.error.message}; ` +
              `${r.certificate ? "still serving the current one; " : ""}next attempt in ` +
              `${seconds(delay)} (${next.toISOString()})`,
          );
          if (!this.#stopped) await onAttempt({ ...r, next });
        } else {
          failures = 0;
          const next = new Date(Date.now() + delay);
          if (!this.#stopped) await onAttempt({ ...r, next });
          this.#log(
            `acme: renewal check for ${this.#domain} scheduled at ${next.toISOString()} ` +
              `(renewal due from ${this.#renewalDue(r.certificate!).toISOString()})`,
          );
        }
      } catch (err) {
        // onAttempt failed (e.g. the new certificate could not be bound): logged, retried.
        delay = Math.min(maxMs, initialMs * 2 ** Math.min(failures++, 30));
        this.#log(`acme: ${errorText(err)}; next attempt in ${seconds(delay)}`);
      } finally {
        if (!this.#stopped) this.#timer = setTimeout(tick, delay);
      }
    };
    this.#timer = setTimeout(tick, 0);
  }

  /** Stops the life cycle. An attempt already in flight still completes. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One attempt, shared by concurrent callers; never rejects. */
  async #attempt(): Promise<{ certificate?: Held; error?: AcmeError }> {
    let stored: Held | undefined;
    try {
      stored = await this.#loadStored();
      if (stored && !this.#isDue(stored)) {
        if (this.#current?.cert !== stored.cert) {
          this.#log(
            `acme: using the cached certificate for ${this.#domain}, valid until ` +
              stored.notAfter.toISOString(),
          );
        }
        return { certificate: this.#current = stored };
      }
      this.#inflight ??= this.#order().finally(() => this.#inflight = undefined);
      const fresh = await this.#inflight;
      return { certificate: this.#current = fresh };
    } catch (err) {
      const error = err instanceof AcmeError ? err : classify(err, "cache", this.#origin);
      if (stored && stored.notAfter.getTime() > this.#now()) {
        return { certificate: this.#current = stored, error };
      }
      return { error };
    }
  }

  /** True when the remaining lifetime is below the renewal threshold. */
  #isDue(c: Held): boolean {
    return this.#now() >= this.#renewalDue(c).getTime();
  }

  /** When a certificate becomes due for renewal. */
  #renewalDue(c: Held): Date {
    const lifetime = c.notAfter.getTime() - c.notBefore.getTime();
    return new Date(c.notAfter.getTime() - Math.min(this.#renewBeforeMs, lifetime / 3));
  }

  async #loadStored(): Promise<Held | undefined> {
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

  /** The order, step by step (what `client.auto()` does, with a log line per step). */
  async #order(): Promise<Held> {
    problems.delete(this.#origin);
    const step = async <T>(name: AcmeStep, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw classify(err, name, this.#origin);
      }
    };
    this.#log(`acme: ordering a certificate for ${this.#domain} from ${this.#directoryUrl}`);
    const account = await step("account", () => this.#account());
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
    if (account.url) this.#log(`acme: using account ${account.url}`);
    else await step("account", () => this.#register(client, account));
    const order = await step(
      "order",
      () => client.createOrder({ identifiers: [{ type: "dns", value: this.#domain }] }),
    );
    const authorizations = await step("order", () => client.getAuthorizations(order));
    this.#log(`acme: order for ${this.#domain} created`);
    for (const authz of authorizations) {
      if (authz.status === "valid") continue;
      const challenge = authz.challenges.find((c) => c.type === "http-01");
      if (!challenge) {
        throw new AcmeError("challenge", "challenge", "the CA offered no HTTP-01 challenge");
      }
      const keyAuthorization = await step(
        "challenge",
        () => client.getChallengeKeyAuthorization(challenge),
      );
      this.#challenges.set(challenge.token, keyAuthorization);
      try {
        this.#log(
          `acme: HTTP-01 challenge for ${authz.identifier.value} published at ` +
            `http://${authz.identifier.value}${CHALLENGE_PREFIX}${challenge.token}`,
        );
        await step("challenge", () => client.completeChallenge(challenge));
        await step("validation", () => client.waitForValidStatus(challenge));
        this.#log(`acme: ${authz.identifier.value} validated by the CA`);
      } finally {
        this.#challenges.delete(challenge.token);
        this.#served.delete(challenge.token);
      }
    }
    const key = (await acme.crypto.createPrivateEcdsaKey()).toString();
    const [, csr] = await acme.crypto.createCsr({ commonName: this.#domain }, key);
    const finalized = await step("finalize", () => client.finalizeOrder(order, csr));
    const cert = await step("certificate", () => client.getCertificate(finalized));
    const info = acme.crypto.readCertificateInfo(cert);
    this.#log(
      `acme: certificate for ${this.#domain} issued, valid until ${info.notAfter.toISOString()}`,
    );
    await step(
      "cache",
      () => this.#store.set(this.#certName(), `${key.trim()}\n${cert.trim()}\n`),
    );
    this.#log(`acme: certificate for ${this.#domain} cached`);
    return { cert, key, notAfter: info.notAfter, notBefore: info.notBefore };
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
   * account URL, the client skips registration, which would otherwise send an
   * "empty update" for an existing account that has no email — an error on
   * Pebble. The key is stored only after the CA accepted it, so a failed first
   * registration leaves nothing half-done behind.
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
    this.#log(
      `acme: account ${client.getAccountUrl()} ${account.created ? "registered" : "found"} ` +
        `at ${this.#origin}`,
    );
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
 *
 * @example
 * ```ts
 * trustAcmeServer("https://127.0.0.1:14000/dir", [pebbleRootPem]);
 * ```
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

/** The latest ACME problem document (RFC 8555 §6.7) each CA origin sent. */
interface Problem {
  type: string;
  detail: string;
  status: number;
  retryAfterMs?: number;
}
const problems = new Map<string, Problem>();
let hooksInstalled = false;

/** See the module docs: the three adjustments to acme-client's axios instance. */
function installAcmeHttpHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const inst = acme.axios;
  const settings = (inst.defaults as { acmeSettings?: { retryMaxAttempts: number } })
    .acmeSettings;
  if (settings) settings.retryMaxAttempts = 0;
  inst.defaults.timeout = REQUEST_TIMEOUT_MS;
  const http = axios.getAdapter("http");
  const adapter: AxiosAdapter = async (config) => {
    try {
      return await http(config);
    } catch (err) {
      if ((err as { response?: unknown }).response) throw err;
      // No `config` on this error: acme-client's interceptor passes it through unchanged.
      const code = (err as { code?: string }).code ?? "network error";
      throw new AcmeTransportError(code, config.url ?? "", { cause: err });
    }
  };
  inst.defaults.adapter = adapter;
  inst.interceptors.response.use((res: AxiosResponse) => {
    const url = res.config.url;
    const data = res.data as Record<string, unknown> | undefined;
    // A problem document, or an invalid challenge/authorization carrying one.
    const doc = (data?.type !== undefined ? data : (data?.error as typeof data)) as
      | { type?: unknown; detail?: unknown }
      | undefined;
    if (url && typeof doc?.type === "string" && doc.type.startsWith("urn:ietf:params:acme:")) {
      const after = Number(res.headers?.["retry-after"]);
      problems.set(new URL(url).origin, {
        type: doc.type.slice("urn:ietf:params:acme:error:".length),
        detail: typeof doc.detail === "string" ? doc.detail : "",
        status: res.status,
        retryAfterMs: Number.isFinite(after) && after > 0 ? after * 1000 : undefined,
      });
    }
    return res;
  });
}

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"]);
const CHALLENGE_TYPES = new Set([
  "connection",
  "unauthorized",
  "incorrectResponse",
  "tls",
  "caa",
  "rejectedIdentifier",
]);

/** Classifies whatever a step threw into one {@linkcode AcmeError} line. */
function classify(err: unknown, step: AcmeStep, origin: string): AcmeError {
  if (err instanceof AcmeError) return err;
  const host = new URL(origin).host;
  const options = { cause: err };
  const transport = findTransportError(err);
  if (transport) {
    const kind: AcmeFailure = DNS_CODES.has(transport.code) ? "dns" : "ca-unreachable";
    const detail = kind === "dns"
      ? `cannot resolve ${host} (${transport.code})`
      : `${host}: ${transport.code}`;
    return new AcmeError(kind, step, detail, options);
  }
  const problem = problems.get(origin);
  const text = errorText(err);
  if (problem) {
    const detail = problem.detail || text;
    if (problem.type === "rateLimited" || problem.status === 429) {
      return new AcmeError("rate-limited", step, detail, {
        ...options,
        retryAfterMs: problem.retryAfterMs,
      });
    }
    if (problem.type === "dns") return new AcmeError("dns", step, detail, options);
    if (CHALLENGE_TYPES.has(problem.type)) {
      return new AcmeError("challenge", step, detail, options);
    }
    if (problem.status >= 500) {
      return new AcmeError("ca-unreachable", step, `${host}: HTTP ${problem.status}`, options);
    }
  }
  const status = text.match(/returned error (\d{3})/)?.[1];
  if (status && Number(status) >= 500) {
    return new AcmeError("ca-unreachable", step, `${host}: HTTP ${status}`, options);
  }
  if (step === "validation") return new AcmeError("challenge", step, text, options);
  return new AcmeError("other", step, text, options);
}

/** The transport error behind `err` (it may be wrapped as a `cause`). */
function findTransportError(err: unknown): AcmeTransportError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    if (e instanceof AcmeTransportError) return e;
  }
  return undefined;
}

/** "90 s", or "0.2 s" for the short delays tests use. */
function seconds(ms: number): string {
  return `${ms < 10_000 ? Math.round(ms / 100) / 10 : Math.round(ms / 1000)} s`;
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
}
