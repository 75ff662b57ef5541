/**
 * Firebase Cloud Messaging sender over the HTTP v1 API (mx-protocol §6.8, §7.15).
 *
 * The seed used the legacy `fcm/send` endpoint with a server key; Google shut that down in
 * 2024, so MXFlex authenticates with a service account (RS256 JWT assertion exchanged for an
 * OAuth access token) and sends one message per token. Legacy `gfcm` entries still load as a
 * {@link LegacyFcmSender} that refuses honestly instead of pretending to deliver.
 *
 * @module
 */
import { importPKCS8, SignJWT } from "jose";
import { errorText, type PushMessage, type PushResult, type PushSender } from "./types.ts";
import { isTransientStatus, postPush, retryResult } from "./gateway.ts";
import { DEFAULT_RING_TIMEOUT_MS, fcmRoute, MISSED_LOC, missedText } from "./rules.ts";

/** Google's FCM API origin. */
export const FCM_ENDPOINT = "https://fcm.googleapis.com";
/** Google's OAuth token endpoint (used when the account file has no `token_uri`). */
export const GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";
/** The scope FCM v1 needs. */
const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
/** Refresh the access token this long before Google says it expires. */
const EXPIRY_MARGIN_MS = 5 * 60 * 1000;

/** Warning text for a legacy `gfcm` entry. */
export const LEGACY_FCM_WARNING =
  "Google retired the legacy FCM API in 2024; configure fcm service accounts";

/** The fields of a Google service-account JSON file that MXFlex uses. */
export interface ServiceAccount {
  client_email: string;
  private_key: string;
  project_id: string;
  token_uri?: string;
  private_key_id?: string;
}

/**
 * Checks a parsed service-account file.
 *
 * @throws {Error} naming the first missing field
 *
 * @example
 * ```ts
 * const account = parseServiceAccount(JSON.parse(await Deno.readTextFile("service-account.json")));
 * ```
 */
export function parseServiceAccount(raw: unknown): ServiceAccount {
  const o = (raw ?? {}) as Record<string, unknown>;
  for (const f of ["client_email", "private_key", "project_id"]) {
    if (typeof o[f] !== "string" || o[f] === "") throw new Error(`service account lacks ${f}`);
  }
  return {
    client_email: o.client_email as string,
    private_key: o.private_key as string,
    project_id: o.project_id as string,
    token_uri: typeof o.token_uri === "string" ? o.token_uri : undefined,
    private_key_id: typeof o.private_key_id === "string" ? o.private_key_id : undefined,
  };
}

/**
 * The OAuth exchange failed; `transient` says whether trying later may help.
 *
 * @example
 * ```ts
 * throw new OAuthError("oauth: 503 Service Unavailable", true); // worth retrying
 * ```
 */
export class OAuthError extends Error {
  /** @param transient true for network errors, 429 and 5xx */
  constructor(message: string, readonly transient: boolean) {
    super(message);
    this.name = "OAuthError";
  }
}

/**
 * Access tokens for one service account, fetched with the JWT-bearer grant and cached until
 * shortly before they expire. Concurrent callers share one in-flight request.
 *
 * @example
 * ```ts
 * const tokens = new GoogleAccessTokens({ account });
 * const bearer = await tokens.token();
 * ```
 */
export class GoogleAccessTokens {
  #account: ServiceAccount;
  #tokenUri: string;
  #key: Promise<CryptoKey>;
  #now: () => number;
  #timeoutMs: number;
  #client?: Deno.HttpClient;
  #cached?: { token: string; expiresAt: number };
  #inflight?: Promise<string>;

  /**
   * @param opts.tokenUri overrides the account's `token_uri` (tests)
   * @param opts.client HTTP client for the token requests (extra trusted CAs); not closed here
   * @param opts.now clock in ms (tests)
   */
  constructor(
    opts: {
      account: ServiceAccount;
      tokenUri?: string;
      client?: Deno.HttpClient;
      now?: () => number;
      timeoutMs?: number;
    },
  ) {
    this.#account = opts.account;
    this.#client = opts.client;
    this.#tokenUri = opts.tokenUri ?? opts.account.token_uri ?? GOOGLE_TOKEN_URI;
    this.#key = importPKCS8(opts.account.private_key, "RS256");
    this.#key.catch(() => {}); // reported by ready() or the first token()
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Resolves once the private key is imported; rejects when it is unusable. */
  async ready(): Promise<void> {
    await this.#key;
  }

  /** A valid access token, from cache when possible. */
  token(): Promise<string> {
    if (this.#cached && this.#now() < this.#cached.expiresAt) {
      return Promise.resolve(this.#cached.token);
    }
    this.#inflight ??= this.#fetch().finally(() => this.#inflight = undefined);
    return this.#inflight;
  }

  /** Drops the cached token (after FCM answers 401). */
  invalidate(): void {
    this.#cached = undefined;
  }

  async #fetch(): Promise<string> {
    const now = this.#now();
    const iat = Math.floor(now / 1000);
    const header: { alg: string; typ: string; kid?: string } = { alg: "RS256", typ: "JWT" };
    if (this.#account.private_key_id) header.kid = this.#account.private_key_id;
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader(header)
      .setIssuer(this.#account.client_email)
      .setAudience(this.#tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await this.#key);
    let res: Response;
    try {
      res = await fetch(this.#tokenUri, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
          assertion,
        }),
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(this.#client ? { client: this.#client } : {}),
      });
    } catch (e) {
      throw new OAuthError(`token request failed: ${errorText(e)}`, true);
    }
    const text = await res.text();
    if (!res.ok) {
      // Google's error body names the problem (invalid_grant, …) and holds no secrets.
      throw new OAuthError(
        `token endpoint ${res.status}: ${text.slice(0, 200)}`,
        isTransientStatus(res.status),
      );
    }
    let body: { access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text);
    } catch {
      throw new OAuthError("token endpoint returned non-JSON", true);
    }
    if (typeof body.access_token !== "string") {
      throw new OAuthError("token endpoint returned no access_token", false);
    }
    const lifetimeMs = (typeof body.expires_in === "number" ? body.expires_in : 3600) * 1000;
    this.#cached = {
      token: body.access_token,
      expiresAt: now + Math.max(0, lifetimeMs - EXPIRY_MARGIN_MS),
    };
    return body.access_token;
  }
}

/** Options of {@link FcmSender}. */
export interface FcmSenderOptions {
  /** The parsed service-account file. */
  account: ServiceAccount;
  /** FCM origin; default {@link FCM_ENDPOINT}; tests point it at a mock. */
  endpoint?: string;
  /** Overrides the account's `token_uri` (tests). */
  oauthEndpoint?: string;
  /** Extra trusted CAs (PEM) for the FCM and OAuth requests (`pushEndpoints.caFile`). */
  caCerts?: string[];
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/**
 * Sends data messages through FCM HTTP v1, one request per device token; the missed call
 * also carries a notification block (see `rules.ts`).
 *
 * @example
 * ```ts
 * const s = new FcmSender({ account: parseServiceAccount(JSON.parse(text)) });
 * await s.send(token, { event: "incoming", payload: { callId: 21, calledDevice: "3095" } });
 * ```
 */
export class FcmSender implements PushSender {
  /** Always `"fcm"`. */
  readonly kind = "fcm" as const;
  #url: string;
  #tokens: GoogleAccessTokens;
  #timeoutMs: number;
  #now: () => number;
  #client?: Deno.HttpClient;

  /** @param opts see {@link FcmSenderOptions} */
  constructor(opts: FcmSenderOptions) {
    const endpoint = (opts.endpoint ?? FCM_ENDPOINT).replace(/\/$/, "");
    this.#url = `${endpoint}/v1/projects/${
      encodeURIComponent(opts.account.project_id)
    }/messages:send`;
    // Deno's fetch trusts only the system roots; a private CA needs its own client.
    if (opts.caCerts) this.#client = Deno.createHttpClient({ caCerts: opts.caCerts });
    this.#tokens = new GoogleAccessTokens({
      account: opts.account,
      tokenUri: opts.oauthEndpoint,
      client: this.#client,
    });
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Resolves once the service account's key is imported; rejects when it is unusable. */
  ready(): Promise<void> {
    return this.#tokens.ready();
  }

  /** Sends one message; maps FCM's answer to a {@link PushResult}. */
  async send(token: string, message: PushMessage): Promise<PushResult> {
    let bearer: string;
    try {
      bearer = await this.#tokens.token();
    } catch (e) {
      const reason = `oauth: ${errorText(e)}`;
      return e instanceof OAuthError && !e.transient
        ? { status: "failed", reason }
        : { status: "retry", reason };
    }
    const res = await postPush(this.#url, {
      headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ message: fcmMessage(token, message, this.#now()) }),
      signal: AbortSignal.timeout(this.#timeoutMs),
      client: this.#client,
    }, token);
    if (!(res instanceof Response)) return res;
    const err = await readFcmError(res);
    const reason = `${res.status} ${err.code}`;
    if (res.status === 404 || err.code === "UNREGISTERED" || err.code === "SENDER_ID_MISMATCH") {
      return { status: "invalid", reason };
    }
    if (err.code === "INVALID_ARGUMENT" && err.aboutToken) return { status: "invalid", reason };
    if (res.status === 401) {
      // The access token was revoked or expired early: fetch a new one on the retry.
      this.#tokens.invalidate();
      return { status: "retry", reason };
    }
    if (isTransientStatus(res.status)) return retryResult(res, reason);
    return { status: "failed", reason };
  }

  /** Releases the HTTP client made for `caCerts`; idempotent. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}

/**
 * The v1 `message` object: the payload as string `data`, `android.ttl` until the push
 * expires (whole seconds, at least 0), the call's `collapse_key`, and for `missed` a
 * notification with localisation keys and English defaults, tagged with the call so it
 * replaces an earlier notification of that call.
 *
 * @param now ms since the epoch
 *
 * @example
 * ```ts
 * fcmMessage("tok", { event: "cancelled", payload: { callId: 21 }, expiresAt: Date.now() + 30_000 }, Date.now());
 * ```
 */
export function fcmMessage(
  token: string,
  message: PushMessage,
  now: number,
): Record<string, unknown> {
  const event = message.event ?? "incoming";
  const route = fcmRoute(event);
  const expiresAt = message.expiresAt ?? now + DEFAULT_RING_TIMEOUT_MS;
  const android: Record<string, unknown> = {
    priority: route.priority,
    ttl: `${Math.max(0, Math.ceil((expiresAt - now) / 1000))}s`,
  };
  if (message.collapseId) android.collapse_key = message.collapseId;
  const out: Record<string, unknown> = { token, data: stringifyData(message.payload) };
  if (route.notification) {
    const t = missedText(message.payload);
    out.notification = {
      title: message.alert?.title ?? t.title,
      body: message.alert?.body ?? t.body,
    };
    android.notification = {
      title_loc_key: MISSED_LOC.fcmTitleKey,
      body_loc_key: MISSED_LOC.fcmBodyKey,
      body_loc_args: t.args,
      ...(message.collapseId ? { tag: message.collapseId } : {}),
    };
  }
  out.android = android;
  return out;
}

/**
 * Stands in for a seed `gfcm` app (server key): the legacy API is gone, so every send
 * fails without contacting anything. Keeping it registered lets clients still register
 * tokens under the old app name; they start working once an `fcm` service account with the
 * same app name is configured.
 *
 * @example
 * ```ts
 * await new LegacyFcmSender().send(); // { status: "failed", reason: LEGACY_FCM_WARNING }
 * ```
 */
export class LegacyFcmSender implements PushSender {
  /** Always `"fcm"`. */
  readonly kind = "fcm" as const;

  /** Always `failed`: there is no legacy API to call. */
  send(): Promise<PushResult> {
    return Promise.resolve({ status: "failed", reason: LEGACY_FCM_WARNING });
  }

  /** Nothing to release. */
  close(): void {}
}

/**
 * FCM `data` values must be strings: numbers and booleans become their text, objects JSON,
 * and null/undefined are left out (FCM rejects them).
 *
 * @example
 * ```ts
 * stringifyData({ callId: 21, cause: "normal" }); // { callId: "21", cause: "normal" }
 * ```
 */
export function stringifyData(payload: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  return out;
}

/**
 * FCM errors look like `{"error": {"status": "INVALID_ARGUMENT", "details": [{"@type":
 * "…FcmError", "errorCode": "UNREGISTERED"}, {"@type": "…BadRequest", "fieldViolations":
 * [{"field": "message.token"}]}]}}`. The FcmError code is more specific than the status.
 */
async function readFcmError(res: Response): Promise<{ code: string; aboutToken: boolean }> {
  try {
    const body = await res.json() as {
      error?: {
        status?: string;
        message?: string;
        details?: Array<{ errorCode?: string; fieldViolations?: Array<{ field?: string }> }>;
      };
    };
    const e = body.error ?? {};
    const details = e.details ?? [];
    const code = details.find((d) => typeof d.errorCode === "string")?.errorCode ?? e.status ??
      "unknown";
    const aboutToken = details.some((d) =>
      d.fieldViolations?.some((f) => f.field === "message.token")
    ) ||
      /registration token/i.test(e.message ?? "");
    return { code, aboutToken };
  } catch {
    return { code: res.statusText || "unknown", aboutToken: false };
  }
}
