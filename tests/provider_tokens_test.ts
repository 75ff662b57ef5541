/**
 * APNs provider tokens shared through Deno KV (lib/store/provider_tokens.ts) and the signer
 * that uses them: one token per key across processes, replaced after 50 minutes, never
 * before 20, and a refused token replaced once however many processes report it.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import {
  PROVIDER_TOKEN_MAX_AGE_MS,
  PROVIDER_TOKEN_MIN_AGE_MS,
  ProviderTokenStore,
} from "../lib/store/provider_tokens.ts";
import { ApnsTokenSigner } from "../lib/push/apns.ts";

const KEY_PEM = await Deno.readTextFile(
  new URL("./fixtures/push/AuthKey_TESTKEY123.p8", import.meta.url),
);
const MIN = 60 * 1000;

/** Two "processes": two KV handles on one file, each with its own store and clock. */
async function twoProcesses() {
  const dir = await Deno.makeTempDir();
  const kv1 = await Deno.openKv(`${dir}/kv`);
  const kv2 = await Deno.openKv(`${dir}/kv`);
  const clock = { now: Date.UTC(2026, 0, 1) };
  const now = () => clock.now;
  return {
    clock,
    a: new ProviderTokenStore(kv1, { now }),
    b: new ProviderTokenStore(kv2, { now }),
    async close() {
      kv1.close();
      kv2.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("provider tokens: two processes racing create one token per key", async () => {
  const w = await twoProcesses();
  try {
    const signed: number[] = [];
    const sign = async (iat: number) => {
      signed.push(iat);
      await new Promise((r) => setTimeout(r, 5)); // widen the race window
      return `jwt-${signed.length}`;
    };
    const got = await Promise.all([
      w.a.get("TEAM.K1", sign),
      w.b.get("TEAM.K1", sign),
      w.a.get("TEAM.K1", sign),
      w.b.get("TEAM.K1", sign),
    ]);
    assert.equal(new Set(got.map((t) => t.jwt)).size, 1, JSON.stringify(got));
    // Another key id gets its own token.
    const other = await w.b.get("TEAM.K2", () => Promise.resolve("jwt-k2"));
    assert.equal(other.jwt, "jwt-k2");
    assert.equal((await w.a.get("TEAM.K1", sign)).jwt, got[0].jwt);
  } finally {
    await w.close();
  }
});

Deno.test("provider tokens: reused for 50 minutes, then replaced once", async () => {
  const w = await twoProcesses();
  try {
    let n = 0;
    const sign = () => Promise.resolve(`jwt-${++n}`);
    const first = await w.a.get("TEAM.K", sign);
    assert.equal(first.issuedAt, w.clock.now);
    w.clock.now += PROVIDER_TOKEN_MAX_AGE_MS - 1000;
    assert.equal((await w.b.get("TEAM.K", sign)).jwt, "jwt-1");
    w.clock.now += 1000;
    const [x, y] = await Promise.all([w.a.get("TEAM.K", sign), w.b.get("TEAM.K", sign)]);
    assert.equal(x.jwt, y.jwt);
    assert.notEqual(x.jwt, "jwt-1");
    assert.equal(x.issuedAt, w.clock.now);
  } finally {
    await w.close();
  }
});

Deno.test("provider tokens: a refused token is replaced once across processes", async () => {
  const w = await twoProcesses();
  try {
    let n = 0;
    const sign = () => Promise.resolve(`jwt-${++n}`);
    const first = await w.a.get("TEAM.K", sign);
    w.clock.now += 25 * MIN;
    // Both processes got ExpiredProviderToken for the same token.
    const [x, y] = await Promise.all([
      w.a.replace("TEAM.K", first.jwt, sign),
      w.b.replace("TEAM.K", first.jwt, sign),
    ]);
    assert.equal(x.jwt, y.jwt);
    assert.notEqual(x.jwt, first.jwt);
    // A late report about the old token does not replace the new one again.
    assert.equal((await w.b.replace("TEAM.K", first.jwt, sign)).jwt, x.jwt);
  } finally {
    await w.close();
  }
});

Deno.test("provider tokens: the configured age is kept within Apple's 20–50 minute window", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    assert.equal(
      new ProviderTokenStore(kv, { maxAgeMs: 5 * MIN }).maxAgeMs,
      PROVIDER_TOKEN_MIN_AGE_MS,
    );
    assert.equal(
      new ProviderTokenStore(kv, { maxAgeMs: 90 * MIN }).maxAgeMs,
      PROVIDER_TOKEN_MAX_AGE_MS,
    );
    assert.equal(new ProviderTokenStore(kv, { maxAgeMs: 30 * MIN }).maxAgeMs, 30 * MIN);
  } finally {
    kv.close();
  }
});

Deno.test("signer: two processes' signers of one key use one JWT; iat is the shared one", async () => {
  const w = await twoProcesses();
  try {
    const now = () => w.clock.now;
    const opts = { keyPem: KEY_PEM, keyId: "TESTKEY123", teamId: "TEAM123456", now };
    const s1 = new ApnsTokenSigner({ ...opts, store: w.a });
    const s2 = new ApnsTokenSigner({ ...opts, store: w.b });
    const jwts = await Promise.all([s1.token(), s2.token(), s1.token(), s2.token()]);
    assert.equal(new Set(jwts).size, 1);
    const iat = decodeJwt(jwts[0]).iat!;
    assert.equal(iat * 1000, w.clock.now);
    // 49 minutes later still the same; at 50 minutes both move to one new token.
    w.clock.now += 49 * MIN;
    assert.equal(await s2.token(), jwts[0]);
    w.clock.now += MIN;
    const [n1, n2] = await Promise.all([s1.token(), s2.token()]);
    assert.equal(n1, n2);
    assert.notEqual(n1, jwts[0]);
    // Apple refused it: one process invalidates, the other adopts the replacement.
    w.clock.now += 1000;
    s1.invalidate();
    const r1 = await s1.token();
    assert.notEqual(r1, n1);
    s2.invalidate();
    assert.equal(await s2.token(), r1, "the second report does not make a third token");
  } finally {
    await w.close();
  }
});
