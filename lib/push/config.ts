/**
 * Turns the push part of the configuration into senders keyed by app key.
 *
 * Accepted keys of the config object (file paths are relative to the config file's
 * directory):
 *
 * ```jsonc
 * {
 *   // seed form: PKCS#12 certificate -> password; bundle id and environments come from it
 *   "apns": {
 *     "push-cert.p12": "password",
 *     // same, for a PushKit (VoIP) app: topic "<bundle>.voip", push type "voip"
 *     "voip-cert.p12": { "password": "password", "voip": true },
 *     // token auth may sit here too: a .p8 file -> its settings (see apnsKeys)
 *     "AuthKey_ABC123.p8": { "keyId": "ABC123", "teamId": "TEAM123", "topic": "com.app" }
 *   },
 *   // modern form: APNs token (.p8) keys
 *   "apnsKeys": [
 *     { "key": "AuthKey_ABC123.p8", "keyId": "ABC123", "teamId": "TEAM123",
 *       "topic": "com.app", "voip": true,
 *       "sandbox": false }  // true: sandbox only; false: production only; absent: both
 *   ],
 *   // FCM HTTP v1: app name -> service-account JSON file
 *   "fcm": { "app-name": "service-account.json" },
 *   // seed form: legacy server keys. Still loads, but cannot send (warning).
 *   "gfcm": { "app-name": "GOOGLE-APP-KEY" },
 *   // endpoint overrides, for tests and private relays
 *   "pushEndpoints": { "apnsProduction": "https://…", "apnsSandbox": "https://…",
 *                      "fcm": "https://…", "fcmOauth": "https://…/token",
 *                      "caFile": "extra-ca.pem" },
 *   // seconds an incoming call can be answered: lifetime of `incoming` (default 30)
 *   "pushRingTimeout": 30
 * }
 * ```
 *
 * A VoIP app sends its follow-ups (answered, cancelled, missed…) to its own bundle id with
 * the same credential: a `.p8` key covers every topic of its team; a `.p12` certificate must
 * list the bundle id as well as `<bundle>.voip` (Apple's universal certificates do), which
 * is checked with a warning.
 *
 * App keys are `apns:<bundle>` (production), `apns:<bundle>~` (sandbox, the seed's
 * `?sandbox` registrations) and `fcm:<app>`. A bad entry is skipped with a warning so one
 * broken certificate does not stop the server; warnings never contain passwords or keys.
 *
 * @module
 */
import { resolve } from "node:path";
import { APNS_PRODUCTION, APNS_SANDBOX, ApnsSender, ApnsTokenSigner } from "./apns.ts";
import { FcmSender, LEGACY_FCM_WARNING, LegacyFcmSender, parseServiceAccount } from "./fcm.ts";
import { DEFAULT_RING_TIMEOUT_MS } from "./rules.ts";
import { appKey, errorText, type PushKind, type PushSender } from "./types.ts";
import type { ProviderTokenStore } from "../store/provider_tokens.ts";

/** Result of {@link loadPushConfig}. */
export interface PushConfig {
  /** Sender per app key (`apns:<bundle>[~]`, `fcm:<app>`). */
  apps: Map<string, PushSender>;
  /** How long an incoming call can be answered (`pushRingTimeout`), ms. */
  ringTimeoutMs: number;
  /** Human-readable problems found while loading; log them at start-up. */
  warnings: string[];
}

/** Options of {@link loadPushConfig}. */
export interface LoadPushOptions {
  /** Shares APNs provider tokens with other processes (default: per process). */
  providerTokens?: ProviderTokenStore;
}

/** Keys of `pushEndpoints`; any other is a warning. */
export const PUSH_ENDPOINT_KEYS = [
  "apnsProduction",
  "apnsSandbox",
  "fcm",
  "fcmOauth",
  "caFile",
] as const;

/** Endpoint overrides (`pushEndpoints`). */
interface Endpoints {
  apnsProduction: string;
  apnsSandbox: string;
  fcm?: string;
  fcmOauth?: string;
  caCerts?: string[];
}

/** One APNs token-auth entry (`apnsKeys[i]`, or a `.p8` entry of `apns`). */
interface ApnsKeyEntry {
  key: string;
  keyId: string;
  teamId: string;
  topic: string;
  voip?: boolean;
  sandbox?: boolean;
}

/**
 * Builds the senders for a parsed config object.
 *
 * @param raw the whole parsed config (JSON or YAML); non-push keys are ignored
 * @param baseDir directory that relative file paths are resolved against
 *
 * @example
 * ```ts
 * const { apps, warnings } = await loadPushConfig(JSON.parse(text), "/etc/mxflex");
 * warnings.forEach((w) => console.warn(w));
 * ```
 */
export async function loadPushConfig(
  raw: unknown,
  baseDir: string,
  opts: LoadPushOptions = {},
): Promise<PushConfig> {
  const cfg = isObject(raw) ? raw : {};
  const apps = new Map<string, PushSender>();
  const warnings: string[] = [];
  // One signer per .p8 key, however many topics and gateways use it.
  const signers = new Map<string, ApnsTokenSigner>();
  const keyCtx: KeyContext = { baseDir, signers, store: opts.providerTokens };
  const add = (key: string, sender: PushSender, source: string) => {
    if (apps.has(key)) {
      warnings.push(`push: ${source}: ${key} is already configured; entry ignored`);
      sender.close();
      return;
    }
    apps.set(key, sender);
  };
  const endpoints = await readEndpoints(cfg.pushEndpoints, baseDir, warnings);

  const apns = cfg.apns;
  if (apns !== undefined && !isObject(apns)) warnings.push("push: apns must be an object");
  for (const [file, value] of Object.entries(isObject(apns) ? apns : {})) {
    const isKeyEntry = file.endsWith(".p8") || (isObject(value) && "keyId" in value);
    try {
      if (isKeyEntry) {
        await addApnsKey({ ...asObject(value), key: file }, keyCtx, endpoints, add);
      } else {
        await addApnsCert(file, value, baseDir, endpoints, add, warnings);
      }
    } catch (e) {
      warnings.push(`push: apns ${file}: ${errorText(e)}; skipped`);
    }
  }

  const keys = cfg.apnsKeys;
  if (keys !== undefined && !Array.isArray(keys)) warnings.push("push: apnsKeys must be an array");
  for (const [i, entry] of (Array.isArray(keys) ? keys : []).entries()) {
    try {
      await addApnsKey(asObject(entry), keyCtx, endpoints, add);
    } catch (e) {
      warnings.push(`push: apnsKeys[${i}]: ${errorText(e)}; skipped`);
    }
  }

  const fcm = cfg.fcm;
  if (fcm !== undefined && !isObject(fcm)) warnings.push("push: fcm must be an object");
  for (const [app, file] of Object.entries(isObject(fcm) ? fcm : {})) {
    try {
      if (typeof file !== "string") throw new Error("value must be a service-account file path");
      const text = await Deno.readTextFile(resolve(baseDir, file));
      const account = parseServiceAccount(JSON.parse(text));
      const sender = new FcmSender({
        account,
        endpoint: endpoints.fcm,
        oauthEndpoint: endpoints.fcmOauth,
        caCerts: endpoints.caCerts,
      });
      try {
        await sender.ready();
      } catch (e) {
        sender.close();
        throw e;
      }
      add(appKey("fcm", app), sender, `fcm ${app}`);
    } catch (e) {
      warnings.push(`push: fcm ${app}: ${errorText(e)}; skipped`);
    }
  }

  const gfcm = cfg.gfcm;
  if (gfcm !== undefined && !isObject(gfcm)) warnings.push("push: gfcm must be an object");
  for (const app of Object.keys(isObject(gfcm) ? gfcm : {})) {
    const key = appKey("fcm", app);
    if (apps.has(key)) {
      warnings.push(
        `push: gfcm ${app}: legacy server key ignored; the fcm service account is used`,
      );
      continue;
    }
    warnings.push(
      `push: gfcm ${app}: ${LEGACY_FCM_WARNING}. Tokens are accepted but no pushes are sent.`,
    );
    apps.set(key, new LegacyFcmSender());
  }
  return { apps, ringTimeoutMs: readRingTimeout(cfg.pushRingTimeout, warnings), warnings };
}

/** `pushRingTimeout`: seconds, 5–600; anything else is a warning and the default. */
function readRingTimeout(raw: unknown, warnings: string[]): number {
  if (raw === undefined) return DEFAULT_RING_TIMEOUT_MS;
  if (typeof raw === "number" && Number.isFinite(raw) && raw >= 5 && raw <= 600) {
    return Math.round(raw * 1000);
  }
  warnings.push(
    `push: pushRingTimeout must be 5–600 seconds; using ${DEFAULT_RING_TIMEOUT_MS / 1000}`,
  );
  return DEFAULT_RING_TIMEOUT_MS;
}

/**
 * Whether tokens of this kind and app can be registered (mx-protocol §6.4 step 2).
 *
 * @param app bundle id with `~` for the APNs sandbox, or FCM app name
 *
 * @example
 * ```ts
 * isSupportedApp(apps, "apns", "com.xyzrd.PushTest~");
 * ```
 */
export function isSupportedApp(
  apps: Map<string, PushSender>,
  kind: PushKind,
  app: string,
): boolean {
  return apps.has(appKey(kind, app));
}

/**
 * Maps the `<type>` path segment of `POST …/token/<type>/<bundle>` to a kind: `apns`, and
 * `gfcm` (seed) or `fcm` both to `fcm`. Anything else is `undefined` (404 `bad push type`).
 *
 * @example
 * ```ts
 * pushKindFromPath("gfcm"); // "fcm"
 * ```
 */
export function pushKindFromPath(type: string): PushKind | undefined {
  if (type === "apns") return "apns";
  if (type === "gfcm" || type === "fcm") return "fcm";
  return undefined;
}

/** Closes every sender (HTTP/2 connections) at shutdown. */
export function closePushApps(apps: Map<string, PushSender>): void {
  for (const s of apps.values()) s.close();
}

type Add = (key: string, sender: PushSender, source: string) => void;

async function addApnsCert(
  file: string,
  value: unknown,
  baseDir: string,
  ep: Endpoints,
  add: Add,
  warnings: string[],
): Promise<void> {
  const opts = typeof value === "string" ? { password: value } : asObject(value);
  if (typeof opts.password !== "string") throw new Error("password must be a string");
  // node-forge (~10 MB resident) is loaded only when a .p12 certificate is configured.
  const { readApnsP12 } = await import("./p12.ts");
  const cert = readApnsP12(await Deno.readFile(resolve(baseDir, file)), opts.password);
  // A "VoIP Services" certificate names the .voip topic itself.
  const voip = opts.voip === true || cert.topic.endsWith(".voip");
  const bundle = cert.topic.replace(/\.voip$/, "");
  if (voip && cert.topics.length > 0 && !cert.topics.includes(`${bundle}.voip`)) {
    warnings.push(
      `push: apns ${file}: certificate does not list ${bundle}.voip; VoIP pushes may be refused`,
    );
  }
  // Follow-ups of a VoIP app go to the bundle id itself, with this same certificate.
  if (voip && cert.topic !== bundle && !cert.topics.includes(bundle)) {
    warnings.push(
      `push: apns ${file}: certificate does not cover ${bundle}; follow-up pushes (answered, ` +
        `cancelled, missed) will be refused: use a certificate listing both topics or a .p8 key`,
    );
  }
  const auth = { type: "certificate" as const, certPem: cert.certPem, keyPem: cert.keyPem };
  for (const env of cert.environments) {
    const sandbox = env === "sandbox";
    add(
      appKey("apns", cert.topic + (sandbox ? "~" : "")),
      new ApnsSender({
        endpoint: sandbox ? ep.apnsSandbox : ep.apnsProduction,
        topic: cert.topic,
        auth,
        voip,
        caCerts: ep.caCerts,
      }),
      `apns ${file}`,
    );
  }
}

/** What `.p8` entries share while one config loads. */
interface KeyContext {
  baseDir: string;
  signers: Map<string, ApnsTokenSigner>;
  store?: ProviderTokenStore;
}

async function addApnsKey(
  o: Record<string, unknown>,
  ctx: KeyContext,
  ep: Endpoints,
  add: Add,
): Promise<void> {
  const e = checkKeyEntry(o);
  const file = resolve(ctx.baseDir, e.key);
  const id = `${file}|${e.teamId}.${e.keyId}`;
  let signer = ctx.signers.get(id);
  if (!signer) {
    signer = new ApnsTokenSigner({
      keyPem: await Deno.readTextFile(file),
      keyId: e.keyId,
      teamId: e.teamId,
      store: ctx.store,
    });
    await signer.ready();
    ctx.signers.set(id, signer);
  }
  const envs = e.sandbox === undefined ? [false, true] : [e.sandbox];
  for (const sandbox of envs) {
    add(
      appKey("apns", e.topic + (sandbox ? "~" : "")),
      new ApnsSender({
        endpoint: sandbox ? ep.apnsSandbox : ep.apnsProduction,
        topic: e.topic,
        auth: { type: "token", signer },
        voip: e.voip === true,
        caCerts: ep.caCerts,
      }),
      `apns key ${e.keyId}`,
    );
  }
}

function checkKeyEntry(o: Record<string, unknown>): ApnsKeyEntry {
  for (const f of ["key", "keyId", "teamId", "topic"]) {
    if (typeof o[f] !== "string" || o[f] === "") throw new Error(`${f} must be a non-empty string`);
  }
  for (const f of ["voip", "sandbox"]) {
    if (o[f] !== undefined && typeof o[f] !== "boolean") {
      throw new Error(`${f} must be true or false`);
    }
  }
  return o as unknown as ApnsKeyEntry;
}

async function readEndpoints(
  raw: unknown,
  baseDir: string,
  warnings: string[],
): Promise<Endpoints> {
  const o = isObject(raw) ? raw : {};
  for (const k of Object.keys(o)) {
    if (!(PUSH_ENDPOINT_KEYS as readonly string[]).includes(k)) {
      warnings.push(
        `push: pushEndpoints.${k}: unknown key, ignored (known: ${PUSH_ENDPOINT_KEYS.join(", ")})`,
      );
    }
  }
  const str = (k: string) => (typeof o[k] === "string" ? o[k] as string : undefined);
  const ep: Endpoints = {
    apnsProduction: str("apnsProduction") ?? APNS_PRODUCTION,
    apnsSandbox: str("apnsSandbox") ?? APNS_SANDBOX,
    fcm: str("fcm"),
    fcmOauth: str("fcmOauth"),
  };
  const caFile = str("caFile");
  if (caFile) {
    try {
      ep.caCerts = [await Deno.readTextFile(resolve(baseDir, caFile))];
    } catch (e) {
      warnings.push(`push: pushEndpoints.caFile: ${errorText(e)}`);
    }
  }
  return ep;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asObject(v: unknown): Record<string, unknown> {
  if (!isObject(v)) throw new Error("entry must be an object");
  return v;
}
