/**
 * Configuration: loads both seed formats unchanged and validates them.
 *
 * - Flex (seed 1, `mxflex.yaml`): `host`, `mx: {addr, login, password}` — one MX, named
 *   `default`.
 * - Proxy (seed 2, `mxproxy.json`): `mx: {<name>: {addr, login, password}}`, `apns`, `gfcm`.
 *
 * JSON or YAML is detected by content (YAML is parsed by `yaml`, which also reads JSON; it is
 * loaded only for a config that is not JSON: it costs ~6 MB of resident memory per process).
 * Extra keys this project adds are optional and documented in README.md.
 *
 * @module
 */
import { DEFAULT_CONNECT_TIMEOUT_MS } from "./csta/transport.ts";
import { DEFAULT_LOGIN_LIMITS, type LoginLimits } from "./auth/login_guard.ts";
import { DEFAULT_STREAM_LIMITS, type StreamLimits } from "./mx/token_monitors.ts";
import { TrustedProxies } from "./http/trusted_proxies.ts";

/** TLS trust settings for one MX (see lib/csta/transport.ts). */
export interface MxTlsConfig {
  /** Pinned SHA-256 fingerprint of the MX certificate. */
  fingerprint?: string;
  /** PEM file with the CA (or the MX's own certificate) to verify against. */
  ca?: string;
  /** Accept a changed certificate instead of refusing it (trust on first use off). */
  allowChangedCertificate?: boolean;
  /** Plain TCP instead of TLS: only for the simulator and tests. */
  plain?: boolean;
}

/** One configured MX. */
export interface MxConfig {
  /** Name used in `/mx/<name>/…`; `default` for the seed-1 single-MX form. */
  name: string;
  /** Where it is configured, for messages: `mx.<name>`, or `mx` in the seed-1 form. */
  key: string;
  hostname: string;
  port: number;
  login: string;
  password: string;
  tls: MxTlsConfig;
}

/** The whole, validated configuration. */
export interface AppConfig {
  /** Listen address (seed rule: a domain name means HTTPS with Let's Encrypt). */
  host: string;
  /** Every configured MX, in file order. */
  mx: MxConfig[];
  /** Name of the MX behind the Flex API (`/api/...`); the first one by default. */
  flexMx: string;
  /** JWT lifetime in seconds. */
  tokenTtl: number;
  /** How long one JWT signing key signs new tokens, seconds (default one day). */
  tokenKeyRotation: number;
  /** How often the KV change feeds are read, ms; 0 = by KV kind (see `defaultKvPollMs`). */
  kvPollMs: number;
  /** This instance's id in `/readyz` and `/metrics`; "" = host name (and supervisor index). */
  instanceId: string;
  /** Per-instance `/healthz`, `/readyz`, `/metrics` listener (port + index − 1); "" = none. */
  opsHost: string;
  /** Reply timeout for MX commands in ms. */
  requestTimeoutMs: number;
  /** Connect timeout (TCP + TLS handshake) for every MX connection in ms. */
  connectTimeoutMs: number;
  /** Deno KV path or KV Connect URL for device tokens, dedupe, certificates; "" = default. */
  db: string;
  /** Static files directory (seed: `html` in the working directory). */
  staticDir: string;
  /** Static TLS certificate for operators with their own. */
  tls?: { cert: string; key: string };
  /**
   * ACME options for the automatic certificate. `httpPort`/`httpsPort` (default 80/443) are
   * the ports bound when a port forward maps the public 80/443 elsewhere.
   */
  acme: {
    email?: string;
    directoryUrl?: string;
    cacheDir?: string;
    httpPort?: number;
    httpsPort?: number;
  };
  /** Bearer token that opens `/metrics` to non-loopback clients; "" = loopback only. */
  metricsToken: string;
  /**
   * Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client (addresses and CIDR
   * ranges); empty = the headers are ignored.
   */
  trustedProxies: string[];
  /** Login failure limits and event-stream caps. */
  rateLimits: RateLimits;
  /**
   * Raw push section (`apns`, `gfcm`, `fcm`, `apnsKeys`, `pushEndpoints`, `pushRingTimeout`)
   * for lib/push.
   */
  push: Record<string, unknown>;
  /** Directory of the config file: relative paths in it are resolved from here. */
  baseDir: string;
  /** Problems that do not stop the start (unknown keys); logged by the server at start-up. */
  warnings: string[];
}

/** `rateLimits`: login limits (lib/auth/login_guard.ts) and stream caps. */
export interface RateLimits extends LoginLimits {
  streams: StreamLimits;
}

/** A configuration problem; the message names the key. */
export class ConfigError extends Error {
  /** @param message what is wrong, naming the key */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Default CSTA port (mx-protocol §1.1). */
export const DEFAULT_MX_PORT = 7778;

/** The Deno KV database when neither `db` nor `-db` names one (the seed's, working directory). */
export const DEFAULT_DB = "mxproxy.db";

/** Top-level keys handed to lib/push as they are (`AppConfig.push`). */
export const PUSH_KEYS = [
  "apns",
  "gfcm",
  "fcm",
  "apnsKeys",
  "pushEndpoints",
  "pushRingTimeout",
] as const;

/**
 * Every top-level key {@link normalizeConfig} reads (README's configuration table lists each);
 * any other is reported in {@link AppConfig.warnings}, not refused, so the seeds' files and
 * files with keys of other versions still load.
 */
export const CONFIG_KEYS = [
  "host",
  "mx",
  "flexMx",
  "tokenTtl",
  "tokenKeyRotation",
  "kvPollMs",
  "instanceId",
  "opsHost",
  "requestTimeoutMs",
  "connectTimeoutMs",
  "db",
  "staticDir",
  "tls",
  "acme",
  "metricsToken",
  "trustedProxies",
  "rateLimits",
  ...PUSH_KEYS,
] as const;

/** Keys of one MX entry (`mx` in the seed-1 form, `mx.<name>` otherwise); others are warned of. */
export const MX_KEYS = ["addr", "login", "password", "tls"] as const;
/** Keys of `mx….tls`; any other is refused (a mistyped `fingerprint` must not mean TOFU). */
export const MX_TLS_KEYS = ["fingerprint", "ca", "allowChangedCertificate", "plain"] as const;
/** Keys of the top-level `tls`; any other is refused. */
export const TLS_KEYS = ["cert", "key"] as const;
/** Keys of `acme`; any other is refused (a mistyped `directoryUrl` must not mean production). */
export const ACME_KEYS = ["email", "directoryUrl", "cacheDir", "httpPort", "httpsPort"] as const;

/**
 * Parses JSON or YAML text (detected by content).
 *
 * @example
 * ```ts
 * await parseConfigText('{"mx": {"addr": "10.0.0.1", "login": "s"}}'); // JSON: no YAML parser loaded
 * ```
 */
export async function parseConfigText(text: string): Promise<unknown> {
  const t = text.trim();
  if (t.startsWith("{")) {
    try {
      return JSON.parse(t);
    } catch {
      // Seed 1 shows a YAML file whose first value is a flow mapping: fall through to YAML.
    }
  }
  const { parse: parseYaml } = await import("yaml");
  try {
    return parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config is neither valid JSON nor YAML: ${(err as Error).message}`);
  }
}

/** Splits "host[:port]" (IPv6 in brackets), adding the default MX port. */
export function splitAddr(addr: string, defaultPort = DEFAULT_MX_PORT): [string, number] {
  const a = addr.trim();
  let host = a;
  let port = defaultPort;
  const m = a.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (m) {
    host = m[1];
    if (m[2]) port = Number(m[2]);
  } else {
    const i = a.lastIndexOf(":");
    // ":7778" (no host) leaves host empty and is refused below.
    if (i >= 0 && a.indexOf(":") === i) {
      host = a.slice(0, i);
      port = Number(a.slice(i + 1));
    }
  }
  if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`bad address ${JSON.stringify(addr)}`);
  }
  return [host, port];
}

function str(obj: Record<string, unknown>, key: string, path: string, required: boolean): string {
  const v = obj[key];
  if (v === undefined || v === null || v === "") {
    if (required) throw new ConfigError(`${path}.${key} is required`);
    return "";
  }
  if (typeof v !== "string" && typeof v !== "number") {
    throw new ConfigError(`${path}.${key} must be a string`);
  }
  return String(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseMx(name: string, raw: unknown, path: string, warnings: string[]): MxConfig {
  if (!isObject(raw)) throw new ConfigError(`${path} must be an object`);
  warnUnknown(raw, MX_KEYS, path, warnings);
  const addr = str(raw, "addr", path, true);
  let hostname: string, port: number;
  try {
    [hostname, port] = splitAddr(addr);
  } catch (err) {
    throw new ConfigError(`${path}.addr: ${(err as Error).message}`);
  }
  const tlsRaw = raw.tls ?? {};
  if (!isObject(tlsRaw)) throw new ConfigError(`${path}.tls must be an object`);
  onlyKeys(tlsRaw, MX_TLS_KEYS, `${path}.tls`);
  return {
    name,
    key: path,
    hostname,
    port,
    login: str(raw, "login", path, true),
    password: str(raw, "password", path, false),
    tls: {
      fingerprint: str(tlsRaw, "fingerprint", `${path}.tls`, false) || undefined,
      ca: str(tlsRaw, "ca", `${path}.tls`, false) || undefined,
      allowChangedCertificate: tlsRaw.allowChangedCertificate === true,
      plain: tlsRaw.plain === true,
    },
  };
}

/** Checks an object's keys against the allowed ones (typos are errors, not silent defaults). */
function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(`${path}.${k}: unknown key (known: ${allowed.join(", ")})`);
    }
  }
}

/**
 * Notes keys that are not among the allowed ones: ignored, as the Go originals ignored them,
 * but said, so a typo (`tokenTTL`) is not silently a default.
 */
function warnUnknown(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
  warnings: string[],
): void {
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    const near = allowed.find((a) => a.toLowerCase() === k.toLowerCase());
    warnings.push(
      `config: ${path ? `${path}.` : ""}${k}: unknown key, ignored` +
        (near ? ` (did you mean ${near}?)` : ` (known: ${allowed.join(", ")})`),
    );
  }
}

function count(v: unknown, def: number, path: string): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new ConfigError(`${path} must be a whole number >= 1`);
  }
  return v;
}

/** Reads `{key: whole number >= 1}` over defaults. */
function counts<T extends object>(raw: unknown, defaults: T, path: string): T {
  if (raw === undefined) return { ...defaults };
  if (!isObject(raw)) throw new ConfigError(`${path} must be an object`);
  onlyKeys(raw, Object.keys(defaults), path);
  const out: Record<string, number> = { ...defaults as Record<string, number> };
  for (const k of Object.keys(out)) out[k] = count(raw[k], out[k], `${path}.${k}`);
  return out as T;
}

function parseRateLimits(raw: unknown): RateLimits {
  if (raw === undefined) raw = {};
  if (!isObject(raw)) throw new ConfigError("rateLimits must be an object");
  const d = DEFAULT_LOGIN_LIMITS;
  onlyKeys(raw, ["loginAddress", "address", "login", "knownAddressDays", "streams"], "rateLimits");
  return {
    loginAddress: counts(raw.loginAddress, d.loginAddress, "rateLimits.loginAddress"),
    address: counts(raw.address, d.address, "rateLimits.address"),
    login: counts(raw.login, d.login, "rateLimits.login"),
    knownAddressDays: count(
      raw.knownAddressDays,
      d.knownAddressDays,
      "rateLimits.knownAddressDays",
    ),
    streams: counts(raw.streams, DEFAULT_STREAM_LIMITS, "rateLimits.streams"),
  };
}

/** Validates `trustedProxies` (a list, or one comma-separated string as in the env variable). */
export function parseTrustedProxies(raw: unknown, path = "trustedProxies"): string[] {
  if (raw === undefined || raw === null || raw === "") return [];
  const list = typeof raw === "string"
    ? raw.split(",").map((s) => s.trim()).filter(Boolean)
    : Array.isArray(raw) && raw.every((v) => typeof v === "string")
    ? raw.map((s) => s.trim())
    : undefined;
  if (!list) throw new ConfigError(`${path} must be a list of addresses or CIDR ranges`);
  try {
    TrustedProxies.parse(list);
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
  return list;
}

/**
 * Validates a parsed config object.
 *
 * @example
 * ```ts
 * const cfg = normalizeConfig({ host: "localhost:8080", mx: { addr: "10.0.0.1", login: "a", password: "b" } }, ".");
 * cfg.mx[0].port; // 7778
 * ```
 * @throws {ConfigError} naming the offending key
 */
export function normalizeConfig(raw: unknown, baseDir: string): AppConfig {
  if (!isObject(raw)) throw new ConfigError("config must be a mapping/object");
  const warnings: string[] = [];
  warnUnknown(raw, CONFIG_KEYS, "", warnings);
  const mxRaw = raw.mx;
  const mx: MxConfig[] = [];
  if (!isObject(mxRaw)) throw new ConfigError("mx is required");
  // Seed-1 single-MX form: `addr`, or a scalar `login`/`password` (so a missing addr is
  // reported as `mx.addr`, not as an MX named "login").
  const single = "addr" in mxRaw ||
    ["login", "password"].some((k) => typeof mxRaw[k] === "string" || typeof mxRaw[k] === "number");
  if (single) {
    mx.push(parseMx("default", mxRaw, "mx", warnings));
  } else {
    for (const [name, v] of Object.entries(mxRaw)) {
      if (!/^[A-Za-z0-9._-]+$/.test(name)) {
        throw new ConfigError(`mx.${name}: name may use letters, digits, '.', '_' and '-'`);
      }
      mx.push(parseMx(name, v, `mx.${name}`, warnings));
    }
  }
  if (mx.length === 0) throw new ConfigError("mx must name at least one MX");
  const flexMx = str(raw, "flexMx", "config", false) || mx[0].name;
  if (!mx.some((m) => m.name === flexMx)) {
    throw new ConfigError(`flexMx: no MX named ${JSON.stringify(flexMx)}`);
  }
  const num = (key: string, def: number, min: number) => {
    const v = raw[key];
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
      throw new ConfigError(`${key} must be a number >= ${min}`);
    }
    return v;
  };
  const tokenTtl = num("tokenTtl", 3600, 60);
  // The JWT lifetime is whole seconds (lib/auth/jwt.ts refuses fractions at start-up).
  if (!Number.isInteger(tokenTtl)) throw new ConfigError("tokenTtl must be whole seconds");
  const tokenKeyRotation = num("tokenKeyRotation", 86_400, 1);
  if (!Number.isInteger(tokenKeyRotation)) {
    throw new ConfigError("tokenKeyRotation must be whole seconds");
  }
  let tls: AppConfig["tls"];
  if (raw.tls !== undefined) {
    if (!isObject(raw.tls)) throw new ConfigError("tls must be an object with cert and key");
    onlyKeys(raw.tls, TLS_KEYS, "tls");
    tls = { cert: str(raw.tls, "cert", "tls", true), key: str(raw.tls, "key", "tls", true) };
  }
  const acmeRaw = raw.acme ?? {};
  if (!isObject(acmeRaw)) throw new ConfigError("acme must be an object");
  onlyKeys(acmeRaw, ACME_KEYS, "acme");
  const port = (key: string) => {
    const v = acmeRaw[key];
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) {
      throw new ConfigError(`acme.${key} must be a port number 1-65535`);
    }
    return v as number;
  };
  const push: Record<string, unknown> = {};
  for (const k of PUSH_KEYS) {
    if (raw[k] !== undefined) push[k] = raw[k];
  }
  return {
    host: str(raw, "host", "config", false) || "localhost:8080",
    mx,
    flexMx,
    tokenTtl,
    tokenKeyRotation,
    kvPollMs: num("kvPollMs", 0, 0),
    instanceId: str(raw, "instanceId", "config", false),
    opsHost: str(raw, "opsHost", "config", false),
    requestTimeoutMs: num("requestTimeoutMs", 7000, 100),
    connectTimeoutMs: num("connectTimeoutMs", DEFAULT_CONNECT_TIMEOUT_MS, 100),
    db: str(raw, "db", "config", false),
    staticDir: str(raw, "staticDir", "config", false) || "html",
    tls,
    acme: {
      email: str(acmeRaw, "email", "acme", false) || undefined,
      directoryUrl: str(acmeRaw, "directoryUrl", "acme", false) || undefined,
      cacheDir: str(acmeRaw, "cacheDir", "acme", false) || undefined,
      httpPort: port("httpPort"),
      httpsPort: port("httpsPort"),
    },
    metricsToken: str(raw, "metricsToken", "config", false),
    trustedProxies: parseTrustedProxies(raw.trustedProxies),
    rateLimits: parseRateLimits(raw.rateLimits),
    push,
    baseDir,
    warnings,
  };
}

/**
 * Applies environment overrides (Deno Deploy and containers): `MXFLEX_HOST`,
 * `MXFLEX_MX_ADDR`, `MXFLEX_MX_LOGIN`, `MXFLEX_MX_PASSWORD` (for the Flex API's MX),
 * `MXFLEX_TOKEN_TTL`, `MXFLEX_DB`, `MXFLEX_METRICS_TOKEN`, `MXFLEX_TRUSTED_PROXIES`
 * (comma-separated; replaces the file's list), `MXFLEX_INSTANCE_ID`.
 */
export function applyEnv(cfg: AppConfig, env: (k: string) => string | undefined): AppConfig {
  const host = env("MXFLEX_HOST");
  if (host) cfg.host = host;
  const flex = cfg.mx.find((m) => m.name === cfg.flexMx)!;
  const addr = env("MXFLEX_MX_ADDR");
  if (addr) {
    try {
      [flex.hostname, flex.port] = splitAddr(addr);
    } catch (err) {
      throw new ConfigError(`MXFLEX_MX_ADDR: ${(err as Error).message}`);
    }
  }
  flex.login = env("MXFLEX_MX_LOGIN") || flex.login;
  flex.password = env("MXFLEX_MX_PASSWORD") ?? flex.password;
  const ttl = env("MXFLEX_TOKEN_TTL");
  if (ttl) {
    const n = Number(ttl);
    if (!Number.isInteger(n) || n < 60) {
      throw new ConfigError("MXFLEX_TOKEN_TTL must be whole seconds >= 60");
    }
    cfg.tokenTtl = n;
  }
  cfg.db = env("MXFLEX_DB") ?? cfg.db;
  cfg.metricsToken = env("MXFLEX_METRICS_TOKEN") ?? cfg.metricsToken;
  const proxies = env("MXFLEX_TRUSTED_PROXIES");
  if (proxies !== undefined) {
    cfg.trustedProxies = parseTrustedProxies(proxies, "MXFLEX_TRUSTED_PROXIES");
  }
  cfg.instanceId = env("MXFLEX_INSTANCE_ID") || cfg.instanceId;
  return cfg;
}

/** Reads, parses and validates a config file. */
export async function loadConfigFile(path: string): Promise<AppConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    // A relative path says where it was looked for: `deno task` runs in the repository.
    const where = path.startsWith("/") ? "" : ` in ${Deno.cwd()}`;
    throw new ConfigError(`cannot read config ${path}${where}: ${(err as Error).message}`);
  }
  const slash = path.lastIndexOf("/");
  return normalizeConfig(
    await parseConfigText(text),
    slash >= 0 ? path.slice(0, slash) || "/" : ".",
  );
}
