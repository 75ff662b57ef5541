/**
 * Call log and voicemail with the JWT end to end (HTTP -> server -> CSTA over TLS ->
 * simulator): the same records as the Proxy API, audio streamed with `?access_token=`,
 * read flag, note and delete; the token's sealed credential (the key only in the token,
 * nothing readable at rest) and its wipe at logout and expiry.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { basic, DMITRY, flexLogin, type Harness, withHarness } from "./helpers/harness.ts";
import { CredentialVault } from "../lib/store/credentials.ts";
import { hashPassword } from "../lib/csta/password.ts";
import { waitUntil } from "./helpers/wait.ts";
import { wavInfo } from "./helpers/wav_info.ts";
import { defaultUsers, seedDemoUser } from "../lib/mxsim/mod.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

function get(h: Harness, token: string, path: string, init: RequestInit = {}) {
  return fetch(`${h.url}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...init.headers },
  });
}

/** A WAV-looking payload big enough for several chunks. */
function audio(n: number): Uint8Array {
  const b = new Uint8Array(n);
  b.set(new TextEncoder().encode("RIFF"));
  for (let i = 4; i < n; i++) b[i] = (i * 31) & 0xff;
  return b;
}

Deno.test("history: GET /api/calllog has the Proxy API's records as {calllog}", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    h.sim.addCallLog(DMITRY.ext, {
      direction: "incoming",
      missed: true,
      callingPartyNo: "3044",
      originalCalledPartyNo: DMITRY.ext,
      firstName: "Peter",
      lastName: "Hyde",
      extension: "3044",
      disconnectTimestamp: 1501101500,
    });
    h.sim.addCallLog(DMITRY.ext, {
      callingPartyNo: DMITRY.ext,
      originalCalledPartyNo: "3099",
      connectTimestamp: 1701101426,
      disconnectTimestamp: 1701101436,
      legType: 3,
    });
    const res = await get(h, t, "/api/calllog");
    assert.equal(res.status, 200);
    const { calllog } = await res.json();
    const proxy = await fetch(`${h.url}/mx/test/calllog`, { headers: { Authorization: basic() } });
    assert.deepEqual(calllog, (await proxy.json()).callog, "the same records as the Proxy API");
    assert.equal(calllog.length, 2);
    assert.equal(calllog[0].missed, true);
    assert.equal(calllog[0].ext, "3044");
    // since a time (both forms), and a bad one
    const since = await (await get(h, t, "/api/calllog?timestamp=1600000000")).json();
    assert.deepEqual(since.calllog.map((r: Json) => r.originalCalledPartyNo), ["3099"]);
    const rfc = await (await get(h, t, "/api/calllog?timestamp=2020-09-13T12:26:40Z")).json();
    assert.deepEqual(rfc, since);
    const bad = await get(h, t, "/api/calllog?timestamp=yesterday");
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: "bad timestamp format" });
    // the session was the user's own
    const login = h.sim.received.findLast((m) => m.name === "loginRequest");
    assert.match(login!.xml, /<userName>dmitry<\/userName>/);
  });
});

Deno.test("voicemail: list, play with ?access_token= (streamed), mark read, annotate, delete", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const bytes = audio(100_000);
    const id = h.sim.addVoicemail(DMITRY.ext, {
      from: "3099",
      fromName: "Maxim Donchenko",
      duration: 7,
      content: bytes,
    });
    let res = await get(h, t, "/api/voicemail");
    assert.equal(res.status, 200);
    const { voicemails } = await res.json();
    assert.deepEqual(voicemails, [{
      from: "3099",
      fromName: "Maxim Donchenko",
      to: DMITRY.ext,
      ownerType: "user",
      id,
      received: voicemails[0].received,
      duration: 7,
    }]);

    // What an <audio src> does: no headers, the token in the query.
    res = await fetch(`${h.url}/api/voicemail/${id}?access_token=${t}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^audio\//);
    assert.match(res.headers.get("content-disposition") ?? "", /filename="message\d+\.wav"/);
    assert.equal(res.headers.get("content-length"), null, "streamed as the MX sends it");
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
    const chunks = h.sim.received.filter((m) => m.name === "MailReceiveIncoming").length;
    assert.ok(chunks >= 4, `several chunks (${chunks})`);

    res = await get(h, t, `/api/voicemail/${id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ read: true, note: "call back" }),
    });
    assert.equal(res.status, 204);
    assert.deepEqual(
      [h.sim.voicemails(DMITRY.ext)[0].read, h.sim.voicemails(DMITRY.ext)[0].note],
      [true, "call back"],
    );
    res = await get(h, t, `/api/voicemail/${id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ readed: false }),
    });
    assert.equal(res.status, 204);
    assert.equal(h.sim.voicemails(DMITRY.ext)[0].read, false, "the seed's spelling works too");
    res = await get(h, t, `/api/voicemail/${id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "bad request" });

    res = await get(h, t, `/api/voicemail/${id}`, { method: "DELETE" });
    assert.equal(res.status, 204);
    assert.deepEqual(h.sim.voicemails(DMITRY.ext), []);
    res = await get(h, t, `/api/voicemail/${id}`, { method: "DELETE" });
    assert.equal(res.status, 204, "deleting an absent message is not an error");
    res = await get(h, t, `/api/voicemail/${id}`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "voicemail not found" });
    res = await get(h, t, "/api/voicemail/..%2Fx");
    assert.equal(res.status, 400);
    await res.body?.cancel();
    res = await get(h, t, "/api/voicemail/a.b");
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: "bad voicemail id" });
  });
});

Deno.test("user session: the credential is sealed per token, unreadable at rest, wiped at logout", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const { jti, ck } = decodeJwt(t) as { jti: string; ck: string };
    assert.match(ck, /^[A-Za-z0-9_-]{43}$/, "the key travels in the token");
    const stored = await h.kv.get<{ iv: Uint8Array; data: Uint8Array; exp: number }>([
      "flex",
      "credential",
      jti,
    ]);
    assert.ok(stored.value, "a ciphertext under the token id");
    // Neither the password nor its hash nor the key is in what KV holds.
    const atRest = JSON.stringify([...stored.value.iv, ...stored.value.data]) +
      new TextDecoder().decode(stored.value.data);
    const hash = (await hashPassword(DMITRY.password)).trim();
    for (const secret of [DMITRY.password, hash, ck]) assert.ok(!atRest.includes(secret));
    const vault = new CredentialVault(h.kv);
    assert.deepEqual(await vault.open(jti, ck), { login: "dmitry", secret: hash + "\n" });
    assert.equal(await vault.open(jti, CredentialVault.newKey()), undefined, "another key");
    assert.equal(await vault.open("other-token", ck), undefined, "bound to the token id");

    // Without its credential a token still serves everything else, but no user session.
    const t2 = await flexLogin(h.url);
    const j2 = (decodeJwt(t2) as { jti: string }).jti;
    await vault.wipe(j2);
    let res = await get(h, t2, "/api/voicemail");
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: "user session unavailable, log in again" });
    res = await get(h, t2, "/api/calls");
    assert.equal(res.status, 200);
    await res.body?.cancel();

    // Logout wipes it: even a leaked copy of the token can no longer open a session.
    res = await get(h, t, "/api/logout");
    assert.equal(res.status, 204);
    assert.equal((await h.kv.get(["flex", "credential", jti])).value, null);
    assert.equal(await vault.open(jti, ck), undefined);
  });
});

Deno.test("user session: expiry wipes the credential", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const { jti, ck, exp } = decodeJwt(t) as { jti: string; ck: string; exp: number };
    const vault = new CredentialVault(h.kv);
    assert.ok(await vault.open(jti, ck));
    // The sweep finds the token expired (clock moved past exp): token and credential go.
    h.server.tokens.sweep(exp + 1);
    await waitUntil(async () => (await h.kv.get(["flex", "credential", jti])).value === null, {
      what: "credential wiped",
    });
    assert.equal(h.server.tokens.has(jti), false);
    // And the vault itself refuses a ciphertext past its expiry, whatever KV still holds.
    await vault.seal(jti, ck, { login: "x", secret: "y" }, Math.floor(Date.now() / 1000) + 60);
    const later = new CredentialVault(h.kv, () => Date.now() + 61_000);
    assert.equal(await later.open(jti, ck), undefined);
  });
});

Deno.test("demo data: the demo user's history and playable voicemail through the Flex API", async () => {
  await withHarness(async (h) => {
    seedDemoUser(h.sim, DMITRY.ext);
    const t = await flexLogin(h.url);
    const { calllog } = await (await get(h, t, "/api/calllog")).json();
    assert.equal(calllog.length, 6);
    assert.deepEqual(
      calllog.map((r: Json) => [r.direction, r.missed ?? false]),
      [
        ["outgoing", false],
        ["incoming", false],
        ["incoming", true],
        ["outgoing", false],
        ["incoming", true],
        ["incoming", false],
      ],
    );
    assert.equal(calllog[2].firstName, "Peter", "internal parties have names");
    const { voicemails } = await (await get(h, t, "/api/voicemail")).json();
    assert.deepEqual(voicemails.map((v: Json) => [v.duration, v.read ?? false, v.note ?? ""]), [
      [4, true, "called back"],
      [3, false, ""],
      [5, false, ""],
    ]);
    const res = await fetch(`${h.url}/api/voicemail/${voicemails[1].id}?access_token=${t}`);
    const wav = wavInfo(new Uint8Array(await res.arrayBuffer()));
    assert.deepEqual(wav, { pcm: true, ch: 1, rate: 8000, bits: 16, seconds: 3 }, "3 s at 8 kHz");
  });
});

Deno.test("voicemail: HEAD answers the headers and ends the MX transfer at once (both APIs)", async () => {
  await withHarness(async (h) => {
    const t = await flexLogin(h.url);
    const id = h.sim.addVoicemail(DMITRY.ext, { from: "3099", content: audio(200_000) });
    const baseline = h.sim.sessionCount();
    for (
      const [url, headers] of [
        [`${h.url}/api/voicemail/${id}?access_token=${t}`, {}],
        [`${h.url}/mx/test/voicemail/${id}`, { Authorization: basic() }],
      ] as const
    ) {
      const res = await fetch(url, { method: "HEAD", headers });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^audio\//);
      assert.match(res.headers.get("content-disposition") ?? "", /filename=/);
      // The user session of the download is gone, not left for the stall limit (60 s).
      await waitUntil(() => h.sim.sessionCount() === baseline, { what: `session closed: ${url}` });
    }
    const missing = await fetch(`${h.url}/api/voicemail/4242?access_token=${t}`, {
      method: "HEAD",
    });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});

Deno.test("user session: an MX that accepts only the plain password gets it sealed instead of the hash", async () => {
  const plain = {
    login: "plain",
    password: "only-plain",
    jid: "43884853000900002",
    ext: "3200",
    firstName: "Plain",
    lastName: "Text",
    plainOnly: true,
  };
  await withHarness(async (h) => {
    const t = await flexLogin(h.url, plain.login, plain.password);
    const { jti, ck } = decodeJwt(t) as { jti: string; ck: string };
    const cred = await new CredentialVault(h.kv).open(jti, ck);
    assert.deepEqual(cred, { login: "plain", secret: "only-plain" });
    h.sim.addCallLog(plain.ext, { callingPartyNo: "3044", originalCalledPartyNo: plain.ext });
    const res = await get(h, t, "/api/calllog");
    assert.equal(res.status, 200);
    assert.equal((await res.json()).calllog.length, 1);
  }, { sim: { users: [...defaultUsers(), plain] } });
});
