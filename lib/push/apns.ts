/**
 * Apple Push Notification service sender over HTTP/2 (mx-protocol §6.7, modernised per §7.15).
 *
 * Differences from the original, on purpose: APNs now requires `apns-push-type` and, for
 * PushKit, a `<bundle>.voip` topic; every push carries `apns-expiration` (the ring timeout
 * for a ringing call) and the call id as `apns-collapse-id`. Which topic, push type and
 * priority an event gets is decided in `rules.ts`: a VoIP app gets only `incoming` as a VoIP
 * push and everything after it on its own bundle id. Payload fields stay top-level as the
 * original sent them; VoIP pushes carry no `aps`, the others the `aps` iOS needs.
 *
 * @module
 */
import { importPKCS8, SignJWT } from "jose";
import { errorText, type PushMessage, type PushResult, type PushSender } from "./types.ts";
import { isTransientStatus, postPush, retryResult } from "./gateway.ts";
import { apnsRoute, DEFAULT_RING_TIMEOUT_MS, MISSED_LOC, missedText } from "./rules.ts";
import {
  PROVIDER_TOKEN_MAX_AGE_MS,
  type ProviderToken,
  type ProviderTokenStore,
} from "../store/provider_tokens.ts";

/** Apple's production gateway. */
export const APNS_PRODUCTION = "https://api.push.apple.com";
/** Apple's development (sandbox) gateway. */
export const APNS_SANDBOX = "https://api.development.push.apple.com";

/** `apns-collapse-id` may not exceed 64 bytes. */
const MAX_COLLAPSE_ID = 64;

/** Reasons meaning the device token itself is unusable (the token is deleted). */
const DEAD_TOKEN_REASONS = new Set(["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"]);

/**
 * Makes and caches APNs provider tokens (ES256 JWT, `iss` = team id, `kid` = key id) from a
 * `.p8` key. One signer serves every sender of the same key (production, sandbox, several
 * topics). With a {@link ProviderTokenStore} the token is shared through Deno KV with every
 * process using the key, so Apple sees one token per key, replaced every 50 minutes.
 *
 * @example
 * ```ts
 * const signer = new ApnsTokenSigner({ keyPem: await Deno.readTextFile("AuthKey_ABC.p8"), keyId: "ABC", teamId: "TEAM" });
 * const jwt = await signer.token();
 * ```
 */
export class ApnsTokenSigner {
  /** `<teamId>.<keyId>`: names the key in the shared store. */
  readonly id: string;
  #key: Promise<CryptoKey>;
  #keyId: string;
  #teamId: string;
  #now: () => number;
  #store?: ProviderTokenStore;
  #cached?: ProviderToken;
  #stale?: string;
  #inflight?: Promise<string>;

  /**
   * @param opts.keyPem PKCS#8 PEM of the EC P-256 key (the `.p8` file's content)
   * @param opts.store shares tokens with other processes (default: this process only)
   * @param opts.now clock in ms (tests)
   */
  constructor(
    opts: {
      keyPem: string;
      keyId: string;
      teamId: string;
      store?: ProviderTokenStore;
      now?: () => number;
    },
  ) {
    this.#key = importPKCS8(opts.keyPem, "ES256");
    // Surface a bad key at the first send, not as an unhandled rejection at construction.
    this.#key.catch(() => {});
    this.#keyId = opts.keyId;
    this.#teamId = opts.teamId;
    this.#store = opts.store;
    this.#now = opts.now ?? Date.now;
    this.id = `${opts.teamId}.${opts.keyId}`;
  }

  /** Resolves once the key is imported; rejects when the `.p8` content is not a usable key. */
  async ready(): Promise<void> {
    await this.#key;
  }

  /** The current provider token, replaced once it is 50 minutes old. */
  token(): Promise<string> {
    const maxAge = this.#store?.maxAgeMs ?? PROVIDER_TOKEN_MAX_AGE_MS;
    if (this.#cached && this.#now() - this.#cached.issuedAt < maxAge) {
      return Promise.resolve(this.#cached.jwt);
    }
    this.#inflight ??= this.#refresh().finally(() => this.#inflight = undefined);
    return this.#inflight;
  }

  /** Marks the current token as refused (Apple answered `ExpiredProviderToken`). */
  invalidate(): void {
    if (this.#cached) this.#stale = this.#cached.jwt;
    this.#cached = undefined;
  }

  async #refresh(): Promise<string> {
    const sign = (issuedAt: number) => this.#sign(issuedAt);
    const stale = this.#stale;
    this.#stale = undefined;
    let t: ProviderToken;
    if (this.#store) {
      t = stale
        ? await this.#store.replace(this.id, stale, sign)
        : await this.#store.get(this.id, sign);
    } else {
      const issuedAt = Math.floor(this.#now() / 1000) * 1000;
      t = { jwt: await sign(issuedAt), issuedAt };
    }
    this.#cached = t;
    return t.jwt;
  }

  async #sign(issuedAt: number): Promise<string> {
    return await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: this.#keyId })
      .setIssuer(this.#teamId)
      .setIssuedAt(Math.floor(issuedAt / 1000))
      .sign(await this.#key);
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
  /** Bundle id (certificate UID or configured topic; a trailing `.voip` is dropped). */
  topic: string;
  /** Certificate (TLS client auth) or provider token. */
  auth: ApnsAuth;
  /**
   * PushKit app: `incoming` goes to `<bundle>.voip` as push type `voip` (no `aps`); the
   * follow-ups go to `<bundle>` as alert or background pushes.
   */
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
 * Sends pushes for one app on one gateway.
 *
 * @example
 * ```ts
 * const s = new ApnsSender({ endpoint: APNS_SANDBOX, topic: "com.app", auth: { type: "token", signer } });
 * await s.send(deviceToken, { event: "incoming", payload: { callId: 21 }, collapseId: "2808630435142226622" });
 * ```
 */
export class ApnsSender implements PushSender {
  /** Always `"apns"`. */
  readonly kind = "apns" as const;
  /** Whether `incoming` goes out as a PushKit (VoIP) push. */
  readonly voip: boolean;
  /** The app's own topic (`apns-topic` of alert and background pushes). */
  readonly bundleTopic: string;
  /** `apns-topic` of `incoming`: `<bundle>.voip` for VoIP apps, else the bundle id. */
  readonly apnsTopic: string;
  #opts: ApnsSenderOptions;
  #client: Deno.HttpClient;
  #closed = false;

  /** @param opts see {@link ApnsSenderOptions} */
  constructor(opts: ApnsSenderOptions) {
    this.#opts = opts;
    this.voip = opts.voip === true;
    // A VoIP Services certificate's UID already ends in ".voip".
    this.bundleTopic = opts.topic.replace(/\.voip$/, "");
    this.apnsTopic = this.voip ? `${this.bundleTopic}.voip` : opts.topic;
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

  /** Push type of `incoming` (`apns-push-type`). */
  get pushType(): "voip" | "alert" {
    return this.voip ? "voip" : "alert";
  }

  /** Sends one push; maps Apple's answer to a {@link PushResult}. */
  async send(token: string, message: PushMessage): Promise<PushResult> {
    const o = this.#opts;
    const now = (o.now ?? Date.now)();
    const route = apnsRoute(message.event ?? "incoming", this.voip);
    const expiresAt = message.expiresAt ?? now + DEFAULT_RING_TIMEOUT_MS;
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "apns-topic": route.topic === "voip" ? this.apnsTopic : this.bundleTopic,
      "apns-push-type": route.pushType,
      "apns-priority": String(route.priority),
      "apns-expiration": String(Math.max(1, Math.floor(expiresAt / 1000))),
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
    const res = await postPush(
      `${o.endpoint.replace(/\/$/, "")}/3/device/${encodeURIComponent(token)}`,
      {
        headers,
        body: JSON.stringify(apnsBody(route.pushType, message)),
        client: this.#client,
        signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
      },
      token,
    );
    if (!(res instanceof Response)) return res;
    const reason = await readReason(res);
    if (res.status === 410 || (res.status === 400 && DEAD_TOKEN_REASONS.has(reason))) {
      return { status: "invalid", reason: `${res.status} ${reason}` };
    }
    if (isTransientStatus(res.status)) return retryResult(res, `${res.status} ${reason}`);
    if (res.status === 403 && reason === "ExpiredProviderToken" && o.auth.type === "token") {
      // Our clock or cache drifted: get a fresh token and let the dispatcher retry.
      o.auth.signer.invalidate();
      return { status: "retry", reason: `403 ${reason}` };
    }
    return { status: "failed", reason: `${res.status} ${reason}` };
  }

  /** Closes the HTTP/2 connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }
}

/**
 * The JSON body: payload keys stay top-level; VoIP pushes add nothing, background pushes
 * `content-available`, alerts the text iOS shows (the missed call with localisation keys
 * whose English text is the fallback).
 *
 * @example
 * ```ts
 * apnsBody("background", { event: "cancelled", payload: { callId: 21 } });
 * // { callId: 21, aps: { "content-available": 1 } }
 * ```
 */
export function apnsBody(
  pushType: "voip" | "alert" | "background",
  message: PushMessage,
): Record<string, unknown> {
  const p = message.payload;
  if (pushType === "voip") return { ...p };
  if (pushType === "background") return { ...p, aps: { "content-available": 1 } };
  if (message.event === "missed") {
    const t = missedText(p);
    const alert = {
      title: message.alert?.title ?? t.title,
      body: message.alert?.body ?? t.body,
      "title-loc-key": MISSED_LOC.apnsTitleKey,
      "loc-key": MISSED_LOC.apnsBodyKey,
      "loc-args": t.args,
    };
    return { ...p, aps: { alert, sound: "default" } };
  }
  const calling = p.callingDevice;
  const alert = {
    title: message.alert?.title ?? "Incoming call",
    body: message.alert?.body ?? (typeof calling === "string" ? calling : ""),
  };
  return { ...p, aps: { alert, sound: "default" } };
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
