/**
 * Apple Push Notification service sender over HTTP/2 (mx-protocol §6.7, modernised per §7.15).
 *
 * Differences from the original, on purpose: APNs now requires `apns-push-type` and, for
 * PushKit, a `<bundle>.voip` topic; an incoming call is useless after half a minute, so
 * pushes carry `apns-expiration` = now + 30 s and the call id as `apns-collapse-id`.
 * Payload fields stay top-level as the original sent them; only alert pushes add `aps`.
 *
 * @module
 */
import { importPKCS8, SignJWT } from "jose";
import {
  errorText,
  isTransientStatus,
  type PushMessage,
  type PushResult,
  type PushSender,
  redact,
  retryResult,
} from "./types.ts";

/** Apple's production gateway. */
export const APNS_PRODUCTION = "https://api.push.apple.com";
/** Apple's development (sandbox) gateway. */
export const APNS_SANDBOX = "https://api.development.push.apple.com";

/** How long a call push stays deliverable. */
const EXPIRATION_SECONDS = 30;
/** Apple accepts a provider token for an hour and refuses refreshes more often than 20 min. */
const TOKEN_REFRESH_MS = 50 * 60 * 1000;
/** `apns-collapse-id` may not exceed 64 bytes. */
const MAX_COLLAPSE_ID = 64;

/** Reasons meaning the device token itself is unusable (the token is deleted). */
const DEAD_TOKEN_REASONS = new Set(["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"]);

/**
 * Makes and caches APNs provider tokens (ES256 JWT, `iss` = team id, `kid` = key id) from a
 * `.p8` key. One signer may serve the production and sandbox senders of the same key.
 *
 * @example
 * ```ts
 * const signer = new ApnsTokenSigner({ keyPem: await Deno.readTextFile("AuthKey_ABC.p8"), keyId: "ABC", teamId: "TEAM" });
 * const jwt = await signer.token();
 * ```
 */
export class ApnsTokenSigner {
  #key: Promise<CryptoKey>;
  #keyId: string;
  #teamId: string;
  #now: () => number;
  #cached?: { jwt: string; at: number };

  /**
   * @param opts.keyPem PKCS#8 PEM of the EC P-256 key (the `.p8` file's content)
   * @param opts.now clock in ms (tests)
   */
  constructor(opts: { keyPem: string; keyId: string; teamId: string; now?: () => number }) {
    this.#key = importPKCS8(opts.keyPem, "ES256");
    // Surface a bad key at the first send, not as an unhandled rejection at construction.
    this.#key.catch(() => {});
    this.#keyId = opts.keyId;
    this.#teamId = opts.teamId;
    this.#now = opts.now ?? Date.now;
  }

  /** Resolves once the key is imported; rejects when the `.p8` content is not a usable key. */
  async ready(): Promise<void> {
    await this.#key;
  }

  /** The current provider token, re-signed after 50 minutes. */
  async token(): Promise<string> {
    const now = this.#now();
    if (this.#cached && now - this.#cached.at < TOKEN_REFRESH_MS) return this.#cached.jwt;
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: this.#keyId })
      .setIssuer(this.#teamId)
      .setIssuedAt(Math.floor(now / 1000))
      .sign(await this.#key);
    this.#cached = { jwt, at: now };
    return jwt;
  }

  /** Drops the cached token (after Apple answers `ExpiredProviderToken`). */
  invalidate(): void {
    this.#cached = undefined;
  }
}

/** How an APNs sender authenticates. */
export type ApnsAuth =
  | { type: "certificate"; certPem: string; keyPem: string }
  | { type: "token"; signer: ApnsTokenSigner };

/** Options of {@link ApnsSender}. */
export interface ApnsSenderOptions {
  /** Gateway origin, e.g. {@link APNS_PRODUCTION}; tests point it at a mock. */
  endpoint: string;
  /** Bundle id (certificate UID or configured topic). */
  topic: string;
  /** Certificate (TLS client auth) or provider token. */
  auth: ApnsAuth;
  /** PushKit VoIP pushes: topic `<bundle>.voip`, push type `voip`, no `aps`. */
  voip?: boolean;
  /** Extra trusted CAs (PEM): only for test gateways. */
  caCerts?: string[];
  /** Per-request timeout; a timeout is a `retry`. Default 10 s. */
  timeoutMs?: number;
  /** `user-agent` header. */
  userAgent?: string;
  /** Clock in ms (tests). */
  now?: () => number;
}

/**
 * Sends pushes to one APNs topic on one gateway.
 *
 * @example
 * ```ts
 * const s = new ApnsSender({ endpoint: APNS_SANDBOX, topic: "com.app", auth: { type: "token", signer } });
 * await s.send(deviceToken, { payload: { callId: 21 }, collapseId: "2808630435142226622" });
 * ```
 */
export class ApnsSender implements PushSender {
  /** Always `"apns"`. */
  readonly kind = "apns" as const;
  /** Value of the `apns-topic` header. */
  readonly apnsTopic: string;
  #opts: ApnsSenderOptions;
  #client: Deno.HttpClient;
  #closed = false;

  /** @param opts see {@link ApnsSenderOptions} */
  constructor(opts: ApnsSenderOptions) {
    this.#opts = opts;
    // A VoIP Services certificate's UID already ends in ".voip".
    this.apnsTopic = opts.voip && !opts.topic.endsWith(".voip") ? `${opts.topic}.voip` : opts.topic;
    const tls = opts.auth.type === "certificate"
      ? { cert: opts.auth.certPem, key: opts.auth.keyPem }
      : {};
    // APNs speaks HTTP/2 only.
    this.#client = Deno.createHttpClient({
      http1: false,
      http2: true,
      ...(opts.caCerts ? { caCerts: opts.caCerts } : {}),
      ...tls,
    });
  }

  /** Push type sent in `apns-push-type`. */
  get pushType(): "voip" | "alert" {
    return this.#opts.voip ? "voip" : "alert";
  }

  /** Sends one push; maps Apple's answer to a {@link PushResult}. */
  async send(token: string, message: PushMessage): Promise<PushResult> {
    const o = this.#opts;
    const now = (o.now ?? Date.now)();
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "apns-topic": this.apnsTopic,
      "apns-push-type": this.pushType,
      "apns-priority": "10",
      "apns-expiration": String(Math.floor(now / 1000) + EXPIRATION_SECONDS),
      "user-agent": o.userAgent ?? "mxflex",
    };
    if (message.collapseId) {
      headers["apns-collapse-id"] = message.collapseId.slice(0, MAX_COLLAPSE_ID);
    }
    if (o.auth.type === "token") {
      try {
        headers["authorization"] = `bearer ${await o.auth.signer.token()}`;
      } catch (e) {
        return { status: "failed", reason: `cannot sign provider token: ${errorText(e)}` };
      }
    }
    let res: Response;
    try {
      res = await fetch(`${o.endpoint.replace(/\/$/, "")}/3/device/${encodeURIComponent(token)}`, {
        method: "POST",
        headers,
        body: JSON.stringify(this.#body(message)),
        client: this.#client,
        signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
      });
    } catch (e) {
      // Deno's fetch errors quote the URL, which contains the device token.
      return {
        status: "retry",
        reason: `transport: ${errorText(e).replaceAll(token, redact(token))}`,
      };
    }
    if (res.status === 200) {
      await res.body?.cancel();
      return { status: "ok" };
    }
    const reason = await readReason(res);
    if (res.status === 410 || (res.status === 400 && DEAD_TOKEN_REASONS.has(reason))) {
      return { status: "invalid", reason: `${res.status} ${reason}` };
    }
    if (isTransientStatus(res.status)) return retryResult(res, `${res.status} ${reason}`);
    if (res.status === 403 && reason === "ExpiredProviderToken" && o.auth.type === "token") {
      // Our clock or cache drifted: sign a fresh token and let the dispatcher retry.
      o.auth.signer.invalidate();
      return { status: "retry", reason: `403 ${reason}` };
    }
    return { status: "failed", reason: `${res.status} ${reason}` };
  }

  /** Payload keys stay top-level; alert pushes add the `aps` dictionary iOS needs to show them. */
  #body(message: PushMessage): Record<string, unknown> {
    if (this.#opts.voip) return { ...message.payload };
    const calling = message.payload.callingDevice;
    const alert = {
      title: message.alert?.title ?? "Incoming call",
      body: message.alert?.body ?? (typeof calling === "string" ? calling : ""),
    };
    return { ...message.payload, aps: { alert, sound: "default" } };
  }

  /** Closes the HTTP/2 connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }
}

/** Apple's error body is `{"reason": "..."}`; fall back to the status text. */
async function readReason(res: Response): Promise<string> {
  try {
    const body = await res.json() as { reason?: unknown };
    if (typeof body.reason === "string") return body.reason;
  } catch {
    // not JSON: the reason is unknown
  }
  return res.statusText || "unknown";
}
