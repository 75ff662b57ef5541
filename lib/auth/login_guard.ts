/**
 * Login protection for both APIs (Flex `/api/login`, Proxy Basic auth): failed logins are
 * limited so that guessing passwords is slow, while nobody can lock a user or an office out
 * by failing on purpose. The design is `rate-limiter-flexible`'s "login endpoint protection"
 * recipe, with its counters in Deno KV (lib/store/kv_rate_limiter.ts), so every instance on
 * one KV shares them.
 *
 * - Successful logins never count against anything.
 * - Failures per (login, client address): `loginAddress.failures` within `windowSeconds`
 *   block that pair for `blockSeconds`. A success clears the pair's count.
 * - Failures per client address (any login): `address.failures` within `windowSeconds` block
 *   the address for `blockSeconds` — except for logins that succeeded from that address in the
 *   last `knownAddressDays` (their owners are not locked out by someone spraying names there).
 * - Failures per login across all addresses: only a high ceiling. From `login.failures`
 *   within `windowSeconds` on, each further failure makes that login wait (`delaySeconds`,
 *   doubling up to `maxDelaySeconds`) — again not from addresses where it recently succeeded,
 *   so the user's right password from their own address keeps working while others guess.
 * - IPv6 clients are counted per /64 (one customer's network), IPv4 per address. Logins are
 *   counted per MX, case-insensitively and without surrounding whitespace.
 * - Attempts still being verified count towards the (login, address) limit, so a burst of
 *   parallel guesses cannot outrun it within one instance.
 *
 * Cost: a check is one KV `getMany`; a success adds at most one atomic write (clearing a
 * failure count, or recording the address as known the first time and then once a day).
 *
 * @example
 * ```ts
 * const guard = new LoginGuard(kv);
 * const attempt = await guard.begin("default", "dmitry", "192.0.2.7");
 * if (attempt.refused) throw tooManyRequests("too many login attempts", attempt.refused.retryAfterSeconds);
 * try {
 *   await mx.verifyUser("dmitry", password);
 *   await attempt.succeeded();
 * } catch (err) {
 *   if (isWrongPassword(err)) await attempt.failed(); else attempt.abandon();
 *   throw err;
 * }
 * ```
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import type { RateLimiterRes } from "rate-limiter-flexible";
import { KvReader, RATE_LIMIT_PREFIX, RateLimiterKv } from "../store/kv_rate_limiter.ts";

/** A failure limit that blocks once reached. */
export interface FailureLimit {
  /** Failures allowed within the window; the last one starts the block. */
  failures: number;
  /** Window in which failures are counted, seconds (from the first failure). */
  windowSeconds: number;
  /** How long the key is refused once the limit is reached, seconds. */
  blockSeconds: number;
}

/** The per-login ceiling across all addresses. */
export interface LoginCeiling {
  /** Failures within the window before delays begin. */
  failures: number;
  /** Window in which failures are counted, seconds. */
  windowSeconds: number;
  /** First delay, seconds; doubles with each further failure. */
  delaySeconds: number;
  /** Longest delay, seconds. */
  maxDelaySeconds: number;
}

/** Every login limit (config `rateLimits`, README). */
export interface LoginLimits {
  loginAddress: FailureLimit;
  address: FailureLimit;
  login: LoginCeiling;
  /** A login that succeeded from an address is exempt from the address and login limits there for this long. */
  knownAddressDays: number;
}

/** Defaults (docs/DECISIONS.md "Login limits"). */
export const DEFAULT_LOGIN_LIMITS: Readonly<LoginLimits> = Object.freeze({
  loginAddress: { failures: 10, windowSeconds: 3600, blockSeconds: 900 },
  address: { failures: 100, windowSeconds: 3600, blockSeconds: 3600 },
  login: { failures: 100, windowSeconds: 86_400, delaySeconds: 60, maxDelaySeconds: 3600 },
  knownAddressDays: 30,
});

/** Why an attempt was refused, and for how long. */
export interface LoginRefusal {
  /** Which limit: `login-address`, `address`, `login` (ceiling delay) or `in-flight`. */
  limit: "login-address" | "address" | "login" | "in-flight";
  /** Whole seconds (>= 1) until an attempt may succeed. */
  retryAfterSeconds: number;
}

/** Options of {@link LoginGuard}. */
export interface LoginGuardOptions {
  /** Clock in ms; default `Date.now` (tests move it). */
  now?: () => number;
}

const DAY_MS = 86_400_000;
/** Longest login kept as it is in a key; longer ones are hashed. */
const MAX_KEY_LOGIN = 128;

/**
 * The address part of keys: IPv6 per /64, IPv4 and "unknown" as they are.
 *
 * @example
 * ```ts
 * addressKey("2001:db8:1:2:3:4:5:6"); // "2001:db8:1:2::/64"
 * addressKey("192.0.2.7"); // "192.0.2.7"
 * ```
 */
export function addressKey(ip: string): string {
  if (!ip.includes(":") || !ipaddr.IPv6.isValid(ip)) return ip;
  const parts = ipaddr.IPv6.parse(ip).parts.slice(0, 4);
  return `${parts.map((p) => p.toString(16)).join(":")}::/64`;
}

async function loginKey(mx: string, login: string): Promise<string> {
  // Trimmed as well: an MX may trim the name (the simulator's XML reader does), so " dmitry"
  // logs in as dmitry and must not get limits of its own.
  let l = login.trim().toLowerCase();
  if (l.length > MAX_KEY_LOGIN) {
    const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(l));
    l = "sha256:" + Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  // MX names have no "/", addresses no "|": the joined keys cannot collide.
  return `${mx}/${l}`;
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The limits, shared through KV.
 *
 * @example
 * ```ts
 * const guard = new LoginGuard(kv, { ...DEFAULT_LOGIN_LIMITS, knownAddressDays: 7 });
 * ```
 */
export class LoginGuard {
  readonly limits: LoginLimits;
  #reader: KvReader;
  #la: RateLimiterKv;
  #addr: RateLimiterKv;
  #login: RateLimiterKv;
  #delay: RateLimiterKv;
  #now: () => number;
  #inFlight = new Map<string, number>();

  /**
   * @param kv where the counters live
   * @param limits see {@link LoginLimits}
   */
  constructor(
    kv: Deno.Kv,
    limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    o: LoginGuardOptions = {},
  ) {
    this.limits = limits;
    this.#reader = new KvReader(kv);
    this.#now = o.now ?? Date.now;
    const mk = (keyPrefix: string, points: number, duration: number) =>
      new RateLimiterKv({ storeClient: this.#reader, keyPrefix, points, duration, now: this.#now });
    this.#la = mk("login-address", limits.loginAddress.failures, limits.loginAddress.windowSeconds);
    this.#addr = mk("address", limits.address.failures, limits.address.windowSeconds);
    this.#login = mk("login", limits.login.failures, limits.login.windowSeconds);
    this.#delay = mk("login-delay", 1, limits.login.maxDelaySeconds);
  }

  /**
   * Checks the limits before a login is verified. Call exactly one of the attempt's
   * `succeeded`, `failed` or `abandon` afterwards (unless it was refused).
   *
   * @param mx the MX the login is for (its config name)
   * @param login the login name as given
   * @param ip the client address (lib/http/client_ip.ts)
   */
  async begin(mx: string, login: string, ip: string): Promise<LoginAttempt> {
    const acct = await loginKey(mx, login);
    const addr = addressKey(ip);
    const pair = `${addr}|${acct}`;
    const knownKey: Deno.KvKey = [RATE_LIMIT_PREFIX, "known", acct, addr];
    // One turn: the four reads leave as one getMany.
    const [la, a, delay, known] = await Promise.all([
      this.#la.get(pair),
      this.#addr.get(addr),
      this.#delay.get(acct),
      this.#reader.get<{ at: number }>(knownKey),
    ]);
    const now = this.#now();
    const knownAt = known.value?.at ?? -Infinity;
    const isKnown = knownAt > now - this.limits.knownAddressDays * DAY_MS;
    const refuse = (limit: LoginRefusal["limit"], res?: RateLimiterRes | null) =>
      new LoginAttempt(this, { limit, retryAfterSeconds: seconds(res?.msBeforeNext ?? 1000) });
    const laUsed = la?.consumedPoints ?? 0;
    if (laUsed >= this.limits.loginAddress.failures) return refuse("login-address", la);
    if (!isKnown) {
      if ((a?.consumedPoints ?? 0) >= this.limits.address.failures) return refuse("address", a);
      if (this.#delay.isBlocked(delay)) return refuse("login", delay);
    }
    const flying = this.#inFlight.get(pair) ?? 0;
    if (laUsed + flying >= this.limits.loginAddress.failures) return refuse("in-flight");
    this.#inFlight.set(pair, flying + 1);
    return new LoginAttempt(this, undefined, {
      acct,
      addr,
      pair,
      knownKey,
      laUsed,
      knownFresh: knownAt > now - DAY_MS,
    });
  }

  /** @internal */
  _land(pair: string): void {
    const n = (this.#inFlight.get(pair) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(pair, n);
    else this.#inFlight.delete(pair);
  }

  /** @internal Records a failure on the three counters, blocking where a limit is reached. */
  async _failed(k: AttemptKeys): Promise<void> {
    const [la, a, l] = await Promise.all([
      this.#la.penalty(k.pair),
      this.#addr.penalty(k.addr),
      this.#login.penalty(k.acct),
    ]);
    const L = this.limits;
    const blocks: Promise<unknown>[] = [];
    if (la.consumedPoints >= L.loginAddress.failures) {
      blocks.push(this.#la.block(k.pair, L.loginAddress.blockSeconds));
    }
    if (a.consumedPoints >= L.address.failures) {
      blocks.push(this.#addr.block(k.addr, L.address.blockSeconds));
    }
    const over = l.consumedPoints - L.login.failures; // 0 at the ceiling, then 1, 2, …
    if (over >= 0) {
      const d = Math.min(L.login.maxDelaySeconds, L.login.delaySeconds * 2 ** Math.min(over, 30));
      blocks.push(this.#delay.block(k.acct, d));
    }
    await Promise.all(blocks);
  }

  /** @internal Clears the pair's failures and remembers the address, in one atomic write. */
  async _succeeded(k: AttemptKeys): Promise<void> {
    if (k.laUsed === 0 && k.knownFresh) return;
    const op = this.#reader.kv.atomic();
    if (k.laUsed > 0) op.delete(this.#la.kvKey(k.pair));
    if (!k.knownFresh) {
      op.set(k.knownKey, { at: this.#now() }, {
        expireIn: this.limits.knownAddressDays * DAY_MS,
      });
    }
    await op.commit();
  }
}

interface AttemptKeys {
  acct: string;
  addr: string;
  pair: string;
  knownKey: Deno.KvKey;
  /** Failures of the pair when the attempt began. */
  laUsed: number;
  /** The address was recorded as known within the last day. */
  knownFresh: boolean;
}

/**
 * One login attempt between {@link LoginGuard.begin} and its outcome.
 *
 * @example
 * ```ts
 * const attempt = await guard.begin(mx, login, ip);
 * if (!attempt.refused) await attempt.succeeded();
 * ```
 */
export class LoginAttempt {
  /** Set when the attempt must not be verified (answer 429 with its Retry-After). */
  readonly refused?: LoginRefusal;
  #guard: LoginGuard;
  #keys?: AttemptKeys;

  /** @internal */
  constructor(guard: LoginGuard, refused?: LoginRefusal, keys?: AttemptKeys) {
    this.#guard = guard;
    this.refused = refused;
    this.#keys = keys;
  }

  #take(): AttemptKeys | undefined {
    const k = this.#keys;
    this.#keys = undefined;
    if (k) this.#guard._land(k.pair);
    return k;
  }

  /** The login was right: clears the pair's failures, remembers the address. */
  async succeeded(): Promise<void> {
    const k = this.#take();
    if (k) await this.#guard._succeeded(k);
  }

  /** The login was refused by the MX (wrong name or password): counts it. */
  async failed(): Promise<void> {
    const k = this.#take();
    if (k) await this.#guard._failed(k);
  }

  /** Neither (the MX was unreachable, timed out, …): counts nothing. */
  abandon(): void {
    this.#take();
  }
}
