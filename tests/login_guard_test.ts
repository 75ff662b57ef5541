/**
 * Login limits against a real Deno KV with a moving clock: the KV store for
 * rate-limiter-flexible (atomic under concurrency, expiry, batching), and the LoginGuard policy
 * (per pair, per address with known logins exempt, the per-login ceiling with growing delay,
 * in-flight attempts, shared between instances, what a success costs). The HTTP side is in
 * tests/login_limits_test.ts.
 */
import assert from "node:assert/strict";
import { KvReader, RateLimiterKv } from "../lib/store/kv_rate_limiter.ts";
import {
  addressKey,
  DEFAULT_LOGIN_LIMITS,
  LoginGuard,
  type LoginLimits,
} from "../lib/auth/login_guard.ts";
import { withKv } from "./helpers/kv.ts";

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** A KV whose calls are counted by method name. */
function countingKv(kv: Deno.Kv): { kv: Deno.Kv; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const wrap = new Proxy(kv, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        const name = String(prop);
        calls.set(name, (calls.get(name) ?? 0) + 1);
        const r = v.apply(target, args);
        if (name !== "atomic") return r;
        // Count commits of atomic operations, not their builders.
        const op = r as Deno.AtomicOperation;
        const commit = op.commit.bind(op);
        op.commit = () => {
          calls.set("commit", (calls.get("commit") ?? 0) + 1);
          return commit();
        };
        return op;
      };
    },
  });
  return { kv: wrap, calls };
}

const LIMITS: LoginLimits = {
  loginAddress: { failures: 3, windowSeconds: 3600, blockSeconds: 900 },
  address: { failures: 5, windowSeconds: 3600, blockSeconds: 1800 },
  login: { failures: 8, windowSeconds: 86_400, delaySeconds: 60, maxDelaySeconds: 300 },
  knownAddressDays: 30,
};

async function fail(g: LoginGuard, login: string, ip: string, mx = "mx") {
  const a = await g.begin(mx, login, ip);
  assert.equal(a.refused, undefined, `${login}@${ip} refused too early`);
  await a.failed();
}

async function succeed(g: LoginGuard, login: string, ip: string) {
  const a = await g.begin("mx", login, ip);
  assert.equal(a.refused, undefined, `${login}@${ip} refused`);
  await a.succeeded();
}

Deno.test("kv rate limiter: atomic increments under concurrency, expiry, block and delete", async () => {
  await withKv(async (kv) => {
    const c = clock();
    const rl = new RateLimiterKv({
      storeClient: new KvReader(kv),
      keyPrefix: "t",
      points: 5,
      duration: 60,
      now: c.now,
    });
    assert.equal(await rl.get("k"), null);
    // 40 concurrent increments of one key: none lost (check-and-set retries).
    await Promise.all(Array.from({ length: 40 }, () => rl.penalty("k")));
    const r = await rl.get("k");
    assert.equal(r?.consumedPoints, 40);
    assert.equal(r?.msBeforeNext, 60_000);
    c.advance(59_999);
    assert.equal((await rl.get("k"))?.msBeforeNext, 1);
    c.advance(1);
    assert.equal(await rl.get("k"), null, "expired records are absent");
    assert.equal((await rl.penalty("k")).consumedPoints, 1, "a new window starts at 1");
    // consume rejects beyond points with the library's RateLimiterRes.
    await rl.penalty("k", 4);
    await assert.rejects(rl.consume("k"), (res: { msBeforeNext: number }) => res.msBeforeNext > 0);
    // block() replaces the window with the block's duration.
    await rl.block("b", 120);
    const b = await rl.get("b");
    assert.ok(rl.isBlocked(b));
    assert.equal(b.msBeforeNext, 120_000);
    assert.equal(await rl.delete("b"), true);
    assert.equal(await rl.delete("b"), false);
    assert.equal(await rl.get("b"), null);
  });
});

Deno.test("kv rate limiter: reads of one turn go to KV as one getMany", async () => {
  const { kv: counted, calls } = countingKv(await Deno.openKv(":memory:"));
  try {
    const reader = new KvReader(counted);
    const mk = (p: string) =>
      new RateLimiterKv({ storeClient: reader, keyPrefix: p, points: 1, duration: 9 });
    const limiters = ["a", "b", "c", "d"].map(mk);
    await Promise.all(limiters.map((l) => l.get("x")));
    assert.equal(calls.get("getMany"), 1);
    assert.equal(calls.get("get") ?? 0, 0);
    // More than KV's 10 keys per getMany are split.
    await Promise.all(Array.from({ length: 23 }, (_, i) => reader.get(["k", i])));
    assert.equal(calls.get("getMany"), 4);
  } finally {
    counted.close();
  }
});

Deno.test("login guard: failures per (login, address) block that pair only; a success clears them", async () => {
  await withKv(async (kv) => {
    const c = clock();
    const address = { failures: 100, windowSeconds: 3600, blockSeconds: 1 }; // not in the way
    const g = new LoginGuard(kv, { ...LIMITS, address }, { now: c.now });
    await fail(g, "dmitry", "192.0.2.1");
    await fail(g, "dmitry", "192.0.2.1");
    await succeed(g, "dmitry", "192.0.2.1"); // clears the two
    for (let i = 0; i < 3; i++) await fail(g, "dmitry", "192.0.2.1");
    const refused = (await g.begin("mx", "dmitry", "192.0.2.1")).refused;
    assert.deepEqual(refused, { limit: "login-address", retryAfterSeconds: 900 });
    // Same login elsewhere, and other logins here, are untouched.
    await succeed(g, "dmitry", "192.0.2.2");
    await succeed(g, "maxim", "192.0.2.1");
    // Case does not make a new login; the same name on another MX is another account.
    assert.ok((await g.begin("mx", "DMITRY", "192.0.2.1")).refused);
    assert.equal((await g.begin("other-mx", "dmitry", "192.0.2.1")).refused, undefined);
    c.advance(900_000);
    await succeed(g, "dmitry", "192.0.2.1");
  });
});

Deno.test("login guard: IPv6 clients count per /64; very long logins are keyed by hash", async () => {
  assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(addressKey("192.0.2.1"), "192.0.2.1");
  assert.equal(addressKey("unknown"), "unknown");
  const kv = await Deno.openKv(":memory:");
  try {
    const g = new LoginGuard(kv, LIMITS);
    await fail(g, "dmitry", "2001:db8:1:2::1");
    await fail(g, "dmitry", "2001:db8:1:2::2");
    await fail(g, "dmitry", "2001:db8:1:2:ffff::3");
    assert.equal(
      (await g.begin("mx", "dmitry", "2001:db8:1:2::99")).refused?.limit,
      "login-address",
    );
    assert.equal((await g.begin("mx", "dmitry", "2001:db8:1:3::1")).refused, undefined);
    const long = "x".repeat(5000);
    for (let i = 0; i < 3; i++) await fail(g, long, "192.0.2.9");
    assert.equal((await g.begin("mx", long, "192.0.2.9")).refused?.limit, "login-address");
    assert.equal((await g.begin("mx", long + "y", "192.0.2.9")).refused, undefined);
  } finally {
    kv.close();
  }
});

Deno.test("login guard: spraying names from one address blocks new logins there, not known ones", async () => {
  await withKv(async (kv) => {
    const c = clock();
    const g = new LoginGuard(kv, LIMITS, { now: c.now });
    await succeed(g, "dmitry", "198.51.100.1"); // dmitry works from the office
    for (let i = 0; i < 5; i++) await fail(g, `random${i}`, "198.51.100.1");
    const r = await g.begin("mx", "peter", "198.51.100.1");
    assert.deepEqual(r.refused, { limit: "address", retryAfterSeconds: 1800 });
    await succeed(g, "dmitry", "198.51.100.1");
    await succeed(g, "peter", "198.51.100.2"); // only that address
    // Known means recently: after knownAddressDays the exemption is gone.
    c.advance(29 * 86_400_000);
    for (let i = 0; i < 5; i++) await fail(g, `again${i}`, "198.51.100.1");
    await succeed(g, "dmitry", "198.51.100.1"); // day 29: still known, refreshed now
    c.advance(31 * 86_400_000);
    for (let i = 0; i < 5; i++) await fail(g, `later${i}`, "198.51.100.1");
    assert.equal((await g.begin("mx", "dmitry", "198.51.100.1")).refused?.limit, "address");
  });
});

Deno.test("login guard: the per-login ceiling delays unknown addresses with a growing wait", async () => {
  await withKv(async (kv) => {
    const c = clock();
    const g = new LoginGuard(kv, LIMITS, { now: c.now });
    await succeed(g, "dmitry", "192.0.2.1"); // the user's own address
    // Guessing from many addresses, 2 each (below the pair limit of 3): the 8th failure
    // reaches the ceiling.
    let ip = 10;
    for (let i = 0; i < 8; i++) await fail(g, "dmitry", `203.0.113.${ip + (i >> 1)}`);
    ip += 4;
    const wait = async () => (await g.begin("mx", "dmitry", `203.0.113.${ip++}`)).refused;
    assert.deepEqual(await wait(), { limit: "login", retryAfterSeconds: 60 });
    // The owner's address is not delayed.
    await succeed(g, "dmitry", "192.0.2.1");
    // Each failure after the wait doubles it, up to the maximum.
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      c.advance((delays.at(-1) ?? 60) * 1000);
      await fail(g, "dmitry", `203.0.113.${ip++}`);
      delays.push((await wait())!.retryAfterSeconds);
    }
    assert.deepEqual(delays, [120, 240, 300, 300]);
    // Other logins are not affected.
    await succeed(g, "maxim", `203.0.113.${ip++}`);
  });
});

Deno.test("login guard: attempts in flight count towards the pair limit; abandon releases", async () => {
  await withKv(async (kv) => {
    const g = new LoginGuard(kv, LIMITS);
    const a = await Promise.all([1, 2, 3].map(() => g.begin("mx", "dmitry", "192.0.2.1")));
    assert.ok(a.every((x) => !x.refused));
    assert.deepEqual((await g.begin("mx", "dmitry", "192.0.2.1")).refused, {
      limit: "in-flight",
      retryAfterSeconds: 1,
    });
    a[0].abandon();
    a[0].abandon(); // idempotent
    const again = await g.begin("mx", "dmitry", "192.0.2.1");
    assert.equal(again.refused, undefined);
    await Promise.all([again.failed(), a[1].failed(), a[2].failed()]);
    assert.equal((await g.begin("mx", "dmitry", "192.0.2.1")).refused?.limit, "login-address");
  });
});

Deno.test("login guard: two instances on one KV share the counters", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const kv1 = await Deno.openKv(path);
  const kv2 = await Deno.openKv(path);
  try {
    const g1 = new LoginGuard(kv1, LIMITS);
    const g2 = new LoginGuard(kv2, LIMITS);
    await fail(g1, "dmitry", "192.0.2.1");
    await fail(g2, "dmitry", "192.0.2.1");
    await fail(g1, "dmitry", "192.0.2.1");
    assert.equal((await g2.begin("mx", "dmitry", "192.0.2.1")).refused?.limit, "login-address");
    assert.equal((await g1.begin("mx", "dmitry", "192.0.2.1")).refused?.limit, "login-address");
  } finally {
    kv1.close();
    kv2.close();
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("login guard: a success costs one KV read, plus one write only when something changes", async () => {
  const { kv, calls } = countingKv(await Deno.openKv(":memory:"));
  try {
    const c = clock();
    const g = new LoginGuard(kv, DEFAULT_LOGIN_LIMITS, { now: c.now });
    const cost = async (f: () => Promise<void>) => {
      calls.clear();
      await f();
      return Object.fromEntries(calls);
    };
    // First success from an address: one getMany, one commit (remember the address).
    assert.deepEqual(await cost(() => succeed(g, "dmitry", "192.0.2.1")), {
      getMany: 1,
      atomic: 1,
      commit: 1,
    });
    // Again the same day: the read only.
    assert.deepEqual(await cost(() => succeed(g, "dmitry", "192.0.2.1")), { getMany: 1 });
    // After failures: still one commit (clearing them).
    await fail(g, "dmitry", "192.0.2.1");
    assert.deepEqual(await cost(() => succeed(g, "dmitry", "192.0.2.1")), {
      getMany: 1,
      atomic: 1,
      commit: 1,
    });
    // A day later the known record is refreshed, once.
    c.advance(86_400_001);
    assert.deepEqual(await cost(() => succeed(g, "dmitry", "192.0.2.1")), {
      getMany: 1,
      atomic: 1,
      commit: 1,
    });
    assert.deepEqual(await cost(() => succeed(g, "dmitry", "192.0.2.1")), { getMany: 1 });
  } finally {
    kv.close();
  }
});
