import assert from "node:assert/strict";
import { SigningKeys } from "../lib/auth/signing_keys.ts";
import { AuthError, TokenIssuer } from "../lib/auth/jwt.ts";
import { kidOf, withKvFile } from "./helpers/kv.ts";

const CLAIMS = { sub: "43884851147406145", ext: "3095", mx: "63022" };
const T0 = Date.UTC(2025, 0, 1);

function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function keysInKv(kv: Deno.Kv): Promise<string[]> {
  const out: string[] = [];
  for await (const e of kv.list({ prefix: ["jwt-key"] })) out.push(String(e.key[1]));
  return out;
}

Deno.test("signing keys: racing instances on one KV file create exactly one key", () =>
  withKvFile(async (path) => {
    const handles = await Promise.all(Array.from({ length: 6 }, () => Deno.openKv(path)));
    try {
      const rings = await Promise.all(
        handles.map((kv) => SigningKeys.open(kv, { ttlSeconds: 3600 })),
      );
      const kids = new Set(await Promise.all(rings.map(async (r) => (await r.signingKey()).kid)));
      assert.equal(kids.size, 1);
      assert.deepEqual(await keysInKv(handles[0]), [...kids]);
    } finally {
      for (const kv of handles) kv.close();
    }
  }));

Deno.test("signing keys: a token from one instance verifies on another and after a restart", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const a = new TokenIssuer({ keys: await SigningKeys.open(kv, { ttlSeconds: 3600 }) });
    const b = new TokenIssuer({ keys: await SigningKeys.open(kv, { ttlSeconds: 3600 }) });
    const { token } = await a.issue(CLAIMS);
    assert.equal((await b.verify(token)).ext, "3095");
    // "Restart": a new key ring from the same KV.
    const again = new TokenIssuer({ keys: await SigningKeys.open(kv, { ttlSeconds: 3600 }) });
    assert.equal((await again.verify(token)).sub, CLAIMS.sub);
  } finally {
    kv.close();
  }
});

Deno.test("signing keys: rotation; a token of the old key is accepted until it expires", async () => {
  const kv = await Deno.openKv(":memory:");
  const c = clock();
  try {
    const opts = { ttlSeconds: 600, rotateSeconds: 3600, now: c.now };
    const ringA = await SigningKeys.open(kv, opts);
    const a = new TokenIssuer({ keys: ringA, ttlSeconds: 600, now: c.now });
    c.advance(3590_000); // 10 s before rotation: the last token of the first key
    const old = await a.issue(CLAIMS);
    c.advance(20_000); // rotated
    const fresh = await a.issue(CLAIMS);
    assert.notEqual(kidOf(fresh.token), kidOf(old.token));
    assert.equal((await keysInKv(kv)).length, 2);
    // Another instance that starts now knows both keys.
    const b = new TokenIssuer({
      keys: await SigningKeys.open(kv, opts),
      ttlSeconds: 600,
      now: c.now,
    });
    assert.equal(kidOf((await b.issue(CLAIMS)).token), kidOf(fresh.token));
    await b.verify(old.token);
    c.advance(570_000); // 10 s before the old token's expiry
    await a.verify(old.token);
    await b.verify(old.token);
    c.advance(20_000);
    await assert.rejects(
      b.verify(old.token),
      (e) => e instanceof AuthError && e.message === "token expired",
    );
  } finally {
    kv.close();
  }
});

Deno.test("signing keys: an old key stops being accepted after its last token's expiry", async () => {
  const kv = await Deno.openKv(":memory:");
  const c = clock();
  try {
    const ring = await SigningKeys.open(kv, { ttlSeconds: 600, rotateSeconds: 3600, now: c.now });
    const first = (await ring.signingKey()).kid;
    c.advance(3600_000);
    const second = (await ring.signingKey()).kid;
    assert.notEqual(second, first);
    assert.ok(await ring.verificationKey(first));
    // rotateAt + ttl + 60 s of skew
    c.advance(600_000 + 59_000);
    assert.ok(await ring.verificationKey(first));
    c.advance(2_000);
    assert.equal(await ring.verificationKey(first), undefined);
    assert.ok(await ring.verificationKey(second));
    // A new ring does not load it either.
    const later = await SigningKeys.open(kv, { ttlSeconds: 600, now: c.now });
    assert.equal(await later.verificationKey(first), undefined);
  } finally {
    kv.close();
  }
});

Deno.test("signing keys: an instance with a longer token lifetime keeps the key accepted longer", async () => {
  const kv = await Deno.openKv(":memory:");
  const c = clock();
  try {
    const short = await SigningKeys.open(kv, { ttlSeconds: 60, rotateSeconds: 100, now: c.now });
    const long = await SigningKeys.open(kv, { ttlSeconds: 7200, rotateSeconds: 100, now: c.now });
    const issuer = new TokenIssuer({ keys: long, ttlSeconds: 7200, now: c.now });
    const { token } = await issuer.issue(CLAIMS);
    c.advance(7000_000); // long past the short instance's idea of the key's life
    const verifier = new TokenIssuer({ keys: short, ttlSeconds: 60, now: c.now });
    assert.equal((await verifier.verify(token)).ext, "3095");
  } finally {
    kv.close();
  }
});

Deno.test("signing keys: a key another instance created later is found by its kid", async () => {
  const kv = await Deno.openKv(":memory:");
  const c = clock();
  try {
    const opts = { ttlSeconds: 600, rotateSeconds: 60, now: c.now };
    const a = await SigningKeys.open(kv, opts);
    const b = await SigningKeys.open(kv, opts);
    c.advance(61_000);
    const { kid } = await b.signingKey(); // b rotates
    assert.ok(await a.verificationKey(kid));
    assert.equal(await a.verificationKey("made-up-kid"), undefined);
    assert.equal(await a.verificationKey("bad kid with spaces"), undefined);
  } finally {
    kv.close();
  }
});
