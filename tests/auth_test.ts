import assert from "node:assert/strict";
import { generateKeyPair, SignJWT } from "jose";
import { AuthError, TokenIssuer } from "../lib/auth/jwt.ts";
import { parseBasicAuth, VerifiedCache } from "../lib/auth/basic.ts";
import {
  errorResponse,
  formatJson,
  HttpError,
  jsonResponse,
  toErrorResponse,
} from "../lib/http/errors.ts";

// ---------------------------------------------------------------- helpers

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);

function fakeClock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function b64url(s: string | Uint8Array): string {
  const bytes = typeof s === "string" ? new TextEncoder().encode(s) : s;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodePart(part: string): Record<string, unknown> {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(b64 + "=".repeat((4 - b64.length % 4) % 4)));
}

const KEY = new Uint8Array(64).fill(7);
const CLAIMS = { sub: "43884851147406145", ext: "3095", mx: "63022" };

async function rejects(p: Promise<unknown>, message: string) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${err}`);
    assert.equal(err.message, message);
    return true;
  });
}

// Signs an arbitrary payload with KEY (the issuer's own key) to test claim validation.
function signRaw(payload: Record<string, unknown>, header: Record<string, unknown> = {}) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "static", ...header })
    .sign(KEY);
}

// ---------------------------------------------------------------- JWT

Deno.test("jwt: round trip with seed-compatible header and claims", async () => {
  const clock = fakeClock();
  const issuer = new TokenIssuer({ key: KEY, now: clock.now });
  const { token, expiresIn } = await issuer.issue(CLAIMS);
  assert.equal(expiresIn, 3600);
  const [h, p, s] = token.split(".");
  assert.deepEqual(decodePart(h), { alg: "HS256", typ: "JWT", kid: "static" });
  const payload = decodePart(p);
  // sub stays an exact string (a JSON number would round the 17-digit JID)
  assert.equal(payload.sub, "43884851147406145");
  assert.deepEqual(Object.keys(payload), ["exp", "ext", "iat", "jti", "mx", "sub"]);
  assert.equal((payload.exp as number) - (payload.iat as number), 3610);
  assert.equal(payload.iat, T0 / 1000 - 10);
  assert.ok(s.length > 0);

  const v = await issuer.verify(token);
  assert.deepEqual(
    { sub: v.sub, ext: v.ext, mx: v.mx },
    CLAIMS,
  );
  assert.equal(typeof v.jti, "string");
  assert.ok(v.jti.length >= 16);
  assert.equal(v.exp, T0 / 1000 + 3600);

  // two tokens for the same user are independent (different jti)
  const other = await issuer.issue(CLAIMS);
  assert.notEqual(other.token, token);
  assert.notEqual((await issuer.verify(other.token)).jti, v.jti);
});

Deno.test("jwt: a verified token is remembered, yet still expires, and only its exact text hits", async () => {
  const clock = fakeClock();
  const issuer = new TokenIssuer({ key: KEY, now: clock.now, ttlSeconds: 60 });
  const { token } = await issuer.issue(CLAIMS);
  const first = await issuer.verify(token);
  assert.equal(await issuer.verify(token), first, "the second verify answers from memory");
  assert.ok(Object.isFrozen(first), "callers cannot change the remembered claims");
  // A changed signature (or any other byte) is another string: verified in full, refused.
  const [h, p, sig] = token.split(".");
  const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.at(-2) === "A" ? "B" : "A"}${sig.at(-1)}`;
  await rejects(issuer.verify(flipped), "invalid token");
  clock.advance(61_000);
  await rejects(issuer.verify(token), "token expired");
  await rejects(issuer.verify(token), "token expired");
});

Deno.test("jwt: default key is random per issuer (the server shares keys through KV)", async () => {
  const a = new TokenIssuer();
  const b = new TokenIssuer();
  const { token } = await a.issue(CLAIMS);
  await a.verify(token);
  await rejects(b.verify(token), "invalid token");
});

Deno.test("jwt: alg none token is rejected", async () => {
  const clock = fakeClock();
  const issuer = new TokenIssuer({ key: KEY, now: clock.now });
  const now = Math.floor(T0 / 1000);
  const payload = { ...CLAIMS, jti: "x", iat: now - 10, exp: now + 3600 };
  for (const alg of ["none", "None", "NONE"]) {
    const unsigned = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${
      b64url(JSON.stringify(payload))
    }.`;
    await rejects(issuer.verify(unsigned), "invalid token");
  }
  // same with a signature copied from a genuine token
  const { token } = await issuer.issue(CLAIMS);
  const sig = token.split(".")[2];
  const forged = `${b64url(JSON.stringify({ alg: "none" }))}.${
    b64url(JSON.stringify(payload))
  }.${sig}`;
  await rejects(issuer.verify(forged), "invalid token");
});

Deno.test("jwt: HS256 token signed with a foreign key is rejected", async () => {
  const issuer = new TokenIssuer({ key: KEY });
  const foreign = new TokenIssuer({ key: new Uint8Array(64).fill(8) });
  const { token } = await foreign.issue(CLAIMS);
  await foreign.verify(token); // valid for its own issuer
  await rejects(issuer.verify(token), "invalid token");
});

Deno.test("jwt: a token without kid or with an unknown kid is rejected, even when the signature fits", async () => {
  const issuer = new TokenIssuer({ key: KEY });
  const now = Math.floor(Date.now() / 1000);
  const payload = { ...CLAIMS, jti: "x", iat: now - 10, exp: now + 3600 };
  await issuer.verify(await signRaw(payload)); // kid "static": accepted
  // What tokens of the per-process key looked like before the keys moved to KV.
  const noKid = await new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(KEY);
  await rejects(issuer.verify(noKid), "invalid token");
  await rejects(issuer.verify(await signRaw(payload, { kid: "other" })), "invalid token");
  await rejects(issuer.verify(await signRaw(payload, { kid: 7 })), "invalid token");
});

Deno.test("jwt: RS256 and other algorithms are rejected (algorithm pinned to HS256)", async () => {
  const issuer = new TokenIssuer({ key: KEY });
  const { privateKey } = await generateKeyPair("RS256");
  const now = Math.floor(Date.now() / 1000);
  const payload = { ...CLAIMS, jti: "x", iat: now - 10, exp: now + 3600 };
  const rs = await new SignJWT(payload).setProtectedHeader({ alg: "RS256", typ: "JWT" }).sign(
    privateKey,
  );
  await rejects(issuer.verify(rs), "invalid token");
  // HS512 with the right key: algorithm pinning rejects it too
  const hs512 = await new SignJWT(payload).setProtectedHeader({ alg: "HS512" }).sign(KEY);
  await rejects(issuer.verify(hs512), "invalid token");
});

Deno.test("jwt: tampered payload is rejected", async () => {
  const issuer = new TokenIssuer({ key: KEY });
  const { token } = await issuer.issue(CLAIMS);
  const [h, p, s] = token.split(".");
  const payload = decodePart(p);
  payload.ext = "3000";
  const tampered = `${h}.${b64url(JSON.stringify(payload))}.${s}`;
  await rejects(issuer.verify(tampered), "invalid token");
  // flipped signature byte
  const bad = s[0] === "A" ? "B" + s.slice(1) : "A" + s.slice(1);
  await rejects(issuer.verify(`${h}.${p}.${bad}`), "invalid token");
});

Deno.test("jwt: expired token (fake clock) says 'token expired'", async () => {
  const clock = fakeClock();
  const issuer = new TokenIssuer({ key: KEY, now: clock.now, ttlSeconds: 60 });
  const { token, expiresIn } = await issuer.issue(CLAIMS);
  assert.equal(expiresIn, 60);
  clock.advance(59_000);
  await issuer.verify(token);
  clock.advance(1_000);
  await rejects(issuer.verify(token), "token expired");
});

Deno.test("jwt: truncated, empty and garbage tokens are rejected", async () => {
  const issuer = new TokenIssuer({ key: KEY });
  const { token } = await issuer.issue(CLAIMS);
  const [h, p] = token.split(".");
  for (
    const t of [
      token.slice(0, -5),
      `${h}.${p}`,
      `${h}.${p}.`,
      h,
      "",
      "a.b.c",
      "x".repeat(10_000),
      token + "x",
    ]
  ) {
    await rejects(issuer.verify(t), "invalid token");
  }
});

Deno.test("jwt: missing claims, wrong types, bad typ and future iat are rejected", async () => {
  const clock = fakeClock();
  const issuer = new TokenIssuer({ key: KEY, now: clock.now });
  const now = Math.floor(T0 / 1000);
  const good = { ...CLAIMS, jti: "j1", iat: now - 10, exp: now + 3600 };
  // sanity: a hand-signed good token passes
  await issuer.verify(await signRaw(good));
  for (const k of ["sub", "ext", "mx", "jti", "iat", "exp"]) {
    const p: Record<string, unknown> = { ...good };
    delete p[k];
    await rejects(issuer.verify(await signRaw(p)), "invalid token");
  }
  await rejects(issuer.verify(await signRaw({ ...good, sub: 43884851147406145 })), "invalid token");
  await rejects(issuer.verify(await signRaw({ ...good, ext: 3095 })), "invalid token");
  await rejects(issuer.verify(await signRaw({ ...good, exp: "later" })), "invalid token");
  await rejects(issuer.verify(await signRaw(good, { typ: "at+jwt" })), "invalid token");
  await rejects(issuer.verify(await signRaw({ ...good, iat: now + 60 })), "invalid token");
  await rejects(issuer.verify(await signRaw({ ...good, nbf: now + 60 })), "invalid token");
});

Deno.test("jwt: AuthError knows no HTTP (the Flex routes give it its 401)", () => {
  const err = new AuthError("token expired");
  assert.equal(err.name, "AuthError");
  assert.equal(err.message, "token expired");
  // Unmapped, it would be an internal error: the status belongs to routes/flex.ts.
  assert.ok(!(err instanceof HttpError));
  assert.equal(toErrorResponse(err).status, 500);
});

// ---------------------------------------------------------------- Basic auth

function basic(s: string | Uint8Array): string {
  const bytes = typeof s === "string" ? new TextEncoder().encode(s) : s;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "Basic " + btoa(bin);
}

Deno.test("basic: parses RFC 7617 credentials", () => {
  assert.deepEqual(parseBasicAuth(basic("alice:secret")), { login: "alice", password: "secret" });
  // the password may contain ':'
  assert.deepEqual(parseBasicAuth(basic("alice:a:b:c")), { login: "alice", password: "a:b:c" });
  // empty password is allowed (the MX decides)
  assert.deepEqual(parseBasicAuth(basic("alice:")), { login: "alice", password: "" });
  // UTF-8
  assert.deepEqual(parseBasicAuth(basic("Пётр:пароль€")), { login: "Пётр", password: "пароль€" });
  // scheme is case-insensitive, extra spaces tolerated
  assert.deepEqual(parseBasicAuth("bAsIc   " + btoa("u:p") + " "), { login: "u", password: "p" });
  // padding-less base64 is accepted
  assert.deepEqual(parseBasicAuth("Basic " + btoa("ab:c").replace(/=+$/, "")), {
    login: "ab",
    password: "c",
  });
});

Deno.test("basic: rejects malformed headers", () => {
  for (
    const h of [
      null,
      undefined,
      "",
      "Basic",
      "Basic ",
      "Bearer " + btoa("u:p"),
      "Basic " + btoa("nocolon"),
      "Basic " + btoa(":password"), // empty login
      "Basic " + btoa("a\u0001b:p"), // control character in login
      "Basic !!!notbase64",
      "Basic " + btoa("u:p") + " extra",
      "Basic" + btoa("u:p"),
      basic(new Uint8Array([0x75, 0x3a, 0xff, 0xfe])), // invalid UTF-8
    ]
  ) {
    assert.equal(parseBasicAuth(h), undefined, `header ${JSON.stringify(h)}`);
  }
});

Deno.test("basic cache: hit, wrong password, scope, delete", async () => {
  const cache = new VerifiedCache<string>();
  assert.equal(await cache.get("mx1", "alice", "pw"), undefined);
  await cache.set("mx1", "alice", "pw", "jid-1");
  assert.equal(await cache.get("mx1", "alice", "pw"), "jid-1");
  // the seed's bug: any password passed after one good login. Here it misses...
  assert.equal(await cache.get("mx1", "alice", "PW"), undefined);
  assert.equal(await cache.get("mx1", "alice", ""), undefined);
  // ...and does not evict the good entry
  assert.equal(await cache.get("mx1", "alice", "pw"), "jid-1");
  // scopes (MX names) are separate; concatenation ambiguity does not collide
  assert.equal(await cache.get("mx2", "alice", "pw"), undefined);
  await cache.set("a", "b:c", "d", "x");
  assert.equal(await cache.get("a:b", "c", "d"), undefined);
  // a new password replaces the old one
  await cache.set("mx1", "alice", "new", "jid-1b");
  assert.equal(await cache.get("mx1", "alice", "pw"), undefined);
  assert.equal(await cache.get("mx1", "alice", "new"), "jid-1b");
  cache.delete("mx1", "alice");
  assert.equal(await cache.get("mx1", "alice", "new"), undefined);
});

Deno.test("basic cache: expiry with a fake clock", async () => {
  const clock = fakeClock();
  const cache = new VerifiedCache<number>({ ttlMs: 1000, now: clock.now });
  await cache.set("s", "u", "p", 1);
  clock.advance(999);
  assert.equal(await cache.get("s", "u", "p"), 1);
  clock.advance(1);
  assert.equal(await cache.get("s", "u", "p"), undefined);
  assert.equal(cache.size, 0);
});

Deno.test("basic cache: LRU eviction at max", async () => {
  const cache = new VerifiedCache<string>({ max: 2 });
  await cache.set("s", "a", "p", "A");
  await cache.set("s", "b", "p", "B");
  assert.equal(await cache.get("s", "a", "p"), "A"); // a is now most recent
  await cache.set("s", "c", "p", "C"); // evicts b
  assert.equal(cache.size, 2);
  assert.equal(await cache.get("s", "b", "p"), undefined);
  assert.equal(await cache.get("s", "a", "p"), "A");
  assert.equal(await cache.get("s", "c", "p"), "C");
});

// ---------------------------------------------------------------- errors

Deno.test("errors: JSON format matches the originals (4 spaces, newline, HTML-escaped)", async () => {
  const res = errorResponse(400, "login required");
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(await res.text(), '{\n    "error": "login required"\n}\n');
  assert.equal(formatJson({ a: "<b>&" }), '{\n    "a": "\\u003cb\\u003e\\u0026"\n}\n');
  assert.deepEqual(JSON.parse(formatJson({ a: "<b>&\u2028" })), { a: "<b>&\u2028" });
  const j = jsonResponse({ monitoring: null }, 200, { Server: "MXFlex/1" });
  assert.equal(j.headers.get("server"), "MXFlex/1");
  assert.equal(await j.text(), '{\n    "monitoring": null\n}\n');
  // the seed's login reply is 274 bytes long with this formatting
  const token =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE1MDU0MTU1OTYsImV4dCI6IjMwOTUiLCJpYXQiOjE1MDU0MTE5ODYsIm14IjoiNjMwMjIiLCJzdWIiOjQzODg0ODUxMTQ3NDA2MTQ1fQ.zn_HXbEJeJnluJniqu8qMdKn05kdQw4agkpSxa-HcpY";
  assert.equal(
    formatJson({ token_type: "Bearer", access_token: token, expires_in: 3600 }).length,
    274,
  );
});

Deno.test("errors: toErrorResponse never leaks unknown errors", async () => {
  const e = toErrorResponse(
    new HttpError(401, "unauthorized", { "WWW-Authenticate": 'Bearer realm="MXFlex"' }),
  );
  assert.equal(e.status, 401);
  assert.equal(e.headers.get("www-authenticate"), 'Bearer realm="MXFlex"');
  assert.deepEqual(await e.json(), { error: "unauthorized" });

  const secret = new Error("password=hunter2 at /work/main/lib/x.ts:1");
  const r = toErrorResponse(secret);
  assert.equal(r.status, 500);
  const body = await r.text();
  assert.equal(body, '{\n    "error": "internal error"\n}\n');
  for (const v of ["boom", 42, null, undefined, { status: 400, message: "fake" }]) {
    const x = toErrorResponse(v);
    assert.equal(x.status, 500);
    await x.body?.cancel();
  }
  // out-of-range status on an HttpError is not trusted
  const odd = toErrorResponse(new HttpError(200, "ok?"));
  assert.equal(odd.status, 500);
  await odd.body?.cancel();
});
