/**
 * Login limits end to end (issue 12, "Logins from one address, and lockouts an attacker can
 * cause"): HTTP from 127.0.0.1 and, as a second client, from 127.0.0.2… (node:http bound to a
 * local address) -> MXFlex -> CSTA logins over TLS -> the simulator.
 */
import assert from "node:assert/strict";
import {
  basic,
  DMITRY,
  flexLogin,
  type Harness,
  startHarness,
  withHarness,
} from "./helpers/harness.ts";
import { fetchFrom } from "./helpers/from_address.ts";
import { defaultUsers, MxSimulator, type SimUser } from "../lib/mxsim/mod.ts";
import { CERT, KEY } from "./helpers/harness.ts";

function loginFrom(from: string, url: string, login: string, password: string) {
  return fetchFrom(from, `${url}/api/login`, {
    method: "POST",
    body: new URLSearchParams({ login, password }),
  });
}

/** `extra` office users with extensions 5000… (login `office<n>`, password `pw<n>`). */
function officeUsers(extra: number): SimUser[] {
  return Array.from({ length: extra }, (_, i) => ({
    login: `office${i}`,
    password: `pw${i}`,
    jid: (43884854000000000n + BigInt(i) * 104_729n).toString(),
    ext: String(5000 + i),
    firstName: "Office",
    lastName: `User ${i}`,
  }));
}

Deno.test("login limits: a burst of 300 logins of real users from one address all succeed", async () => {
  const office = officeUsers(300);
  await withHarness(async (h) => {
    const statuses = new Map<number, number>();
    let next = 0;
    // Ten at a time, as fast as the MX answers: the morning rush behind one NAT address.
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < office.length) {
        const u = office[next++];
        const res = await loginFrom("127.0.0.1", h.url, u.login, u.password);
        await res.body?.cancel();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }));
    assert.deepEqual(Object.fromEntries(statuses), { 200: 300 });
    assert.equal(h.server.tokens.size, 300);
  }, { sim: { users: [...defaultUsers(), ...office] } });
});

Deno.test("login limits: wrong passwords from another address never lock the user out at their own", async () => {
  await withHarness(async (h) => {
    const seen: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 15 && !limited; i++) {
      const res = await loginFrom("127.0.0.2", h.url, DMITRY.login, `guess${i}`);
      seen.push(res.status);
      if (res.status === 429) limited = res;
      else await res.body?.cancel();
    }
    assert.ok(limited, `never limited: ${seen}`);
    assert.deepEqual(seen, [...Array(10).fill(401), 429], "ten guesses per address and login");
    assert.ok(Number(limited.headers.get("retry-after")) >= 60, "blocked for minutes");
    assert.deepEqual(await limited.json(), { error: "too many login attempts" });
    // The guesser's address stays refused, even with the right password (no oracle) ...
    const there = await loginFrom("127.0.0.2", h.url, DMITRY.login, DMITRY.password);
    assert.equal(there.status, 429);
    await there.body?.cancel();
    // ... while the user, at their own address, logs in (today: 429 everywhere).
    const mine = await loginFrom("127.0.0.1", h.url, DMITRY.login, DMITRY.password);
    assert.equal(mine.status, 200, await mine.clone().text());
    await mine.body?.cancel();
    // The Proxy API counts the same account the same way, and lets the owner in too.
    const proxy = await fetchFrom("127.0.0.2", `${h.url}/mx/test/addressbook`, {
      headers: { authorization: basic(DMITRY.login, "guess") },
    });
    assert.equal(proxy.status, 429);
    await proxy.body?.cancel();
    const own = await fetchFrom("127.0.0.1", `${h.url}/mx/test/addressbook`, {
      headers: { authorization: basic() },
    });
    assert.equal(own.status, 200);
    await own.body?.cancel();
  });
});

Deno.test("login limits: guessing one login from many addresses delays it, but not where it logged in before", async () => {
  const rateLimits = {
    loginAddress: { failures: 3 },
    login: { failures: 6, delaySeconds: 60, maxDelaySeconds: 3600 },
  };
  await withHarness(async (h) => {
    await flexLogin(h.url); // dmitry at his desk, 127.0.0.1
    for (const from of ["127.0.0.2", "127.0.0.3"]) {
      for (let i = 0; i < 3; i++) {
        const res = await loginFrom(from, h.url, DMITRY.login, `guess${i}`);
        assert.equal(res.status, 401, `${from} #${i}`);
        await res.body?.cancel();
      }
    }
    // Six failures: the ceiling. A new address now waits, even with the right password.
    const elsewhere = await loginFrom("127.0.0.4", h.url, DMITRY.login, DMITRY.password);
    assert.equal(elsewhere.status, 429);
    assert.equal(elsewhere.headers.get("retry-after"), "60");
    await elsewhere.body?.cancel();
    // The owner's own address keeps working, and other users are not touched.
    const mine = await loginFrom("127.0.0.1", h.url, DMITRY.login, DMITRY.password);
    assert.equal(mine.status, 200);
    await mine.body?.cancel();
    const other = await loginFrom("127.0.0.4", h.url, "maxim", "secret");
    assert.equal(other.status, 200);
    await other.body?.cancel();
  }, { config: { rateLimits } });
});

/** Two MXFlex instances on one KV file and one MX (issue 15's shape). */
async function twoInstances(
  config: Record<string, unknown>,
  fn: (a: Harness, b: Harness) => Promise<void>,
): Promise<void> {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  const sim = await MxSimulator.start({ tls: { cert: CERT, key: KEY } });
  const a = await startHarness({ simulator: sim, kvPath, config });
  const b = await startHarness({ simulator: sim, kvPath, config });
  try {
    await fn(a, b);
  } finally {
    await a.close({ keepSim: true });
    await b.close({ keepSim: true });
    await sim.close();
    await Deno.remove(kvPath).catch(() => {});
  }
}

Deno.test("login limits: concurrent wrong passwords on two instances on one KV are 401, never 500", async () => {
  // Counting a failure is a read-check-write of a KV counter; with two processes (here: two
  // handles) on one SQLite file, a racing write makes SQLite refuse the commit with "database
  // is locked" instead of waiting. That must count as a retry, not reach the client as a 500.
  const high = { failures: 100_000 };
  const config = { rateLimits: { loginAddress: high, address: high, login: high } };
  await twoInstances(config, async (a, b) => {
    const statuses = await Promise.all(Array.from({ length: 80 }, async (_, i) => {
      const res = await fetch(`${(i % 2 ? a : b).url}/api/login`, {
        method: "POST",
        body: new URLSearchParams({ login: `nobody${i % 5}`, password: "wrong" }),
      });
      await res.body?.cancel();
      return res.status;
    }));
    assert.deepEqual(statuses.filter((s) => s !== 401), []);
  });
});

Deno.test("login limits: Basic logins with random names from one address do not lock out its users", async () => {
  const config = { rateLimits: { address: { failures: 20 } } };
  await twoInstances(config, async (a, b) => {
    // dmitry uses the Proxy API from the office address (through instance a).
    const first = await fetchFrom("127.0.0.2", `${a.url}/mx/test/voicemail`, {
      headers: { authorization: basic() },
    });
    assert.equal(first.status, 200);
    await first.body?.cancel();
    // Someone in the same office sprays random user names (through instance b).
    const seen: number[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await fetchFrom("127.0.0.2", `${b.url}/mx/test/voicemail`, {
        headers: { authorization: basic(`nobody${i}`, "password") },
      });
      seen.push(res.status);
      await res.body?.cancel();
    }
    assert.deepEqual(seen, [...Array(20).fill(401), ...Array(5).fill(429)]);
    // A name never used from there is refused on either instance (the counters are shared)...
    for (const h of [a, b]) {
      const res = await fetchFrom("127.0.0.2", `${h.url}/mx/test/calllog`, {
        headers: { authorization: basic("peter", "secret") },
      });
      assert.equal(res.status, 429, h.url);
      await res.body?.cancel();
    }
    // ...but dmitry, who logged in from that address before, keeps working: also on b, which
    // has never seen his password (its cache is cold; the address is known through KV).
    for (const path of ["voicemail", "addressbook"]) {
      const res = await fetchFrom("127.0.0.2", `${b.url}/mx/test/${path}`, {
        headers: { authorization: basic() },
      });
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
    // And peter is fine from any other address.
    const res = await fetchFrom("127.0.0.1", `${a.url}/mx/test/voicemail`, {
      headers: { authorization: basic("peter", "secret") },
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

Deno.test("login limits: failures on two instances on one KV add up instead of multiplying", async () => {
  await twoInstances({ rateLimits: { loginAddress: { failures: 4 } } }, async (a, b) => {
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      const h = i % 2 ? b : a;
      const res = await loginFrom("127.0.0.2", h.url, DMITRY.login, "wrong");
      seen.push(res.status);
      await res.body?.cancel();
    }
    assert.deepEqual(seen, [401, 401, 401, 401, 429]);
    const res = await loginFrom("127.0.0.2", b.url, DMITRY.login, "wrong");
    assert.equal(res.status, 429);
    await res.body?.cancel();
  });
});
